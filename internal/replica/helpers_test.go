package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
)

// mkBatch builds a produced batch of n records; pid < 0 means no producer
// identity.
func mkBatch(t testing.TB, pid int64, epoch int16, seq int32, n int, tag string) []byte {
	t.Helper()
	return mkBatchAt(t, pid, epoch, seq, n, tag, baseTime)
}

// baseTime is the record time of mkBatch's batches (Unix ms).
const baseTime = 1_700_000_000_000

// mkBatchAt is mkBatch with records timestamped from ts (Unix ms).
func mkBatchAt(t testing.TB, pid int64, epoch int16, seq int32, n int, tag string, ts int64) []byte {
	t.Helper()
	o := batch.DefaultBuildOptions()
	o.BaseTimestamp = ts
	if pid >= 0 {
		o.ProducerID, o.ProducerEpoch, o.BaseSequence = pid, epoch, seq
	}
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte(tag), Value: []byte(fmt.Sprintf("%s-%d-%s", tag, i, strings.Repeat("v", 200)))}
	}
	b, err := batch.Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func logConfig() partlog.Config {
	c := partlog.DefaultConfig()
	c.SegmentBytes = 8 << 10 // several segments per test
	return c
}

// readAll returns every stored batch below end, concatenated.
func readAll(t testing.TB, l *partlog.Log, end int64) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < end; {
		b, err := l.Read(off, 1<<20, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("no data at %d below %d", off, end)
		}
		bs, err := batch.Split(b)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := batch.ParseHeader(bs[len(bs)-1])
		off = h.NextOffset()
		out = append(out, b...)
	}
	return out
}

// segmentBytes returns the .log files of dir by name.
func segmentBytes(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(n)] = b
	}
	return m
}

type node struct {
	id  raft.ServerID
	dir string
	// raftDir, when set, holds the node's durable Raft stores (NewGroup
	// opens them); otherwise store and snaps are in memory.
	raftDir string
	store   *raft.InmemStore
	snaps   *raft.InmemSnapshotStore
	addr    raft.ServerAddress
	trans   *raft.InmemTransport
	started bool   // trans has been used by a group
	g       *Group // nil while down
}

type cluster struct {
	t     *testing.T
	nodes []*node
	// raft, if set, replaces raftConfig() for nodes started from now on.
	raft *raft.Config
}

func raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotThreshold = 1 << 30
	c.SnapshotInterval = time.Hour
	c.Logger = hclog.NewNullLogger()
	return c
}

// newCluster starts n bootstrapped voters with in-memory Raft stores.
func newCluster(t *testing.T, n int) *cluster {
	return newClusterWith(t, n, false)
}

// newDurableCluster starts n bootstrapped voters whose Raft stores are
// raft-wal and snapshot files in temporary directories.
func newDurableCluster(t *testing.T, n int) *cluster {
	return newClusterWith(t, n, true)
}

func newClusterWith(t *testing.T, n int, durable bool) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var servers []raft.Server
	for i := range n {
		nd := newNode(t, raft.ServerID(fmt.Sprint(i+1)), durable)
		c.nodes = append(c.nodes, nd)
		servers = append(servers, raft.Server{ID: nd.id, Address: nd.addr})
	}
	for _, nd := range c.nodes {
		c.start(nd)
		// A node bootstrapped earlier may already have won an election
		// and replicated the configuration here.
		if err := nd.g.Bootstrap(servers); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.stop(nd)
		}
	})
	return c
}

// newNode returns a node with empty directories that is not started.
func newNode(t *testing.T, id raft.ServerID, durable bool) *node {
	addr := raft.ServerAddress("n" + string(id))
	_, trans := raft.NewInmemTransport(addr)
	nd := &node{id: id, dir: filepath.Join(t.TempDir(), "p0"), addr: addr, trans: trans}
	if durable {
		nd.raftDir = filepath.Join(t.TempDir(), "raft")
	} else {
		nd.store, nd.snaps = raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	}
	return nd
}

// start opens nd's group on its directories, on a new transport at the
// same address, as a restarted process would be: the old one may still
// hold requests queued while the node was down, which a real network
// would have lost.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	if nd.started {
		_, nd.trans = raft.NewInmemTransport(nd.addr)
	}
	nd.started = true
	for _, p := range c.nodes {
		if p != nd {
			nd.trans.Connect(p.trans.LocalAddr(), p.trans)
			p.trans.Connect(nd.trans.LocalAddr(), nd.trans)
		}
	}
	g, err := NewGroup(c.config(nd))
	if err != nil {
		c.t.Fatal(err)
	}
	nd.g = g
}

// config is the group configuration start opens nd with.
func (c *cluster) config(nd *node) Config {
	rc := raftConfig()
	if c.raft != nil {
		rc = c.raft
	}
	cfg := Config{
		ID: nd.id, Dir: nd.dir, Log: logConfig(), Raft: rc, Transport: nd.trans,
		RaftDir: nd.raftDir, WALSegmentBytes: 16 << 10, // several WAL segments per test
	}
	if nd.store != nil {
		cfg.LogStore, cfg.StableStore, cfg.Snapshots = nd.store, nd.store, nd.snaps
	}
	return cfg
}

func (c *cluster) stop(nd *node) {
	if nd.g == nil {
		return
	}
	if err := nd.g.Close(); err != nil {
		c.t.Error(err)
	}
	nd.g = nil
}

func (c *cluster) live() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd.g != nil {
			out = append(out, nd)
		}
	}
	return out
}

// leader waits for a ready leader among the live nodes.
func (c *cluster) leader() *node {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range c.live() {
			if nd.g.IsLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := nd.g.Ready(ctx)
				cancel()
				if err == nil {
					return nd
				}
			}
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
	}
	c.t.Fatal("no leader elected")
	return nil
}

// propose sends b through the current leader, retrying on leadership
// changes; it returns the leader's answer.
func (c *cluster) propose(b []byte) (int64, error) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ld := c.leader()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		base, err := ld.g.Propose(ctx, b)
		cancel()
		if errors.Is(err, ErrNotLeader) || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		return base, err
	}
	c.t.Fatal("propose: no leader accepted the batch")
	return 0, nil
}

// converge waits until every live node has applied up to end, then checks
// that their logs are identical (Read output and segment file bytes).
func (c *cluster) converge(end int64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, nd := range c.live() {
		for nd.g.HighWatermark() != end {
			if time.Now().After(deadline) {
				c.t.Fatalf("node %s: high watermark %d, want %d", nd.id, nd.g.HighWatermark(), end)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	var ref []byte
	var refSegs map[string][]byte
	for i, nd := range c.live() {
		if got := nd.g.Log().EndOffset(); got != end {
			c.t.Fatalf("node %s: log end %d, want %d", nd.id, got, end)
		}
		data := readAll(c.t, nd.g.Log(), end)
		if err := nd.g.Log().Sync(end); err != nil {
			c.t.Fatal(err)
		}
		segs := segmentBytes(c.t, nd.dir)
		if i == 0 {
			ref, refSegs = data, segs
			continue
		}
		if !bytes.Equal(data, ref) {
			c.t.Fatalf("node %s: log differs from node %s", nd.id, c.live()[0].id)
		}
		if len(segs) != len(refSegs) {
			c.t.Fatalf("node %s: %d segments, want %d", nd.id, len(segs), len(refSegs))
		}
		for name, b := range refSegs {
			if !bytes.Equal(segs[name], b) {
				c.t.Fatalf("node %s: segment %s differs", nd.id, name)
			}
		}
	}
	// Every stored batch is valid and offsets are dense from the first
	// batch kept (DeleteRecords may have removed earlier ones).
	next := end
	bs, err := batch.Split(ref)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(bs) > 0 {
		h, _ := batch.ParseHeader(bs[0])
		next = h.BaseOffset
	}
	for _, b := range bs {
		h, err := batch.Validate(b)
		if err != nil {
			c.t.Fatal(err)
		}
		if h.BaseOffset != next {
			c.t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
		}
		next = h.NextOffset()
	}
	if next != end {
		c.t.Fatalf("batches end at %d, want %d", next, end)
	}
}
