package raftmux

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// waitFor polls cond until it returns nil or the deadline passes. Deadlines
// are generous because the CI machine has 2 shared cores and runs -race; a
// passing test returns as soon as the condition holds.
func waitFor(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", within, what, err)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a synchronisation sleep
	}
}

const pollLimit = 30 * time.Second

// logFSM appends every command; its state is the sequence of commands.
type logFSM struct {
	mu      sync.Mutex
	entries []string
}

func (f *logFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, string(l.Data))
	return len(f.entries)
}

func (f *logFSM) Snapshot() (raft.FSMSnapshot, error) {
	return &logSnapshot{entries: f.state()}, nil
}

func (f *logFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var entries []string
	if err := json.NewDecoder(rc).Decode(&entries); err != nil {
		return err
	}
	f.mu.Lock()
	f.entries = entries
	f.mu.Unlock()
	return nil
}

func (f *logFSM) state() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

type logSnapshot struct{ entries []string }

func (s *logSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.entries); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *logSnapshot) Release() {}

// countFSM only counts bytes; used by the benchmark.
type countFSM struct {
	mu    sync.Mutex
	n     int
	bytes int64
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	f.n++
	f.bytes += int64(len(l.Data))
	f.mu.Unlock()
	return nil
}
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return &logSnapshot{}, nil }
func (f *countFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

// testRaftConfig returns a config with short timeouts for fast tests.
func testRaftConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.Logger = hclog.NewNullLogger()
	c.LogOutput = io.Discard
	return c
}

// member is one node's replica of one group.
type member struct {
	node  *node
	group string
	raft  *raft.Raft
	fsm   *logFSM
	trans *raft.NetworkTransport
}

type node struct {
	id      string
	mux     *Mux
	members map[string]*member
}

type cluster struct {
	t     testing.TB
	net   *Network
	nodes []*node
	down  bool
}

// newCluster starts n muxes on 127.0.0.1:0 with node ids n1..nN, all on one
// fault Network. No groups yet.
func newCluster(t testing.TB, n int, opts ...Option) *cluster {
	t.Helper()
	c := &cluster{t: t, net: NewNetwork()}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		o := append([]Option{WithNodeID(id), WithNetwork(c.net), WithHandshakeTimeout(2 * time.Second)}, opts...)
		m, err := Listen("127.0.0.1:0", o...)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, &node{id: id, mux: m, members: make(map[string]*member)})
	}
	t.Cleanup(c.shutdown)
	return c
}

func (c *cluster) servers() []raft.Server {
	var s []raft.Server
	for _, n := range c.nodes {
		s = append(s, raft.Server{ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.mux.Addr().String())})
	}
	return s
}

func (c *cluster) node(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// start creates the group's replica on node n; bootstrap makes it part of a
// cluster of every node in c.
func (c *cluster) start(n *node, group string, bootstrap bool) *member {
	c.t.Helper()
	trans, err := n.mux.Transport(group, &raft.NetworkTransportConfig{Timeout: 2 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	fsm := &logFSM{}
	conf := testRaftConfig(n.id)
	if bootstrap {
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, raft.Configuration{Servers: c.servers()}); err != nil {
			c.t.Fatal(err)
		}
	}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		c.t.Fatal(err)
	}
	m := &member{node: n, group: group, raft: r, fsm: fsm, trans: trans}
	n.members[group] = m
	return m
}

// startGroup starts and bootstraps group on every node.
func (c *cluster) startGroup(group string) {
	c.t.Helper()
	for _, n := range c.nodes {
		c.start(n, group, true)
	}
}

func (c *cluster) members(group string) []*member {
	var ms []*member
	for _, n := range c.nodes {
		if m := n.members[group]; m != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// leader waits for a member of group, not on an excluded node, that reports
// itself leader.
func (c *cluster) leader(group string, exclude ...string) *member {
	c.t.Helper()
	var l *member
	waitFor(c.t, pollLimit, "leader of "+group, func() error {
		for _, m := range c.members(group) {
			if slices.Contains(exclude, m.node.id) {
				continue
			}
			if m.raft.State() == raft.Leader {
				l = m
				return nil
			}
		}
		return errors.New("no leader yet")
	})
	return l
}

// apply commits cmd through whichever eligible member leads group, retrying
// on leadership changes (a retried command may be committed twice; checks
// below compare first occurrences).
func (c *cluster) apply(group, cmd string, exclude ...string) {
	c.t.Helper()
	waitFor(c.t, pollLimit, "apply "+cmd, func() error {
		l := c.leader(group, exclude...)
		return l.raft.Apply([]byte(cmd), 5*time.Second).Error()
	})
}

func (c *cluster) applyN(group, prefix string, n int, exclude ...string) []string {
	c.t.Helper()
	var cmds []string
	for i := range n {
		cmd := fmt.Sprintf("%s-%s-%03d", group, prefix, i)
		c.apply(group, cmd, exclude...)
		cmds = append(cmds, cmd)
	}
	return cmds
}

// firstOccurrences drops repeats, keeping the order of first appearance.
func firstOccurrences(s []string) []string {
	seen := make(map[string]bool, len(s))
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// converged waits until every member of group holds the same sequence and
// that sequence, without retry duplicates, is want.
func (c *cluster) converged(group string, want []string) {
	c.t.Helper()
	waitFor(c.t, pollLimit, group+" FSMs to converge", func() error {
		ms := c.members(group)
		first := ms[0].fsm.state()
		for _, m := range ms[1:] {
			if s := m.fsm.state(); !slices.Equal(s, first) {
				return fmt.Errorf("%s has %d entries, %s has %d", ms[0].node.id, len(first), m.node.id, len(s))
			}
		}
		if got := firstOccurrences(first); !slices.Equal(got, want) {
			return fmt.Errorf("have %d distinct entries, want %d", len(got), len(want))
		}
		return nil
	})
}

// shutdown heals the network, closes the muxes (so no RPC waits for an I/O
// deadline), then shuts every raft down in parallel.
func (c *cluster) shutdown() {
	if c.down {
		return
	}
	c.down = true
	c.net.Heal()
	for _, n := range c.nodes {
		_ = n.mux.Close()
	}
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		for _, m := range n.members {
			wg.Go(func() {
				if err := m.raft.Shutdown().Error(); err != nil {
					c.t.Errorf("shutdown %s/%s: %v", m.node.id, m.group, err)
				}
				_ = m.trans.Close()
			})
		}
	}
	wg.Wait()
}

// pendingCount is how many accepted connections are still in preface state.
func (m *Mux) pendingCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// connCount is how many handshaken connections the layer tracks.
func (l *Layer) connCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
