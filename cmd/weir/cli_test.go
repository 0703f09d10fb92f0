package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// result is what one weir invocation printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// weir runs the CLI against the broker at addr with stdin as its input.
func weir(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return weirCtx(ctx, addr, stdin, args...)
}

func weirCtx(ctx context.Context, addr, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	if addr != "" {
		args = append([]string{"--brokers", addr}, args...)
	}
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustWeir is weir that fails the test unless the command succeeds.
func mustWeir(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	r := weir(t, addr, stdin, args...)
	if r.code != 0 {
		t.Fatalf("weir %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// wantFail checks that a command failed with code and said want on stderr.
func wantFail(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("got exit %d, stderr %q; want exit %d and stderr containing %q", r.code, r.stderr, code, want)
	}
}

// row returns the whitespace-separated fields of the first line of out whose
// leading fields are prefix, or nil.
func row(out string, prefix ...string) []string {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= len(prefix) && equal(f[:len(prefix)], prefix) {
			return f
		}
	}
	return nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitFor polls cond until it returns nil, failing the test after a
// deadline with what and cond's last answer, which describes the state.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		<-tick.C
	}
}

// check turns a condition into waitFor's answer.
func check(ok bool, state string) error {
	if ok {
		return nil
	}
	return errors.New(state)
}

func TestTopicLifecycle(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)

	r := mustWeir(t, addr, "", "topic", "create", "orders", "--partitions", "3", "--config", "cleanup.policy=compact")
	if want := "created topic orders (3 partitions, replication factor 1)\n"; r.stdout != want {
		t.Errorf("create printed %q, want %q", r.stdout, want)
	}
	mustWeir(t, addr, "", "topic", "create", "--partitions=1", "payments")
	wantFail(t, weir(t, addr, "", "topic", "create", "orders", "--partitions", "3"), 1, `topic "orders" already exists`)

	r = mustWeir(t, addr, "", "topic", "list")
	if f := row(r.stdout, "orders"); !equal(f, []string{"orders", "3", "1"}) {
		t.Errorf("list row for orders = %q\n%s", f, r.stdout)
	}
	if row(r.stdout, "payments") == nil || row(r.stdout, "TOPIC", "PARTITIONS", "REPLICATION") == nil {
		t.Errorf("list is missing payments or its header:\n%s", r.stdout)
	}

	r = mustWeir(t, addr, "", "topic", "describe", "orders")
	for _, want := range []string{"Topic:               orders\n", "Partitions:          3\n", "Replication factor:  1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, p := range []string{"0", "1", "2"} {
		f := row(r.stdout, p)
		if len(f) != 8 || f[2] != "1" || f[4] != f[3] || f[5] != "-" || f[6] != "0" || f[7] != "0" {
			t.Errorf("partition %s row = %q, want leader, epoch 1 (a single replica is created led), replicas, ISR = replicas, none lagging, "+
				"log start 0, end 0:\n%s", p, f, r.stdout)
		}
	}
	if row(r.stdout, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LAGGING", "LOG-START", "LOG-END") == nil {
		t.Errorf("describe lacks the partition header:\n%s", r.stdout)
	}
	if f := row(r.stdout, "*", "cleanup.policy"); !equal(f, []string{"*", "cleanup.policy", "compact", "topic"}) {
		t.Errorf("cleanup.policy row = %q, want it marked non-default:\n%s", f, r.stdout)
	}
	if f := row(r.stdout, "retention.ms"); len(f) < 3 || f[2] != "default" {
		t.Errorf("retention.ms row = %q, want an unmarked default:\n%s", f, r.stdout)
	}

	r = mustWeir(t, addr, "", "topic", "alter", "orders", "--config", "retention.ms=1000", "--delete-config", "cleanup.policy")
	if want := "altered topic orders: set retention.ms=1000, deleted cleanup.policy\n"; r.stdout != want {
		t.Errorf("alter printed %q, want %q", r.stdout, want)
	}
	r = mustWeir(t, addr, "", "topic", "describe", "orders")
	if f := row(r.stdout, "*", "retention.ms"); !equal(f, []string{"*", "retention.ms", "1000", "topic"}) {
		t.Errorf("after alter, retention.ms row = %q:\n%s", f, r.stdout)
	}
	if f := row(r.stdout, "cleanup.policy"); !equal(f, []string{"cleanup.policy", "delete", "default"}) {
		t.Errorf("after delete-config, cleanup.policy row = %q:\n%s", f, r.stdout)
	}
	wantFail(t, weir(t, addr, "", "topic", "alter", "orders"), 2, "nothing to change")

	r = mustWeir(t, addr, "", "topic", "delete", "orders")
	if r.stdout != "deleted topic orders\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
	waitFor(t, "orders to leave the topic list", func() error {
		out := mustWeir(t, addr, "", "topic", "list").stdout
		return check(row(out, "orders") == nil, out)
	})
	wantFail(t, weir(t, addr, "", "topic", "describe", "orders"), 1, `topic "orders" does not exist`)
	wantFail(t, weir(t, addr, "", "topic", "delete", "orders"), 1, `topic "orders" does not exist`)
}

// TestTopicElectLeaders covers the single-node answers; a cluster's
// elections are in TestProcessRollingRestart.
func TestTopicElectLeaders(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "orders", "--partitions", "2")
	r := mustWeir(t, addr, "", "topic", "elect-leaders")
	if r.stdout != "every partition is led by its preferred replica\n" {
		t.Errorf("elect-leaders of everything printed %q", r.stdout)
	}
	r = mustWeir(t, addr, "", "topic", "elect-leaders", "orders")
	if want := "orders-0: already led by its preferred replica\norders-1: already led by its preferred replica\n"; r.stdout != want {
		t.Errorf("elect-leaders orders printed %q, want %q", r.stdout, want)
	}
	r = weir(t, addr, "", "topic", "elect-leaders", "orders:1,7")
	wantFail(t, r, 1, "1 partition could not be handed")
	if !strings.Contains(r.stdout, "orders-7: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("elect-leaders of a missing partition printed %q", r.stdout)
	}
	wantFail(t, weir(t, addr, "", "topic", "elect-leaders", "nope"), 1, `topic "nope" does not exist`)
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "events", "--partitions", "1")

	r := mustWeir(t, addr, "alice:hello\nbob:a:b\r\nno-key\n\nlast:line-without-newline",
		"produce", "events", "--key-separator", ":", "--header", "src=cli", "--header", "v=1")
	if r.stderr != "produced 5 records\n" {
		t.Errorf("produce stderr = %q", r.stderr)
	}

	r = mustWeir(t, addr, "", "consume", "events", "--from-beginning", "--max", "5",
		"--format", `%k|%v|%p|%o|%h|%T`)
	want := "alice|hello|0|0|src=cli,v=1|events\n" +
		"bob|a:b|0|1|src=cli,v=1|events\n" +
		"|no-key|0|2|src=cli,v=1|events\n" +
		"||0|3|src=cli,v=1|events\n" +
		"last|line-without-newline|0|4|src=cli,v=1|events\n"
	if r.stdout != want {
		t.Errorf("consume printed\n%s\nwant\n%s", r.stdout, want)
	}
	if r.stderr != "consumed 5 records\n" {
		t.Errorf("consume stderr = %q", r.stderr)
	}

	// The default format is the value; %t is RFC 3339 with milliseconds.
	r = mustWeir(t, addr, "", "consume", "events", "--from-beginning", "--max", "1")
	if r.stdout != "hello\n" {
		t.Errorf("default format printed %q", r.stdout)
	}
	r = mustWeir(t, addr, "", "consume", "events", "--from-beginning", "--max", "1", "--format", `%t\t%%\n`)
	ts, rest, _ := strings.Cut(r.stdout, "\t")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || len(ts) != len(timeLayout)-len("Z07:00")+1 || rest != "%\n" {
		t.Errorf("%%t format printed %q (%v)", r.stdout, err)
	}
}

func TestProducePartitionAndAcks(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "p", "--partitions", "3")

	mustWeir(t, addr, "a\nb\n", "produce", "p", "--partition", "2", "--acks", "1")
	mustWeir(t, addr, "c\n", "produce", "p", "--partition", "1", "--acks", "0")
	mustWeir(t, addr, "d\n", "produce", "p", "--partition", "1", "--acks", "all")
	r := mustWeir(t, addr, "", "topic", "describe", "p")
	for p, end := range []string{"0", "2", "2"} {
		if f := row(r.stdout, string(rune('0'+p))); len(f) != 8 || f[7] != end {
			t.Errorf("partition %d row %q, want log end %s:\n%s", p, f, end, r.stdout)
		}
	}
	r = mustWeir(t, addr, "", "consume", "p", "--from-beginning", "--max", "4", "--format", "%p:%o:%v")
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, want := range []string{"2:0:a", "2:1:b", "1:0:c", "1:1:d"} {
		if !contains(got, want) {
			t.Errorf("consumed %q, want it to contain %q", got, want)
		}
	}

	wantFail(t, weir(t, addr, "x\n", "produce", "p", "--acks", "2"), 2, "--acks must be all, 1 or 0")
	wantFail(t, weir(t, addr, "x\n", "produce", "missing"), 1, `topic "missing" does not exist`)
}

func contains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

func TestConsumeStopsWhenIdle(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "quiet", "--partitions", "2")
	mustWeir(t, addr, "old\n", "produce", "quiet")

	// Without --from-beginning consumption starts at the end: the record
	// produced before is not printed, and --timeout ends the wait.
	r := mustWeir(t, addr, "", "consume", "quiet", "--max", "10", "--timeout", "300ms")
	if r.stdout != "" || r.stderr != "consumed 0 records\n" {
		t.Errorf("got stdout %q stderr %q, want nothing consumed", r.stdout, r.stderr)
	}
	// The idle clock starts with the command, so it must outlast the first
	// fetch on a loaded machine.
	r = mustWeir(t, addr, "", "consume", "quiet", "--from-beginning", "--max", "10", "--timeout", "3s")
	if r.stdout != "old\n" || r.stderr != "consumed 1 record\n" {
		t.Errorf("got stdout %q stderr %q, want the one record", r.stdout, r.stderr)
	}
	wantFail(t, weir(t, addr, "", "consume", "nope", "--timeout", "1s"), 1, `topic "nope" does not exist`)
	wantFail(t, weir(t, addr, "", "consume", "quiet", "--format", "%q"), 2, "unknown verb %q")
}

func TestConsumeUntilInterrupted(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "live", "--partitions", "1")
	mustWeir(t, addr, "one\n", "produce", "live")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- weirCtx(ctx, addr, "", "consume", "live", "--group", "g", "--from-beginning") }()
	waitFor(t, "the consumer to commit offset 1", func() error {
		r := weir(t, addr, "", "group", "describe", "g")
		f := row(r.stdout, "live", "0")
		return check(len(f) >= 3 && f[2] == "1", r.stdout+r.stderr)
	})
	cancel()
	r := <-done
	if r.code != 0 || r.stdout != "one\n" || r.stderr != "consumed 1 record\n" {
		t.Errorf("interrupted consume: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestGroupOffsets(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "clicks", "--partitions", "2")
	mustWeir(t, addr, "a\nb\nc\nd\ne\nf\n", "produce", "clicks", "--partition", "0")
	mustWeir(t, addr, "g\nh\ni\nj\n", "produce", "clicks", "--partition", "1")

	r := mustWeir(t, addr, "", "group", "list")
	if r.stdout != "no groups\n" {
		t.Errorf("group list before any group: %q", r.stdout)
	}

	// A group consumer commits exactly what it printed.
	mustWeir(t, addr, "", "consume", "clicks", "--group", "readers", "--from-beginning", "--max", "4", "--timeout", "10s")
	r = mustWeir(t, addr, "", "group", "list")
	if f := row(r.stdout, "readers"); !equal(f, []string{"readers", "Empty", "consumer"}) {
		t.Errorf("group list row = %q:\n%s", f, r.stdout)
	}
	committed, lag := describeGroup(t, addr, "readers")
	if committed != 4 || lag != 6 {
		t.Fatalf("after consuming 4 of 10: committed %d, lag %d", committed, lag)
	}

	// Dry run prints the plan and changes nothing.
	r = mustWeir(t, addr, "", "group", "reset-offsets", "readers", "--topic", "clicks", "--to-earliest")
	if !strings.Contains(r.stdout, "Dry run") || row(r.stdout, "clicks", "0") == nil || row(r.stdout, "clicks", "1") == nil {
		t.Errorf("dry run output:\n%s", r.stdout)
	}
	if f := row(r.stdout, "clicks", "0"); len(f) != 6 || f[3] != "0" || f[5] != "6" {
		t.Errorf("dry run row for partition 0 = %q, want new offset 0 and log end 6", f)
	}
	if c, l := describeGroup(t, addr, "readers"); c != committed || l != lag {
		t.Errorf("dry run changed offsets: committed %d, lag %d", c, l)
	}

	steps := []struct {
		args      []string
		committed int64
		lag       int64
	}{
		{[]string{"--to-earliest"}, 0, 10},
		{[]string{"--to-latest"}, 10, 0},
		{[]string{"--to-offset", "5"}, 5 + 4, 1}, // clamped to partition 1's end, 4
		{[]string{"--to-datetime", "2000-01-01T00:00:00Z"}, 0, 10},
		{[]string{"--to-datetime", time.Now().Add(time.Hour).Format(time.RFC3339)}, 10, 0},
	}
	for _, s := range steps {
		args := append([]string{"group", "reset-offsets", "readers", "--topic", "clicks", "--execute"}, s.args...)
		r := mustWeir(t, addr, "", args...)
		if !strings.Contains(r.stdout, "Committed new offsets for 2 partitions of group readers.") {
			t.Errorf("%v printed:\n%s", s.args, r.stdout)
		}
		if c, l := describeGroup(t, addr, "readers"); c != s.committed || l != s.lag {
			t.Errorf("after %v: committed %d, lag %d; want %d, %d", s.args, c, l, s.committed, s.lag)
		}
	}
	// Partition selection.
	mustWeir(t, addr, "", "group", "reset-offsets", "readers", "--topic", "clicks:1", "--to-earliest", "--execute")
	if c, l := describeGroup(t, addr, "readers"); c != 6 || l != 4 {
		t.Errorf("after resetting partition 1 only: committed %d, lag %d", c, l)
	}

	// Offsets of a group that has never consumed can be set ahead of time.
	mustWeir(t, addr, "", "group", "reset-offsets", "new", "--topic", "clicks", "--to-offset", "2", "--execute")
	if c, l := describeGroup(t, addr, "new"); c != 4 || l != 6 {
		t.Errorf("pre-set group: committed %d, lag %d; want 4, 6", c, l)
	}

	// A group with active members can neither be reset nor deleted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- weirCtx(ctx, addr, "", "consume", "clicks", "--group", "readers") }()
	waitFor(t, "the consumer to own both partitions", func() error {
		r := mustWeir(t, addr, "", "group", "describe", "readers")
		f0, f1 := row(r.stdout, "clicks", "0"), row(r.stdout, "clicks", "1")
		return check(strings.Contains(r.stdout, "State:        Stable\n") &&
			len(f0) == 7 && f0[6] == clientID && len(f1) == 7 && f1[6] == clientID, "\n"+r.stdout)
	})
	wantFail(t, weir(t, addr, "", "group", "reset-offsets", "readers", "--topic", "clicks", "--to-earliest"),
		1, "1 active member")
	wantFail(t, weir(t, addr, "", "group", "delete", "readers"), 1, "has active members")
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("group consumer exited %d: %s", r.code, r.stderr)
	}

	r = mustWeir(t, addr, "", "group", "delete", "readers")
	if r.stdout != "deleted group readers\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
	if r := mustWeir(t, addr, "", "group", "list"); row(r.stdout, "readers") != nil {
		t.Errorf("deleted group still listed:\n%s", r.stdout)
	}
	wantFail(t, weir(t, addr, "", "group", "describe", "readers"), 1, `group "readers" does not exist`)
	wantFail(t, weir(t, addr, "", "group", "delete", "readers"), 1, `group "readers" does not exist`)
}

// describeGroup runs group describe and returns the committed offsets and
// the lag summed over the partitions of its table.
func describeGroup(t *testing.T, addr, group string) (committed, lag int64) {
	t.Helper()
	r := mustWeir(t, addr, "", "group", "describe", group)
	var rows int
	for line := range strings.Lines(r.stdout) {
		f := strings.Fields(line)
		if len(f) == 7 && f[0] != "TOPIC" {
			rows++
			committed += atoi(t, f[2])
			lag += atoi(t, f[4])
		}
	}
	if !strings.Contains(r.stdout, "Group:        "+group+"\n") || rows == 0 {
		t.Fatalf("group describe output:\n%s", r.stdout)
	}
	return committed, lag
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	if s == "-" {
		return 0
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("%q is not a number", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	for _, args := range [][]string{{"topic", "list"}, {"group", "list"}, {"consume", "t"}, {"produce", "t"}} {
		wantFail(t, weir(t, addr, "x\n", args...), 1,
			"cannot reach broker at "+addr+": connection refused — is `weir broker` running?")
	}
}

func TestBrokersFromEnv(t *testing.T) {
	addr := startTestBroker(t)
	t.Setenv("WEIR_BROKERS", addr)
	mustWeir(t, "", "", "topic", "create", "env", "--partitions", "1")
	if r := mustWeir(t, "", "", "topic", "list"); row(r.stdout, "env") == nil {
		t.Errorf("topic list via WEIR_BROKERS:\n%s", r.stdout)
	}
	// --brokers may also follow the command.
	if r := weirCtx(context.Background(), "", "", "topic", "list", "--brokers", addr); r.code != 0 || row(r.stdout, "env") == nil {
		t.Errorf("topic list --brokers after the command: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{nil, 2, "", "Commands:"},
		{[]string{"help"}, 0, "Commands:\n  broker", ""},
		{[]string{"-h"}, 0, "Usage:\n  weir", ""},
		{[]string{"help", "topic"}, 0, "weir topic <command>", ""},
		{[]string{"help", "consume"}, 0, "--from-beginning", ""},
		{[]string{"topic"}, 2, "", "Commands:\n  create"},
		{[]string{"topic", "-h"}, 0, "describe", ""},
		{[]string{"topic", "create", "-h"}, 0, "Usage:\n  weir topic create NAME", ""},
		{[]string{"group", "reset-offsets", "--help"}, 0, "--to-datetime TIME", ""},
		{[]string{"bogus"}, 2, "", `weir: unknown command "bogus"` + "\nRun 'weir -h' for usage."},
		{[]string{"topic", "bogus"}, 2, "", `weir topic: unknown command "bogus"`},
		{[]string{"topic", "create"}, 2, "", "weir topic create: missing NAME\nRun 'weir topic create -h' for usage."},
		{[]string{"topic", "create", "a", "b"}, 2, "", `unexpected argument "b"`},
		{[]string{"topic", "create", "a", "--partitions", "x"}, 2, "", `invalid value "x" for flag -partitions`},
		{[]string{"topic", "create", "a", "--partitions", "0"}, 2, "", "--partitions must be at least 1"},
		{[]string{"topic", "create", "a", "--nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"topic", "create", "a", "--config", "novalue"}, 2, "", "want key=value"},
		{[]string{"consume"}, 2, "", "missing TOPIC"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t"}, 2, "", "exactly one of --to-earliest"},
		{[]string{"group", "reset-offsets", "g", "--to-latest"}, 2, "", "--topic is required"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"}, 2, "", "want RFC 3339"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t:x", "--to-latest"}, 2, "", "not a partition number"},
	}
	for _, tt := range tests {
		r := weirCtx(context.Background(), "", "", tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("weir %q: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
				tt.args, r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDescribeReplicaColumns(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p           kadm.PartitionDetail
		epoch, lags string
	}{
		{kadm.PartitionDetail{LeaderEpoch: 4, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, "4", "-"},
		{kadm.PartitionDetail{LeaderEpoch: 5, Replicas: []int32{1, 2, 3}, ISR: []int32{2}}, "5", "1,3"},
		{kadm.PartitionDetail{LeaderEpoch: -1, Replicas: []int32{1, 2, 3}, ISR: []int32{1},
			OfflineReplicas: []int32{3}}, "-", "2,3(offline)"},
	} {
		if got := epoch(tt.p.LeaderEpoch); got != tt.epoch {
			t.Errorf("epoch(%d) = %q, want %q", tt.p.LeaderEpoch, got, tt.epoch)
		}
		if got := lagging(tt.p); got != tt.lags {
			t.Errorf("lagging(replicas %v, ISR %v, offline %v) = %q, want %q",
				tt.p.Replicas, tt.p.ISR, tt.p.OfflineReplicas, got, tt.lags)
		}
	}
}
