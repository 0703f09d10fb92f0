package replica

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSnapshotCatchUp stops a follower, produces until the leader has
// compacted its Raft log past the follower's position, and restarts the
// follower twice: with its old (behind) state and with empty directories.
// Both times it catches up by an installed snapshot that carries the
// segment files, ends with segment files identical to the leader's, and,
// once leader, still answers an idempotent retry with the original offset.
func TestSnapshotCatchUp(t *testing.T) {
	c := newDurableCluster(t, 3)
	rc := raftConfig()
	rc.TrailingLogs = 8
	rc.SnapshotThreshold = 16
	rc.SnapshotInterval = 20 * time.Millisecond
	c.raft = rc
	for _, nd := range c.nodes { // restart with the snapshotting config
		c.stop(nd)
		c.start(nd)
	}
	p := &producerRun{c: c, pid: 41}
	end := p.produce(t, 0, 20)
	c.converge(end)

	for _, wipe := range []bool{false, true} {
		f := c.follower()
		before := f.g.FSM().AppliedIndex()
		c.stop(f)
		end = p.produce(t, end, 60)
		c.awaitCompacted(before)
		if wipe {
			for _, d := range []string{f.dir, f.raftDir} {
				if err := os.RemoveAll(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		c.start(f)
		end = p.produce(t, end, 5)
		c.converge(end)
		if f.g.FSM().installs.Load() != 1 {
			t.Fatalf("wipe=%v: follower caught up without installing a snapshot", wipe)
		}
	}

	// The restored followers make up the majority after the leader
	// stops: one of them leads, knows the producer, and dedups.
	c.stop(c.leader())
	if base, err := c.propose(p.last); err != nil || base != p.lastBase {
		t.Fatalf("retry on the new leader: %d %v, want %d", base, err, p.lastBase)
	}
	end = p.produce(t, end, 5)
	c.converge(end)
}

// producerRun produces batches alternating between two idempotent
// producers (so that the cluster's retries on leadership changes are
// deduplicated), remembering the last batch of the first.
type producerRun struct {
	c        *cluster
	pid      int64
	seq      [2]int32
	last     []byte
	lastBase int64
}

// produce proposes n batches starting at offset end and returns the new
// end.
func (p *producerRun) produce(t *testing.T, end int64, n int) int64 {
	t.Helper()
	for i := range n {
		k := i % 2
		b := mkBatch(t, p.pid+int64(k), 0, p.seq[k], 2+k, "idem"+strconv.Itoa(k))
		p.seq[k] += int32(2 + k)
		base, err := p.c.propose(b)
		if err != nil || base != end {
			t.Fatalf("propose: %d %v, want %d", base, err, end)
		}
		if i%2 == 0 {
			p.last, p.lastBase = b, base
		}
		end += int64(2 + i%2)
	}
	return end
}

// follower returns a live node that is not the leader.
func (c *cluster) follower() *node {
	ld := c.leader()
	for _, nd := range c.live() {
		if nd != ld {
			return nd
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// awaitCompacted waits until every live node has taken a snapshot far
// enough past index that its Raft log no longer holds index+1 (raft keeps
// TrailingLogs entries before the snapshot).
func (c *cluster) awaitCompacted(index uint64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, nd := range c.live() {
		for {
			snap, _ := strconv.ParseUint(nd.g.Raft().Stats()["last_snapshot_index"], 10, 64)
			if snap > index+c.raft.TrailingLogs+1 {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("node %s: snapshot at %d, want past %d", nd.id, snap, index+c.raft.TrailingLogs+1)
			}
			time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
		}
	}
}
