package interop_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// debug turns on client-side protocol logging: INTEROP_DEBUG=1 for every
// client, or a comma-separated subset of sarama, kcat, python.
var debug = os.Getenv("INTEROP_DEBUG") != ""

func debugFor(client string) bool {
	v := os.Getenv("INTEROP_DEBUG")
	return v == "1" || slices.Contains(strings.Split(v, ","), client)
}

func TestMain(m *testing.M) {
	if debugFor("sarama") {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	}
	os.Exit(m.Run())
}

// startBroker starts an embedded broker for one test.
func startBroker(t *testing.T, opts ...brokertest.Option) *broker.Broker {
	t.Helper()
	return brokertest.Start(t, opts...)
}

// withPartitions makes auto-created topics have n partitions.
func withPartitions(n int32) brokertest.Option {
	return brokertest.WithConfig(func(c *broker.Config) { c.DefaultPartitions = n })
}

// testCtx is a context that ends after d or when the test ends.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20ms until it returns nil or ctx ends, then
// fails with the last error.
func eventually(ctx context.Context, t *testing.T, what string, cond func() error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: gave up: %v", what, err)
		case <-tick.C:
		}
	}
}

// missingTool skips the test when a tool is absent, or fails it under CI,
// which is expected to install every tool (.ci/run).
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so the tool must be installed; see .ci/run)", msg)
	}
	t.Skipf("%s; skipping (install it, or set CI=1 to make this a failure)", msg)
}

// needKcat returns the kcat binary path, or skips/fails.
func needKcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		missingTool(t, "kcat not found in PATH (Debian package kcat)")
	}
	return p
}

const python = "/usr/bin/python3"

// needPython checks that /usr/bin/python3 can import module, or
// skips/fails.
func needPython(t *testing.T, module, pkg string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		missingTool(t, "%s not found (Debian package %s)", python, pkg)
	}
	ctx := testCtx(t, 30*time.Second)
	out, err := exec.CommandContext(ctx, python, "-c", "import "+module).CombinedOutput()
	if err != nil {
		missingTool(t, "%s cannot import %s (Debian package %s): %v: %s", python, module, pkg, err, bytes.TrimSpace(out))
	}
}

// run runs a command with stdin, returning stdout; stderr is shown when
// the command fails (which fails the test) or when debugging.
func run(ctx context.Context, t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	return runAbort(ctx, t, stdin, "", name, args...)
}

// runAbort is run that also kills the command, failing the test, as soon
// as its stderr shows abortOn (if not empty): a client that logs a
// protocol error may otherwise retry until the deadline.
func runAbort(ctx context.Context, t *testing.T, stdin, abortOn string, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runErr(ctx, stdin, abortOn, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, clip(out), clip(stderr))
	}
	if debug && stderr != "" {
		t.Logf("%s %s stderr:\n%s", name, strings.Join(args, " "), clip(stderr))
	}
	return out
}

// clip keeps the first 10 and last 40 lines of long command output.
func clip(s string) string {
	lines := strings.Split(s, "\n")
	if debug || len(lines) <= 50 {
		return s
	}
	return strings.Join(lines[:10], "\n") + fmt.Sprintf("\n[... %d lines ...]\n", len(lines)-50) + strings.Join(lines[len(lines)-40:], "\n")
}

func runErr(ctx context.Context, stdin, abortOn string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o bytes.Buffer
	e := &watchWriter{pat: []byte(abortOn), hit: func(line string) {
		cancel(fmt.Errorf("aborted: stderr shows %q: %s", abortOn, line))
	}}
	cmd.Stdout, cmd.Stderr = &o, e
	cmd.WaitDelay = 5 * time.Second
	// The Python scripts log verbosely when INTEROP_DEBUG is non-empty.
	pyDebug := ""
	if debugFor("python") {
		pyDebug = "1"
	}
	cmd.Env = append(os.Environ(), "INTEROP_DEBUG="+pyDebug)
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	return o.String(), e.String(), err
}

// watchWriter collects a command's stderr and calls hit once with the
// first line that contains pat.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	pat  []byte
	hit  func(line string)
	seen bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	from := max(0, w.buf.Len()-len(w.pat))
	w.buf.Write(p)
	if w.seen || len(w.pat) == 0 {
		return len(p), nil
	}
	b := w.buf.Bytes()
	if i := bytes.Index(b[from:], w.pat); i >= 0 {
		w.seen = true
		i += from
		lo := bytes.LastIndexByte(b[:i], '\n') + 1
		hi := len(b)
		if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
			hi = i + j
		}
		w.hit(string(b[lo:hi]))
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// rec is one record as a client saw it, in a client-neutral form.
type rec struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func (r rec) String() string {
	h := make([]string, 0, len(r.Headers))
	for k, v := range r.Headers {
		h = append(h, k+"="+v)
	}
	sort.Strings(h)
	return fmt.Sprintf("%s/%d@%d %q=%q %v", r.Topic, r.Partition, r.Offset, r.Key, r.Value, h)
}

func sameHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// sortRecs orders records by topic, partition and offset.
func sortRecs(rs []rec) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
}

// checkRecs asserts that got and want hold exactly the same records (after
// sorting both by topic, partition, offset).
func checkRecs(t *testing.T, what string, got, want []rec) {
	t.Helper()
	got = append([]rec(nil), got...)
	want = append([]rec(nil), want...)
	sortRecs(got)
	sortRecs(want)
	bad := len(got) != len(want)
	for i := 0; !bad && i < len(got); i++ {
		g, w := got[i], want[i]
		bad = g.Topic != w.Topic || g.Partition != w.Partition || g.Offset != w.Offset ||
			g.Key != w.Key || g.Value != w.Value || !sameHeaders(g.Headers, w.Headers)
	}
	if bad {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: got %d records, want %d\n", what, len(got), len(want))
		for i := 0; i < max(len(got), len(want)); i++ {
			var g, w string
			if i < len(got) {
				g = got[i].String()
			}
			if i < len(want) {
				w = want[i].String()
			}
			mark := "  "
			if g != w {
				mark = "!="
			}
			fmt.Fprintf(&b, "  %s got  %s\n     want %s\n", mark, g, w)
		}
		t.Fatal(b.String())
	}
}

// checkPartitionOrder asserts that, within each partition, records arrived
// in strictly increasing offset order, each exactly one after the previous
// when contiguous is set.
func checkPartitionOrder(t *testing.T, what string, rs []rec, contiguous bool) {
	t.Helper()
	last := map[string]int64{}
	for _, r := range rs {
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		prev, ok := last[k]
		if ok && (r.Offset <= prev || contiguous && r.Offset != prev+1) {
			t.Fatalf("%s: %s: offset %d arrived after %d", what, k, r.Offset, prev)
		}
		last[k] = r.Offset
	}
}

// saramaConfig is a sarama config for version v with test-friendly timing.
func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = v
	c.ClientID = "weir-interop"
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	c.Producer.Retry.Backoff = 50 * time.Millisecond
	c.Consumer.Retry.Backoff = 50 * time.Millisecond
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	c.Admin.Retry.Backoff = 50 * time.Millisecond
	return c
}

// createTopic creates a topic through sarama's ClusterAdmin (default
// version), for tests of other clients that need one up front.
func createTopic(t *testing.T, addr, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(sarama.V2_0_0_0))
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	defer admin.Close()
	err = admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// highWatermarks returns each partition's next offset, via sarama.
func highWatermarks(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, saramaConfig(sarama.V2_0_0_0))
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	hw := map[int32]int64{}
	for _, p := range parts {
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("newest offset of %s/%d: %v", topic, p, err)
		}
		hw[p] = off
	}
	return hw
}

// groupOffsets returns a group's committed offsets for a topic, via sarama
// ClusterAdmin (partitions with no commit are left out).
func groupOffsets(t *testing.T, addr, group, topic string) map[int32]int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(sarama.V2_0_0_0))
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets(%s): %v", group, err)
	}
	if resp.Err != sarama.ErrNoError {
		t.Fatalf("ListConsumerGroupOffsets(%s): %v", group, resp.Err)
	}
	got := map[int32]int64{}
	for p, b := range resp.Blocks[topic] {
		if b.Err != sarama.ErrNoError {
			t.Fatalf("ListConsumerGroupOffsets(%s) %s/%d: %v", group, topic, p, b.Err)
		}
		if b.Offset >= 0 {
			got[p] = b.Offset
		}
	}
	return got
}

func fmtOffsets(m map[int32]int64) string {
	ps := make([]int, 0, len(m))
	for p := range m {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%d:%d ", p, m[int32(p)])
	}
	return strings.TrimSpace(b.String())
}

func sameOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
