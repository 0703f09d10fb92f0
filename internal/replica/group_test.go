package replica

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestReplicatesIdentically(t *testing.T) {
	c := newCluster(t, 3)
	var end int64
	seq := int32(0)
	for i := range 30 {
		var b []byte
		n := 1 + i%4
		if i%2 == 0 {
			b = mkBatch(t, -1, -1, -1, n, "plain")
		} else {
			b = mkBatch(t, 42, 0, seq, n, "idem")
			seq += int32(n)
		}
		base, err := c.propose(b)
		if err != nil {
			t.Fatal(err)
		}
		if base != end {
			t.Fatalf("batch %d at %d, want %d", i, base, end)
		}
		end += int64(n)
	}
	c.converge(end)
	// The leader epoch is stamped from the entry's term.
	ld := c.leader()
	if ep := ld.g.LeaderEpoch(); ep < 1 {
		t.Fatalf("leader epoch %d", ep)
	}
}

func TestIdempotentRetryAndRefusals(t *testing.T) {
	c := newCluster(t, 3)
	b0 := mkBatch(t, 7, 0, 0, 3, "a")
	base, err := c.propose(b0)
	if err != nil || base != 0 {
		t.Fatalf("first: %d %v", base, err)
	}
	b1 := mkBatch(t, 7, 0, 3, 2, "b")
	if base, err = c.propose(b1); err != nil || base != 3 {
		t.Fatalf("second: %d %v", base, err)
	}
	// Retries of both are answered with their original offsets.
	if base, err = c.propose(b0); err != nil || base != 0 {
		t.Fatalf("retry of first: %d %v", base, err)
	}
	if base, err = c.propose(b1); err != nil || base != 3 {
		t.Fatalf("retry of second: %d %v", base, err)
	}
	// A sequence gap and a stale epoch are refused.
	if _, err = c.propose(mkBatch(t, 7, 0, 9, 1, "gap")); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap: %v", err)
	}
	if _, err = c.propose(mkBatch(t, 7, 1, 5, 1, "bumped-not-zero")); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("bumped epoch at seq 5: %v", err)
	}
	c.converge(5)
	// The producer continues; a new epoch then fences the old one.
	if base, err = c.propose(mkBatch(t, 7, 0, 5, 1, "c")); err != nil || base != 5 {
		t.Fatalf("next: %d %v", base, err)
	}
	if base, err = c.propose(mkBatch(t, 7, 1, 0, 1, "d")); err != nil || base != 6 {
		t.Fatalf("new epoch: %d %v", base, err)
	}
	if _, err = c.propose(mkBatch(t, 7, 0, 6, 1, "stale")); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	c.converge(7)
}

func TestLeaderFailover(t *testing.T) {
	c := newCluster(t, 3)
	var end int64
	seq := int32(0)
	var last []byte
	var lastBase int64
	for range 10 {
		last = mkBatch(t, 9, 0, seq, 2, "x")
		base, err := c.propose(last)
		if err != nil || base != end {
			t.Fatalf("propose: %d %v, want %d", base, err, end)
		}
		lastBase = base
		seq += 2
		end += 2
	}
	old := c.leader()
	epoch := old.g.LeaderEpoch()
	c.stop(old)

	nl := c.leader()
	if nl == old {
		t.Fatal("stopped node still leader")
	}
	if e := nl.g.LeaderEpoch(); e <= epoch {
		t.Fatalf("leader epoch %d after failover, was %d", e, epoch)
	}
	// The new leader knows the producer's window: the retried last batch
	// gets its original offset.
	if base, err := c.propose(last); err != nil || base != lastBase {
		t.Fatalf("retry after failover: %d %v, want %d", base, err, lastBase)
	}
	for range 10 {
		base, err := c.propose(mkBatch(t, 9, 0, seq, 2, "y"))
		if err != nil || base != end {
			t.Fatalf("propose after failover: %d %v, want %d", base, err, end)
		}
		seq += 2
		end += 2
	}
	c.converge(end)

	// The old leader restarts on its directory and Raft store, replays,
	// catches up, and holds the same log without duplicates.
	c.start(old)
	for range 5 {
		base, err := c.propose(mkBatch(t, -1, -1, -1, 1, "z"))
		if err != nil || base != end {
			t.Fatalf("propose after restart: %d %v, want %d", base, err, end)
		}
		end++
	}
	c.converge(end)
}

func TestNotLeader(t *testing.T) {
	c := newCluster(t, 3)
	ld := c.leader()
	for _, nd := range c.nodes {
		if nd == ld {
			continue
		}
		_, err := nd.g.Propose(t.Context(), mkBatch(t, -1, -1, -1, 1, "f"))
		var nle *NotLeaderError
		if !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) || nle.Indeterminate {
			t.Fatalf("follower propose: %v", err)
		}
		if err := nd.g.Ready(t.Context()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("follower ready: %v", err)
		}
	}
}

// TestFollowerCrashRestart crashes a follower (raft stopped, log closed
// without a checkpoint), keeps producing, then restarts it on the same
// directory and Raft store: it replays its Raft log over the partition log
// it already has, appends nothing twice, and catches up.
func TestFollowerCrashRestart(t *testing.T) {
	c := newCluster(t, 3)
	var end int64
	for i := range 10 {
		if _, err := c.propose(mkBatch(t, 11, 0, int32(i), 1, "a")); err != nil {
			t.Fatal(err)
		}
		end++
	}
	c.converge(end)
	ld := c.leader()
	var f *node
	for _, nd := range c.nodes {
		if nd != ld {
			f = nd
			break
		}
	}
	if err := f.g.Raft().Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.g.Log().Close(); err != nil {
		t.Fatal(err)
	}
	f.g = nil
	for i := range 10 {
		if _, err := c.propose(mkBatch(t, 11, 0, int32(10+i), 1, "b")); err != nil {
			t.Fatal(err)
		}
		end++
	}
	c.start(f)
	c.converge(end)
	if got := f.g.FSM().AppliedIndex(); got == 0 {
		t.Fatal("restarted follower applied nothing")
	}
}

// TestDurableRestart runs three voters on raft-wal and file snapshot
// stores, stops them all, and restarts them on the same directories: they
// recover their Raft state, elect a leader, keep producing at the right
// offsets (an idempotent retry from before the restart is still answered
// with its original offset) and hold byte-identical logs.
func TestDurableRestart(t *testing.T) {
	c := newDurableCluster(t, 3)
	var end int64
	var last []byte
	for i := range 20 {
		last = mkBatch(t, 21, 0, int32(i*2), 2, "before")
		if base, err := c.propose(last); err != nil || base != end {
			t.Fatalf("propose: %d %v, want %d", base, err, end)
		}
		end += 2
	}
	c.converge(end)
	// A snapshot on one node exercises the file snapshot store across the
	// restart too.
	if err := c.leader().g.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		c.stop(nd)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	if base, err := c.propose(last); err != nil || base != end-2 {
		t.Fatalf("retry after restart: %d %v, want %d", base, err, end-2)
	}
	for i := range 20 {
		if base, err := c.propose(mkBatch(t, 21, 0, int32(40+i), 1, "after")); err != nil || base != end {
			t.Fatalf("propose after restart: %d %v, want %d", base, err, end)
		}
		end++
	}
	c.converge(end)
}

// TestCloseReleasesRaftDir checks that Close releases every file NewGroup
// opened in RaftDir: the group reopens on the same directory in the same
// process (raft-wal's metadata file is locked while open) and the
// directories can be removed.
func TestCloseReleasesRaftDir(t *testing.T) {
	dir, raftDir := filepath.Join(t.TempDir(), "p"), filepath.Join(t.TempDir(), "raft")
	open := func() *Group {
		addr, trans := raft.NewInmemTransport("")
		g, err := NewGroup(Config{ID: "1", Dir: dir, Log: logConfig(), Raft: raftConfig(), Transport: trans, RaftDir: raftDir})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Bootstrap([]raft.Server{{ID: "1", Address: addr}}); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			t.Fatal(err)
		}
		return g
	}
	for range 2 {
		g := open()
		c := &cluster{t: t, nodes: []*node{{id: "1", g: g}}}
		if _, err := c.propose(mkBatch(t, -1, -1, -1, 1, "x")); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{dir, raftDir} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMissingRaftDir(t *testing.T) {
	_, trans := raft.NewInmemTransport("")
	if _, err := NewGroup(Config{ID: "1", Dir: t.TempDir(), Log: logConfig(), Transport: trans}); err == nil {
		t.Fatal("NewGroup without stores or RaftDir succeeded")
	}
}
