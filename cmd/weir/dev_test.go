package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDevClusterUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--nodes", "0"}, "--nodes 0 is outside 1..100"},
		{[]string{"--nodes", "101"}, "--nodes 101 is outside 1..100"},
		{[]string{"--base-port", "65500"}, "--base-port 65500 puts ports outside 1..65535 (the Raft ports end at 65602)"},
		{[]string{"--base-port", "-1"}, "--base-port -1 puts ports outside"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--log-level", "loud"}, `invalid --log-level "loud"`},
	} {
		args := append([]string{"dev", "cluster"}, tt.args...)
		r := weirCtx(context.Background(), "", "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("weir %q: exit %d, stderr %q; want 2 and %q", args, r.code, r.stderr, tt.stderr)
		}
	}
	r := weirCtx(context.Background(), "", "", "dev", "cluster", "-h")
	for _, want := range []string{"--nodes N", "--base-port PORT", "--data-dir DIR", "PORT+100+i-1"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("weir dev cluster -h: exit %d, lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
	wantFail(t, weirCtx(context.Background(), "", "", "dev", "nope"), 2, `weir dev: unknown command "nope"`)
}

func TestPlanDevNodes(t *testing.T) {
	t.Parallel()
	nodes, err := planDevNodes(3, 9092, "/d")
	if err != nil {
		t.Fatal(err)
	}
	c := &devClusterProcs{nodes: nodes}
	if got, want := c.bootstrap(), "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"; got != want {
		t.Errorf("bootstrap = %q, want %q", got, want)
	}
	if got, want := c.voters(), "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"; got != want {
		t.Errorf("voters = %q, want %q", got, want)
	}
	if nodes[2].dataDir != filepath.Join("/d", "node-3") {
		t.Errorf("node 3's data dir = %q", nodes[2].dataDir)
	}

	// Free ports are distinct across Kafka and Raft.
	nodes, err = planDevNodes(3, 0, "/d")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.kafkaAddr], seen[n.raftAddr] = true, true
	}
	if len(seen) != 6 {
		t.Errorf("free ports are not distinct: %v", seen)
	}
}

func TestPrefixWriter(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	p := &prefixWriter{out: &out, prefix: "node 2 | "}
	for _, chunk := range []string{"first li", "ne\nsecond\nthi", "rd"} {
		if n, err := p.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if want := "node 2 | first line\nnode 2 | second\n"; out.String() != want {
		t.Errorf("before flush: %q, want %q", out.String(), want)
	}
	p.flush()
	p.flush()
	if want := "node 2 | first line\nnode 2 | second\nnode 2 | third\n"; out.String() != want {
		t.Errorf("after flush: %q, want %q", out.String(), want)
	}
}

// devClusterProc is `weir dev cluster` running as a child of the test: the
// test binary itself, acting as weir (see TestMain), as are its nodes.
type devClusterProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	exited         chan struct{} // closed once cmd.Wait has returned
	waitErr        error
}

func startDevCluster(t *testing.T, args ...string) *devClusterProc {
	t.Helper()
	p := &devClusterProc{exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"dev", "cluster"}, args...)...)
	p.cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	// A failed test stops the cluster as a person would, so that it
	// removes its temporary data; killing it kills its nodes too.
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(devStopTimeout + 10*time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// await polls cond until it holds, failing the test after timeout or if
// weir dev cluster exits first.
func (p *devClusterProc) await(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-p.exited:
			if cond() {
				return
			}
			t.Fatalf("weir dev cluster exited (%v) before %s\nstdout:\n%s\nstderr:\n%s",
				p.waitErr, what, p.stdout.String(), p.stderr.String())
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s\nstdout:\n%s\nstderr:\n%s", what, p.stdout.String(), p.stderr.String())
		case <-tick.C:
		}
	}
}

var nodeStartedRE = regexp.MustCompile(`node (\d+) started \(pid (\d+)\)`)

// pids waits until all n nodes have started and returns their process ids.
func (p *devClusterProc) pids(t *testing.T, n int) map[int]int {
	t.Helper()
	pids := map[int]int{}
	p.await(t, fmt.Sprintf("%d nodes to start", n), 30*time.Second, func() bool {
		for _, m := range nodeStartedRE.FindAllStringSubmatch(p.stderr.String(), -1) {
			id, _ := strconv.Atoi(m[1])
			pids[id], _ = strconv.Atoi(m[2])
		}
		return len(pids) == n
	})
	return pids
}

// wait waits for weir dev cluster to exit and returns its exit code.
func (p *devClusterProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(2 * devStopTimeout):
		t.Fatalf("weir dev cluster did not exit\nstderr:\n%s", p.stderr.String())
	}
	var exit *exec.ExitError
	if errors.As(p.waitErr, &exit) {
		return exit.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatal(p.waitErr)
	}
	return 0
}

// processGone reports whether pid has exited: it no longer exists, or it is
// a zombie that nobody has reaped yet (an orphan of a killed parent).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

// assertNodesGone fails the test unless every node exits soon.
func assertNodesGone(t *testing.T, pids map[int]int) {
	t.Helper()
	for id, pid := range pids {
		waitFor(t, fmt.Sprintf("node %d (pid %d) to exit", id, pid), func() error {
			return check(processGone(pid), "it is still running")
		})
	}
}

// TestDevCluster runs a cluster, produces and consumes through its
// bootstrap address, and stops it with SIGTERM. One node needs a single
// voter to elect itself; three need them to find each other.
func TestDevCluster(t *testing.T) {
	t.Parallel()
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			t.Parallel()
			testDevCluster(t, nodes)
		})
	}
}

func testDevCluster(t *testing.T, nodes int) {
	n := strconv.Itoa(nodes)
	p := startDevCluster(t, "--nodes", n, "--base-port", "0", "--log-level", "warn")
	pids := p.pids(t, nodes)
	p.await(t, "the bootstrap address", devStartTimeout+10*time.Second, func() bool {
		return strings.HasSuffix(p.stdout.String(), "\n")
	})
	bootstrap := strings.TrimSpace(p.stdout.String())
	if got := len(strings.Split(bootstrap, ",")); got != nodes {
		t.Fatalf("bootstrap %q lists %d addresses, want %d", bootstrap, got, nodes)
	}

	mustWeir(t, bootstrap, "", "topic", "create", "t", "--partitions", "2", "--replication-factor", n)
	mustWeir(t, bootstrap, "hello\n", "produce", "t", "--acks", "all")
	r := mustWeir(t, bootstrap, "", "consume", "t", "--from-beginning", "--max", "1", "--format", "%v")
	if r.stdout != "hello\n" {
		t.Errorf("consumed %q, want hello", r.stdout)
	}
	r = mustWeir(t, bootstrap, "", "topic", "describe", "t")
	if f := row(r.stdout, "0"); len(f) != 8 || len(strings.Split(f[3], ",")) != nodes {
		t.Errorf("partition 0 row = %q, want %d replicas:\n%s", f, nodes, r.stdout)
	}

	if nodes >= 2 { // a manual replica assignment, as kafka-topics writes one
		mustWeir(t, bootstrap, "", "topic", "create", "m", "--replica-assignment", "2:1,1:2")
		// Straight away, whichever broker answers: one whose metadata
		// lags the controller's catches up before saying "unknown".
		r = mustWeir(t, bootstrap, "", "topic", "describe", "m")
		if f0, f1 := row(r.stdout, "0"), row(r.stdout, "1"); len(f0) != 8 || len(f1) != 8 || f0[3] != "2,1" || f1[3] != "1,2" {
			t.Errorf("assigned topic rows %q and %q, want replicas 2,1 and 1,2:\n%s", f0, f1, r.stdout)
		}
	}
	if nodes == 3 { // reassignments: grow to 3 replicas, then move
		reassignTo(t, bootstrap, "m", []string{"2,1,3", "1,2,3"}, "--replication-factor", "3")
		reassignTo(t, bootstrap, "m", []string{"3,2", "3,1"}, "--replica-assignment", "3:2,3:1")
		r = mustWeir(t, bootstrap, "", "topic", "reassign", "m", "--cancel")
		if want := "m-0: not being reassigned\nm-1: not being reassigned\n"; r.stdout != want {
			t.Errorf("cancel with nothing in progress printed %q, want %q", r.stdout, want)
		}
	}

	dataDir := regexp.MustCompile(`data in (\S+)/node-1\n`).FindStringSubmatch(p.stderr.String())
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("weir dev cluster exited %d after SIGTERM\nstderr:\n%s", code, p.stderr.String())
	}
	assertNodesGone(t, pids)
	if dataDir == nil {
		t.Fatalf("stderr names no data directory:\n%s", p.stderr.String())
	}
	if _, err := os.Stat(dataDir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data directory %s is still there (%v)", dataDir[1], err)
	}
}

// reassignTo runs weir topic reassign topic with args and --wait, and
// checks the replicas describe shows for each partition afterwards.
func reassignTo(t *testing.T, bootstrap, topic string, replicas []string, args ...string) {
	t.Helper()
	r := mustWeir(t, bootstrap, "", append([]string{"topic", "reassign", topic, "--wait"}, args...)...)
	if !strings.HasSuffix(r.stdout, "reassignment of "+topic+" complete\n") {
		t.Errorf("reassign %v printed %q", args, r.stdout)
	}
	waitFor(t, "replicas "+strings.Join(replicas, " "), func() error {
		out := mustWeir(t, bootstrap, "", "topic", "describe", topic).stdout
		for p, want := range replicas {
			f := row(out, strconv.Itoa(p))
			if len(f) != 8 || f[3] != want || f[4] != want {
				return fmt.Errorf("partition %d: want replicas and ISR %s:\n%s", p, want, out)
			}
		}
		return nil
	})
}

// TestDevClusterNodeDies checks that when a node dies, weir dev cluster
// stops the others and fails, keeping a data directory it was given.
func TestDevClusterNodeDies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startDevCluster(t, "--nodes", "3", "--base-port", "0", "--data-dir", dir, "--log-level", "warn")
	pids := p.pids(t, 3)
	if err := syscall.Kill(pids[2], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 1 || !strings.Contains(p.stderr.String(), "node 2 exited unexpectedly") {
		t.Errorf("weir dev cluster exited %d after node 2 died; want 1\nstderr:\n%s", code, p.stderr.String())
	}
	assertNodesGone(t, pids)
	if _, err := os.Stat(filepath.Join(dir, "node-1")); err != nil {
		t.Errorf("the given data directory was not kept: %v", err)
	}
}

// TestDevClusterStoppedEarly checks that SIGTERM while the nodes are still
// starting stops them cleanly: a node that dies of the forwarded SIGTERM
// before it handles signals has not failed.
func TestDevClusterStoppedEarly(t *testing.T) {
	t.Parallel()
	p := startDevCluster(t, "--nodes", "3", "--base-port", "0", "--log-level", "warn")
	pids := p.pids(t, 3)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("weir dev cluster exited %d after SIGTERM\nstderr:\n%s", code, p.stderr.String())
	}
	assertNodesGone(t, pids)
}

func TestResizeReplicas(t *testing.T) {
	for _, tt := range []struct {
		replicas []int32
		n        int
		want     string
	}{
		{[]int32{2, 1}, 3, "[2 1 3]"},
		{[]int32{1}, 3, "[1 2 3]"},
		{[]int32{3}, 2, "[3 1]"},
		{[]int32{3, 1, 2}, 1, "[3]"},
		{[]int32{5}, 2, "[5 1]"}, // a replica on a broker no longer listed
	} {
		if got := fmt.Sprint(resize(tt.replicas, tt.n, []int32{3, 1, 2})); got != tt.want {
			t.Errorf("resize(%v, %d) = %s, want %s", tt.replicas, tt.n, got, tt.want)
		}
	}
}
