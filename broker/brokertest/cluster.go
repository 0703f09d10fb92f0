package brokertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/internal/raftmux"
)

// Cluster is n in-process brokers forming one Raft-replicated cluster on
// loopback, each with its own data directory. Their Raft traffic runs
// through Network, so a test can cut, delay or isolate nodes; Kafka
// clients still reach every running broker.
type Cluster struct {
	t       testing.TB
	Network *raftmux.Network

	mu      sync.Mutex
	cfgs    []broker.Config
	brokers []*broker.Broker // nil while stopped
}

// StartCluster starts n brokers (node ids 1..n) and registers their
// shutdown with t.Cleanup. opts apply to every broker's config.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Network: raftmux.NewNetwork()}
	var voters []broker.Voter
	for i := range n {
		voters = append(voters, broker.Voter{ID: int32(i + 1), RaftAddr: FreeAddr(t)})
	}
	for i := range n {
		cfg := Config(t, opts...)
		cfg.NodeID = int32(i + 1)
		cfg.Voters = voters
		cfg.RaftListen = voters[i].RaftAddr
		cfg.RaftNetwork = c.Network
		c.cfgs = append(c.cfgs, cfg)
	}
	c.brokers = make([]*broker.Broker, n)
	t.Cleanup(c.closeAll)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = c.start(i) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start node %d: %v", i+1, err)
		}
	}
	return c
}

// AddBroker starts a broker-only node (the next node id, not a voter),
// which joins the running cluster, and returns its index.
func (c *Cluster) AddBroker(opts ...Option) int {
	c.t.Helper()
	cfg := Config(c.t, opts...)
	c.mu.Lock()
	i := len(c.cfgs)
	cfg.NodeID = int32(i + 1)
	cfg.Voters = c.cfgs[0].Voters
	cfg.RaftListen = FreeAddr(c.t)
	cfg.RaftNetwork = c.Network
	c.cfgs = append(c.cfgs, cfg)
	c.brokers = append(c.brokers, nil)
	c.mu.Unlock()
	if err := c.start(i); err != nil {
		c.t.Fatalf("start broker-only node %d: %v", i+1, err)
	}
	return i
}

// FreeAddr picks a free loopback port for a listener whose address others
// must know before it starts (a voter's Raft transport, or a test of a
// fixed Kafka port), so the port cannot come from listening on port 0. It is chosen below the
// kernel's ephemeral range, which every other listener in the tests (each
// broker's Kafka and Raft listeners on port 0) draws from: between this
// check and the node's start, only another FreeAddr could take it.
func FreeAddr(t testing.TB) string {
	low := ephemeralLow()
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return ln.Addr().String()
	}
	t.Fatalf("no free loopback port found between 10000 and %d", low)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= 10001 {
		return 32768
	}
	return low
}

// start starts node i. It blocks until the node has joined, which needs a
// quorum of the controller voters running. (Start's context is the
// broker's lifetime, so it cannot carry a startup deadline.)
func (c *Cluster) start(i int) error {
	c.mu.Lock()
	cfg := c.cfgs[i]
	c.mu.Unlock()
	b, err := broker.Start(context.Background(), cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.brokers[i] = b
	c.mu.Unlock()
	return nil
}

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cfgs)
}

// Broker returns node i (0-based), nil while it is stopped.
func (c *Cluster) Broker(i int) *broker.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brokers[i]
}

// DataDir is node i's data directory.
func (c *Cluster) DataDir(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfgs[i].DataDir
}

// Node is node i's id as the Network knows it.
func (c *Cluster) Node(i int) string { return strconv.Itoa(i + 1) }

// Seeds are the Kafka addresses of the running brokers.
func (c *Cluster) Seeds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range c.brokers {
		if b != nil {
			out = append(out, b.Addr())
		}
	}
	return out
}

// Stop closes node i; its data stays for Restart.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if i < 0 || i >= len(c.cfgs) {
		c.t.Fatalf("no node %d in a cluster of %d", i+1, len(c.cfgs))
	}
	c.mu.Lock()
	b := c.brokers[i]
	c.brokers[i] = nil
	c.mu.Unlock()
	if b == nil {
		c.t.Fatalf("node %d is not running", i+1)
	}
	if err := b.Close(); err != nil {
		c.t.Logf("close node %d: %v", i+1, err)
	}
}

// Restart starts a stopped node i on its data directory.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.start(i); err != nil {
		c.t.Fatalf("restart node %d: %v", i+1, err)
	}
}

func (c *Cluster) closeAll() {
	var wg sync.WaitGroup
	for i := range c.cfgs {
		if b := c.Broker(i); b != nil {
			wg.Go(func() { b.Close() })
		}
	}
	wg.Wait()
}

// String names the nodes and their addresses, for test logs.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster%v", c.Seeds())
}
