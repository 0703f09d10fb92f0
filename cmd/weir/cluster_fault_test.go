package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/internal/faultcheck"
)

// These tests run three real `weir broker` processes (the test binary
// acting as weir) and inflict what in-process brokers cannot: a paused
// process (SIGSTOP: its sockets stay open, nothing answers), a crash
// (SIGKILL: no checkpoint, no clean close) and a rolling restart, under
// the faultcheck queue workload.

// procCluster is three broker processes on fixed loopback ports, so a
// restarted node comes back at the address clients and peers know.
type procCluster struct {
	t      *testing.T
	dir    string
	kafka  []string
	raft   []string
	procs  []*exec.Cmd
	exited []chan struct{}
	extra  []string // more `weir broker` flags for every node
}

// startProcCluster starts three nodes, each with the extra broker flags.
func startProcCluster(t *testing.T, extra ...string) *procCluster {
	t.Helper()
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	c := &procCluster{t: t, dir: t.TempDir(), procs: make([]*exec.Cmd, 3), exited: make([]chan struct{}, 3), extra: extra}
	for i := range 3 {
		c.kafka = append(c.kafka, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		c.raft = append(c.raft, fmt.Sprintf("127.0.0.1:%d", ports[3+i]))
	}
	for i := range 3 {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range 3 {
			c.kill(i)
		}
	})
	c.awaitServing()
	return c
}

func (c *procCluster) voters() string {
	var vs []string
	for i, a := range c.raft {
		vs = append(vs, fmt.Sprintf("%d@%s", i+1, a))
	}
	return strings.Join(vs, ",")
}

// start launches node i (0-based) on its data directory.
func (c *procCluster) start(i int) {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], "broker", "--node-id", fmt.Sprint(i+1), "--listen", c.kafka[i],
		"--raft-listen", c.raft[i], "--voters", c.voters(), "--data-dir", filepath.Join(c.dir, fmt.Sprint("node-", i+1)),
		"--log-level", "warn")
	cmd.Args = append(cmd.Args, c.extra...)
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	cmd.Stderr = testLogWriter{c.t, fmt.Sprintf("node %d | ", i+1)}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.procs[i], c.exited[i] = cmd, done
}

// kill SIGKILLs node i (resuming it first if paused) and waits for it.
func (c *procCluster) kill(i int) {
	if c.procs[i] == nil {
		return
	}
	c.procs[i].Process.Signal(syscall.SIGCONT)
	c.procs[i].Process.Kill()
	<-c.exited[i]
	c.procs[i] = nil
}

// stop SIGTERMs node i and waits for a clean exit.
func (c *procCluster) stop(i int) {
	c.t.Helper()
	c.procs[i].Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited[i]:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("node %d did not stop on SIGTERM", i+1)
	}
	c.procs[i] = nil
}

func (c *procCluster) signal(i int, sig syscall.Signal) {
	c.t.Helper()
	if err := c.procs[i].Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
}

// awaitServing waits until every node lists three brokers.
func (c *procCluster) awaitServing() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, addr := range c.kafka {
		if err := pollBrokers(ctx, addr, 3); err != nil {
			c.t.Fatalf("%s: %v", addr, err)
		}
	}
}

// leaderOf returns the 0-based node leading partition p of topic. With
// preferred, it waits until the preferred replica leads: a new partition
// hands leadership over to it if another replica won the first election.
func (c *procCluster) leaderOf(topic string, p int32, preferred bool) int {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
		if err == nil {
			if pd, ok := md.Topics[topic].Partitions[p]; ok && pd.Leader > 0 && (!preferred || pd.Leader == pd.Replicas[0]) {
				return int(pd.Leader) - 1
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s-%d has no leader", topic, p)
	return -1
}

type testLogWriter struct {
	t      *testing.T
	prefix string
}

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runFaults runs the queue workload on c while inject does its damage,
// then checks the history.
func runFaults(t *testing.T, c *procCluster, inject func(w *faultcheck.Workload, progress func(int64))) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	w, err := faultcheck.Start(ctx, faultcheck.Config{
		Seeds: c.kafka, Topic: "queue", Partitions: 3, ReplicationFactor: 3,
		Producers: 2, Consumers: 2, Group: "readers", Rate: 1000, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	progress := func(n int64) {
		t.Helper()
		if err := w.AwaitAcked(ctx, w.Acked()+n); err != nil {
			t.Fatalf("no progress (%d acked): %v", w.Acked(), err)
		}
	}
	progress(300)
	inject(w, progress)
	rep := faultcheck.Check(w.Stop(ctx))
	if !rep.OK() {
		t.Fatal(rep)
	}
	t.Logf("%d acked; longest gap between acks per partition (unavailability): %v", rep.Summary.Acked, rep.Summary.PartitionGaps)
}

func TestProcessFaultLeaderPausedThenKilled(t *testing.T) {
	c := startProcCluster(t)
	runFaults(t, c, func(w *faultcheck.Workload, progress func(int64)) {
		paused := c.leaderOf("queue", 0, true)
		c.signal(paused, syscall.SIGSTOP)
		progress(1000)
		c.signal(paused, syscall.SIGCONT)
		progress(300)
		victim := c.leaderOf("queue", 1, false)
		c.kill(victim)
		progress(1000)
		c.start(victim)
		progress(500)
	})
}

func TestProcessRollingRestart(t *testing.T) {
	c := startProcCluster(t)
	runFaults(t, c, func(w *faultcheck.Workload, progress func(int64)) {
		for i := range 3 {
			c.stop(i)
			progress(500)
			c.start(i)
			c.awaitServing()
			progress(300)
		}
		// Leadership drifted off each node as it stopped; hand it back
		// under load (every topic, __consumer_offsets included).
		waitFor(t, "preferred leader elections", func() error {
			r := weir(t, c.kafka[0], "", "topic", "elect-leaders")
			return check(r.code == 0, r.stdout+r.stderr)
		})
		waitFor(t, "the preferred replicas to lead", func() error {
			out := mustWeir(t, c.kafka[1], "", "topic", "describe", "queue").stdout
			for _, p := range []string{"0", "1", "2"} {
				f := row(out, p)
				if len(f) < 4 || !strings.HasPrefix(f[3], f[1]+",") {
					return fmt.Errorf("partition %s is not led by its first replica:\n%s", p, out)
				}
			}
			return nil
		})
		progress(300)
	})
}
