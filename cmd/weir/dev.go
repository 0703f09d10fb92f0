package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// raftPortOffset separates the Raft ports of a dev cluster from its
	// Kafka ports: node i serves Kafka on base+i-1 and Raft on
	// base+raftPortOffset+i-1.
	raftPortOffset = 100
	// maxDevNodes keeps the Kafka port range below the Raft one.
	maxDevNodes = raftPortOffset
	// devStartTimeout bounds how long the nodes may take to serve.
	devStartTimeout = time.Minute
	// devStopTimeout is how long a node may take to shut down cleanly
	// before it is killed.
	devStopTimeout = 30 * time.Second
)

var devCommands = []command{
	{"cluster", "run a local multi-node cluster, one child process per broker", (*app).devCluster},
}

func (a *app) devCmd(ctx context.Context, w io.Writer, args []string) error {
	return a.dispatch(ctx, w, "dev", devCommands, args)
}

// devNode is one broker of a dev cluster.
type devNode struct {
	id        int
	kafkaAddr string
	raftAddr  string
	dataDir   string
	cmd       *exec.Cmd
	log       *prefixWriter
}

// nodeExit reports that a node's process has ended.
type nodeExit struct {
	id  int
	err error
}

// devClusterProcs supervises the child processes of a dev cluster.
type devClusterProcs struct {
	nodes  []*devNode
	exited chan nodeExit
	gone   map[int]bool // nodes whose exit has been received
	log    *lockedWriter
}

func (a *app) devCluster(ctx context.Context, w io.Writer, args []string) error {
	fs := newFlagSet("dev cluster", "weir dev cluster [--nodes N] [--base-port PORT] [--data-dir DIR]",
		"Runs a local cluster of N weir brokers, each a child process of this one, for development.\n"+
			"Node i (1..N) serves Kafka on 127.0.0.1:PORT+i-1 and Raft on 127.0.0.1:PORT+"+strconv.Itoa(raftPortOffset)+"+i-1,\n"+
			"keeps its data in DIR/node-i and logs to stderr behind 'node i | '. Once every node serves,\n"+
			"the bootstrap address (the comma-separated Kafka addresses) is printed on stdout.\n"+
			"SIGINT or SIGTERM stops every node with SIGTERM and waits for it. If a node dies, the others\n"+
			"are stopped and the command fails; if this process dies, so do the nodes (on Linux).")
	nodes := fs.Int("nodes", 3, "number `N` of brokers")
	basePort := fs.Int("base-port", 9092, "first Kafka `PORT` (0 picks free ports for Kafka and Raft)")
	dataDir := fs.String("data-dir", "", "keep the nodes' data in `DIR`/node-<id> (default: a temporary "+
		"directory, removed on exit)")
	logLevel := fs.String("log-level", "info", "the brokers' log `level`: debug, info, warn or error")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := fs.positional(pos); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fs.usageErr("invalid --log-level %q: want debug, info, warn or error", *logLevel)
	}
	if *nodes < 1 || *nodes > maxDevNodes {
		return fs.usageErr("--nodes %d is outside 1..%d", *nodes, maxDevNodes)
	}
	if top := *basePort + raftPortOffset + *nodes - 1; *basePort < 0 || (*basePort > 0 && top > 65535) {
		return fs.usageErr("--base-port %d puts ports outside 1..65535 (the Raft ports end at %d)", *basePort, top)
	}
	dir, cleanup, err := devDataDir(*dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	plan, err := planDevNodes(*nodes, *basePort, dir)
	if err != nil {
		return err
	}
	return a.superviseDevCluster(ctx, w, plan, *logLevel)
}

// devDataDir returns the cluster's data directory and a function that
// removes it if it is a temporary one.
func devDataDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "weir-dev-cluster-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// devOffsetsPartitions and devTxnPartitions are __consumer_offsets' and
// __transaction_state's partition counts in a dev cluster.
const (
	devOffsetsPartitions = 6
	devTxnPartitions     = 6
)

// planDevNodes assigns the nodes their ids, addresses and data directories.

func planDevNodes(n, basePort int, dir string) ([]*devNode, error) {
	ports := make([]int, 2*n)
	if basePort == 0 {
		var err error
		if ports, err = freePorts(2 * n); err != nil {
			return nil, err
		}
	} else {
		for i := range n {
			ports[i], ports[n+i] = basePort+i, basePort+raftPortOffset+i
		}
	}
	nodes := make([]*devNode, n)
	for i := range n {
		nodes[i] = &devNode{
			id:        i + 1,
			kafkaAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])),
			raftAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[n+i])),
			dataDir:   filepath.Join(dir, "node-"+strconv.Itoa(i+1)),
		}
	}
	return nodes, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// The voters must be named before any node starts, so port 0 cannot be
// left to the brokers; another process may take a port in between, which
// then fails that node's start loudly.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking free ports: %w", err)
		}
		defer l.Close() // held until all are picked, so they differ
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// superviseDevCluster starts the nodes and runs until ctx is done or a node
// exits, then stops the others.
func (a *app) superviseDevCluster(ctx context.Context, w io.Writer, nodes []*devNode, logLevel string) error {
	c := &devClusterProcs{nodes: nodes, exited: make(chan nodeExit, len(nodes)), gone: map[int]bool{},
		log: &lockedWriter{w: a.stderr}}
	if err := c.start(logLevel); err != nil {
		return errors.Join(err, c.stop())
	}
	readyCtx, cancel := context.WithTimeout(ctx, devStartTimeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- waitServing(readyCtx, nodes) }()
	for {
		select {
		case err := <-ready:
			if err != nil && ctx.Err() == nil {
				return errors.Join(fmt.Errorf("the cluster did not come up within %v: %w", devStartTimeout, err), c.stop())
			}
			if err == nil {
				fmt.Fprintln(w, c.bootstrap())
				c.log.printf("weir dev cluster: %d nodes serving; try: weir --brokers %s topic list\n",
					len(nodes), c.bootstrap())
			}
		case e := <-c.exited:
			c.gone[e.id] = true
			return errors.Join(fmt.Errorf("node %d exited unexpectedly (%s); stopped the others", e.id, exitReason(e.err)),
				c.stop())
		case <-ctx.Done():
			c.log.printf("weir dev cluster: stopping %d nodes\n", len(nodes))
			return c.stop()
		}
	}
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (c *devClusterProcs) bootstrap() string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.kafkaAddr
	}
	return strings.Join(addrs, ",")
}

func (c *devClusterProcs) voters() string {
	vs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		vs[i] = fmt.Sprintf("%d@%s", n.id, n.raftAddr)
	}
	return strings.Join(vs, ",")
}

// start starts every node's process, each reporting its end on c.exited.
func (c *devClusterProcs) start(logLevel string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the weir executable: %w", err)
	}
	voters := c.voters()
	for _, n := range c.nodes {
		// Made here, an unusable --data-dir is one error, not N dying nodes.
		if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
			return err
		}
		n.log = &prefixWriter{out: c.log, prefix: fmt.Sprintf("node %d | ", n.id)}
		// --offsets-partitions, --transaction-partitions: every partition
		// replica is a Raft group whose raft-wal preallocates a segment,
		// so Kafka's 50 partitions of each would take much of a laptop's
		// disk over three nodes once used.
		n.cmd = exec.Command(exe, "broker", "--node-id", strconv.Itoa(n.id), "--listen", n.kafkaAddr,
			"--raft-listen", n.raftAddr, "--voters", voters, "--data-dir", n.dataDir, "--log-level", logLevel,
			"--offsets-partitions", strconv.Itoa(devOffsetsPartitions), "--transaction-partitions", strconv.Itoa(devTxnPartitions))
		// One writer for both streams: exec then copies them through a
		// single pipe, so the node's lines keep their order.
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		n.cmd.SysProcAttr = devChildAttr()
		if err := n.cmd.Start(); err != nil {
			c.gone[n.id] = true
			return fmt.Errorf("starting node %d: %w", n.id, err)
		}
		c.log.printf("weir dev cluster: node %d started (pid %d): kafka %s, raft %s, data in %s\n",
			n.id, n.cmd.Process.Pid, n.kafkaAddr, n.raftAddr, n.dataDir)
		go func() {
			err := n.cmd.Wait()
			n.log.flush()
			c.exited <- nodeExit{n.id, err}
		}()
	}
	return nil
}

// stop sends SIGTERM to the nodes still running and waits for every node,
// killing those that outlast devStopTimeout. It returns why nodes failed.
func (c *devClusterProcs) stop() error {
	for _, n := range c.nodes {
		if c.alive(n) {
			n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	kill := time.NewTimer(devStopTimeout)
	defer kill.Stop()
	var errs []error
	for c.running() > 0 {
		select {
		case e := <-c.exited:
			c.gone[e.id] = true
			if !stoppedAsAsked(e.err) {
				errs = append(errs, fmt.Errorf("node %d: %w", e.id, e.err))
			}
		case <-kill.C:
			for _, n := range c.nodes {
				if c.alive(n) {
					c.log.printf("weir dev cluster: node %d did not stop within %v; killing it\n", n.id, devStopTimeout)
					n.cmd.Process.Kill()
				}
			}
		}
	}
	return errors.Join(errs...)
}

// stoppedAsAsked reports whether a node's exit err is one of the answers
// to SIGTERM: a clean exit, weir's "interrupted" (130) from a node stopped
// while starting, or death by the signal before the node handles it.
func stoppedAsAsked(err error) bool {
	var exit *exec.ExitError
	if err == nil {
		return true
	}
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return exit.ExitCode() == 130 || ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// alive reports whether n was started and its exit not yet received.
func (c *devClusterProcs) alive(n *devNode) bool {
	return n.cmd != nil && n.cmd.Process != nil && !c.gone[n.id]
}

func (c *devClusterProcs) running() int {
	count := 0
	for _, n := range c.nodes {
		if c.alive(n) {
			count++
		}
	}
	return count
}

// waitServing polls each node until its Metadata lists every node.
func waitServing(ctx context.Context, nodes []*devNode) error {
	for _, n := range nodes {
		if err := pollBrokers(ctx, n.kafkaAddr, len(nodes)); err != nil {
			return fmt.Errorf("node %d (%s): %w", n.id, n.kafkaAddr, err)
		}
	}
	return nil
}

// pollBrokers asks the broker at addr for Metadata until it lists want
// brokers or ctx is done, and then returns the last answer's shortfall.
func pollBrokers(ctx context.Context, addr string, want int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(clientID))
	if err != nil {
		return err
	}
	defer cl.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("no answer yet")
	for {
		err := brokersListed(ctx, cl, want)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil { // a cancelled request says nothing about the node
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

func brokersListed(ctx context.Context, cl *kgo.Client, want int) error {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none: only the brokers
	// The seed broker is the node at addr; the client would otherwise send
	// the request to any broker it has learnt of.
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	if got := len(resp.(*kmsg.MetadataResponse).Brokers); got < want {
		return fmt.Errorf("it lists %d of %d brokers", got, want)
	}
	return nil
}
