package replica

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
)

// rawLog is a partition log written without Raft, as the broker keeps a
// single-replica partition.
type rawLog struct {
	start, end int64
	clock      int64
	data       []byte // every stored batch from start to end
	retry      []byte // producer 31's last batch, as the client sent it
	retryBase  int64
}

// writeRawLog appends to dir a few hundred records: plain batches, two
// idempotent producers (31, 32), one producer (30) whose only batch
// DeleteRecords removes again, and a transaction marker of producer 33
// (a control batch, which producer state ignores).
func writeRawLog(t *testing.T, dir string) rawLog {
	t.Helper()
	l, err := partlog.Open(dir, logConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := rawLog{clock: -1}
	add := func(b []byte) int64 {
		base, err := l.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := batch.ParseHeader(b)
		r.clock = max(r.clock, h.MaxTimestamp)
		return base
	}
	add(mkBatch(t, 30, 0, 0, 2, "gone"))
	var seq [2]int32
	for i := range 60 {
		ts := int64(baseTime + i*1000)
		add(mkBatchAt(t, -1, -1, -1, 3, "plain", ts))
		b := mkBatchAt(t, 31, 0, seq[0], 2, "p31", ts)
		r.retry, r.retryBase = bytes.Clone(b), add(b)
		add(mkBatchAt(t, 32, 0, seq[1], 1, "p32", ts))
		seq[0], seq[1] = seq[0]+2, seq[1]+1
	}
	o := batch.DefaultBuildOptions()
	o.ProducerID, o.ProducerEpoch, o.Attributes = 33, 0, batch.AttrControl|batch.AttrTransactional
	o.BaseTimestamp = baseTime + 60_000
	marker, err := batch.Build(o, []batch.Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	add(marker)
	if err := l.DeleteBefore(100); err != nil {
		t.Fatal(err)
	}
	r.start, r.end = l.StartOffset(), l.EndOffset()
	r.data = readAll(t, l, r.end)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return r
}

// adoptedNode adopts a raw log on a new durable node of c, with that node
// as the only voter, and starts it.
func adoptedNode(t *testing.T) (*cluster, *node, rawLog) {
	t.Helper()
	nd := newNode(t, "1", true)
	c := &cluster{t: t, nodes: []*node{nd}}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.stop(nd)
		}
	})
	raw := writeRawLog(t, nd.dir)
	if err := Adopt(c.config(nd), []raft.Server{{ID: nd.id, Address: nd.addr}}); err != nil {
		t.Fatal(err)
	}
	return c, nd, raw
}

// TestAdoptSingleVoter adopts a raft-less log, starts it as a one-voter
// group and produces on: offsets continue from the old log end, and a
// retry of a batch written before adoption is answered with its original
// offset, also after a restart.
func TestAdoptSingleVoter(t *testing.T) {
	c, nd, raw := adoptedNode(t)
	st, ok, err := readCheckpoint(nd.dir)
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	var ids []int64
	for _, p := range st.Producers {
		ids = append(ids, p.ID)
	}
	if st.Index != 1 || st.LogStart != raw.start || st.LogEnd != raw.end || st.Clock != raw.clock || !slices.Equal(ids, []int64{31, 32}) {
		t.Fatalf("checkpoint %+v (producers %v), want index 1, log [%d, %d), clock %d, producers [31 32]",
			st, ids, raw.start, raw.end, raw.clock)
	}

	c.start(nd)
	c.leader()
	if n, err := nd.g.stores.Logs.FirstIndex(); err != nil || n != 2 {
		t.Fatalf("first Raft log index %d (%v), want 2: Adopt must write no entries", n, err)
	}
	end := raw.end
	for i := range 5 {
		if base, err := c.propose(mkBatch(t, 34, 0, int32(i), 1, "after")); err != nil || base != end {
			t.Fatalf("propose after adoption: %d %v, want %d", base, err, end)
		}
		end++
	}
	for range 2 { // before and after a restart
		if base, err := c.propose(raw.retry); err != nil || base != raw.retryBase {
			t.Fatalf("retry of a pre-adoption batch: %d %v, want %d", base, err, raw.retryBase)
		}
		if got := readAll(t, nd.g.Log(), raw.end); !bytes.Equal(got, raw.data) {
			t.Fatal("pre-adoption records changed")
		}
		c.converge(end)
		c.stop(nd)
		c.start(nd)
		c.leader()
	}
	if base, err := c.propose(mkBatch(t, 32, 0, 60, 1, "after")); err != nil || base != end {
		t.Fatalf("propose after restart: %d %v, want %d", base, err, end)
	}
	if n := nd.g.FSM().installs.Load(); n != 0 {
		t.Fatalf("%d snapshot installs on the adopting node, want 0", n)
	}
}

// TestAdoptGrow adopts a raft-less log and adds two replicas with empty
// directories: each receives the pre-adoption log by an InstallSnapshot
// that streams the segment files (the Raft log has none of it), and the
// entries since. With the adopting node stopped, the newcomers elect a
// leader that still dedups a pre-adoption retry.
func TestAdoptGrow(t *testing.T) {
	c, nd, raw := adoptedNode(t)
	c.start(nd)
	end := raw.end
	for _, id := range []raft.ServerID{"2", "3"} {
		for i := range 3 {
			if base, err := c.propose(mkBatch(t, -1, -1, -1, 2, "grow"+string(id))); err != nil || base != end {
				t.Fatalf("propose: %d %v, want %d (step %d)", base, err, end, i)
			}
			end += 2
		}
		nw := newNode(t, id, true)
		c.nodes = append(c.nodes, nw)
		c.start(nw)
		if err := c.leader().g.Raft().AddVoter(nw.id, nw.addr, 0, 10*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.converge(end)
		if got := readAll(t, nw.g.Log(), raw.end); !bytes.Equal(got, raw.data) {
			t.Fatalf("node %s: pre-adoption records differ", id)
		}
		if n := nw.g.FSM().installs.Load(); n != 1 {
			t.Fatalf("node %s: %d snapshot installs, want 1", id, n)
		}
	}

	c.stop(nd)
	if base, err := c.propose(raw.retry); err != nil || base != raw.retryBase {
		t.Fatalf("retry on a newcomer leader: %d %v, want %d", base, err, raw.retryBase)
	}
	if base, err := c.propose(mkBatch(t, 31, 0, 120, 1, "later")); err != nil || base != end {
		t.Fatalf("propose on a newcomer leader: %d %v, want %d", base, err, end)
	}
	c.converge(end + 1)
}

// TestAdoptInterrupted: a crash after the snapshot is written and before
// the checkpoint is leaves a snapshot the FSM does not cover; NewGroup
// restores it at startup from the local log and the group is whole.
func TestAdoptInterrupted(t *testing.T) {
	c, nd, raw := adoptedNode(t)
	if err := os.Remove(filepath.Join(nd.dir, checkpointFile)); err != nil {
		t.Fatal(err)
	}
	c.start(nd)
	if base, err := c.propose(raw.retry); err != nil || base != raw.retryBase {
		t.Fatalf("retry of a pre-adoption batch: %d %v, want %d", base, err, raw.retryBase)
	}
	if base, err := c.propose(mkBatch(t, -1, -1, -1, 1, "after")); err != nil || base != raw.end {
		t.Fatalf("propose after adoption: %d %v, want %d", base, err, raw.end)
	}
	if got := readAll(t, nd.g.Log(), raw.end); !bytes.Equal(got, raw.data) {
		t.Fatal("pre-adoption records changed")
	}
	if n := nd.g.FSM().installs.Load(); n != 1 {
		t.Fatalf("%d snapshot installs, want 1", n)
	}
}

// TestAdoptRefuses: Adopt leaves a replica's directories and Raft stores
// with state alone, and wants this replica among the voters.
func TestAdoptRefuses(t *testing.T) {
	c := newDurableCluster(t, 1)
	old := c.nodes[0]
	if _, err := c.propose(mkBatch(t, -1, -1, -1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	c.stop(old)
	servers := []raft.Server{{ID: "1", Address: "n1"}}
	rawDir, freshRaft := filepath.Join(t.TempDir(), "p"), filepath.Join(t.TempDir(), "raft")
	writeRawLog(t, rawDir)

	for _, tc := range []struct {
		name string
		cfg  Config
		srv  []raft.Server
	}{
		{"raft dir with state", Config{ID: "1", Dir: rawDir, RaftDir: old.raftDir, Log: logConfig()}, servers},
		{"dir with a checkpoint", Config{ID: "1", Dir: old.dir, RaftDir: freshRaft, Log: logConfig()}, servers},
		{"not a voter", Config{ID: "2", Dir: rawDir, RaftDir: freshRaft, Log: logConfig()}, servers},
		{"only a non-voter", Config{ID: "1", Dir: rawDir, RaftDir: freshRaft, Log: logConfig()},
			[]raft.Server{{ID: "1", Address: "n1", Suffrage: raft.Nonvoter}}},
	} {
		err := Adopt(tc.cfg, tc.srv)
		if err == nil {
			t.Fatalf("%s: Adopt succeeded", tc.name)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	if _, ok, _ := readCheckpoint(rawDir); ok {
		t.Fatal("a refused Adopt wrote a checkpoint")
	}
	if _, err := os.Stat(freshRaft); !os.IsNotExist(err) {
		t.Fatalf("a refused Adopt created the Raft directory: %v", err)
	}

	// Adopting succeeds once, then the same directories are a replica's.
	cfg := Config{ID: "1", Dir: rawDir, RaftDir: freshRaft, Log: logConfig()}
	if err := Adopt(cfg, servers); err != nil {
		t.Fatal(err)
	}
	if err := Adopt(cfg, servers); err == nil {
		t.Fatal("second Adopt succeeded")
	}
	if err := os.Remove(filepath.Join(rawDir, checkpointFile)); err != nil {
		t.Fatal(err)
	}
	if err := Adopt(cfg, servers); err == nil {
		t.Fatal("Adopt over a Raft directory holding the adopted snapshot succeeded")
	}
}
