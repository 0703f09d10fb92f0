package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/controller"
	"github.com/weir-io/weir/internal/raftlog"
	"github.com/weir-io/weir/internal/raftmux"
)

// cluster is the metadata and replication machinery every broker runs:
// one Raft transport (the mux) for every group, the controller group whose
// FSM is the metadata image, and one Raft group per replicated partition
// it holds (reconcile.go). Every voter is both a controller and a broker,
// like KRaft's combined mode; a single node is a quorum of one, as in
// KRaft and Redpanda, so it keeps its metadata exactly as a cluster does.
type cluster struct {
	b      *Broker
	mux    *raftmux.Mux
	raft   *raft.Raft // the controller group
	store  *raftlog.Store
	ctl    *controller.Controller
	remote *controller.Remote
	fwd    *raftmux.Layer
	// progress carries followers' progress reports (isr.go).
	progress *raftmux.Layer

	brokerEpoch int64
	// reconciled is the index of the last image the reconcile loop has
	// made the local replicas match.
	reconciled atomic.Uint64

	pidMu           sync.Mutex
	pidNext, pidEnd int64
	// wg tracks the reconcile loop and the partition watchers.
	wg sync.WaitGroup
}

// controllerGroup is the controller's group name on the mux.
const controllerGroup = "controller"

// startCluster joins the controller quorum (bootstrapping it on first
// start), registers this broker and starts following the metadata image.
// It returns once this broker is registered, so it waits for a quorum.
func (b *Broker) startCluster(ctx context.Context) error {
	cfg := b.cfg
	opts := []raftmux.Option{raftmux.WithNodeID(nodeName(cfg.NodeID)), raftmux.WithLogger(raftLogger(b.log))}
	if cfg.RaftNetwork != nil {
		opts = append(opts, raftmux.WithNetwork(cfg.RaftNetwork))
	}
	mux, err := raftmux.Listen(cfg.RaftListen, opts...)
	if err != nil {
		return fmt.Errorf("broker: raft listen: %w", err)
	}
	c := &cluster{b: b, mux: mux}
	b.cluster, b.meta = c, c
	if len(cfg.Voters) == 0 {
		// A single node: the only voter, at whatever address it got.
		b.cfg.RaftListen = mux.Addr().String()
		b.cfg.Voters = []Voter{{ID: cfg.NodeID, RaftAddr: b.cfg.RaftListen}}
	}
	if err := c.startController(); err != nil {
		c.close()
		return err
	}
	if err := c.join(ctx); err != nil {
		c.close()
		return err
	}
	if err := c.register(ctx); err != nil {
		c.close()
		return err
	}
	if err := c.migrate(); err != nil {
		c.close()
		return err
	}
	c.initClusterID()
	if c.progress, err = mux.Register(progressGroup); err != nil {
		c.close()
		return err
	}
	go c.serveProgress(c.progress)
	c.wg.Add(3)
	go c.reconcileLoop()
	go c.watchLiveness()
	go c.reportProgress()
	if !c.b.cfg.DisableAutoLeaderRebalance {
		c.wg.Add(1)
		go c.balanceLeaders()
	}
	return nil
}

// startController opens the controller group's stores and Raft, and the
// forwarding endpoint other nodes send metadata changes to.
func (c *cluster) startController() error {
	dir := filepath.Join(c.b.cfg.DataDir, "controller")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("broker: controller dir: %w", err)
	}
	store, err := raftlog.Open(filepath.Join(dir, "wal"), raftlog.Options{SegmentBytes: 8 << 20, Logger: raftLogger(c.b.log)})
	if err != nil {
		return fmt.Errorf("broker: open controller log: %w", err)
	}
	c.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, raftLogger(c.b.log))
	if err != nil {
		return fmt.Errorf("broker: controller snapshots: %w", err)
	}
	trans, err := c.mux.Transport(controllerGroup, nil)
	if err != nil {
		return err
	}
	fsm := controller.NewFSM()
	rc := c.raftConfig()
	lone := c.loneVoter()
	if lone {
		// Nobody else can win or lose an election: waiting out a
		// timeout first would only delay every start.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = loneVoterTimeout, loneVoterTimeout, loneVoterTimeout
	}
	r, err := raft.NewRaft(rc, fsm, store.Logs, store.Stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("broker: start controller: %w", err)
	}
	c.raft = r
	has, err := raft.HasExistingState(store.Logs, store.Stable, snaps)
	if err != nil {
		return err
	}
	c.ctl = controller.New(r, fsm)
	if !has && c.isVoter() {
		if err := r.BootstrapCluster(raft.Configuration{Servers: c.servers(c.voterIDs())}).Error(); err != nil {
			return fmt.Errorf("broker: bootstrap controller quorum: %w", err)
		}
	}
	if lone {
		c.awaitLoneLeader()
	}
	if c.fwd, err = c.mux.Register(controller.ForwardGroup); err != nil {
		return err
	}
	go c.ctl.Serve(c.fwd)
	dial := func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
		return c.fwd.Dial(addr, timeout)
	}
	var voters []raft.ServerAddress
	if !c.isVoter() {
		// Until it hears from the leader, a broker-only node asks the
		// voters in turn.
		for _, v := range c.b.cfg.Voters {
			voters = append(voters, raft.ServerAddress(v.RaftAddr))
		}
	}
	c.remote = controller.NewRemote(c.ctl, dial, voters...)
	return nil
}

// join makes a broker-only node a non-voting member of the controller
// group, so the metadata log (and with it the image, and the controller's
// heartbeats that decide fencing) reaches it. Joining again is harmless.
func (c *cluster) join(ctx context.Context) error {
	if c.isVoter() {
		return nil
	}
	if err := c.remote.AddNonvoter(ctx, c.b.cfg.NodeID, c.b.cfg.RaftListen); err != nil {
		return fmt.Errorf("broker: join the controller group as a non-voter: %w", err)
	}
	return nil
}

// register announces this broker process (a fresh incarnation) and puts it
// into service.
func (c *cluster) register(ctx context.Context) error {
	id := c.b.cfg.NodeID
	inc := newUUID()
	epoch, err := c.remote.RegisterBroker(ctx, id, inc, c.b.addr, c.b.cfg.RaftListen)
	if err != nil {
		return fmt.Errorf("broker: register with the controller quorum: %w", err)
	}
	if err := c.remote.UnfenceBroker(ctx, id, epoch); err != nil {
		return fmt.Errorf("broker: unfence: %w", err)
	}
	c.brokerEpoch = epoch
	c.b.log.Info("joined cluster", "node", id, "broker_epoch", epoch)
	return nil
}

// servers is the Raft configuration of a group whose voters are nodes.
func (c *cluster) servers(nodes []int32) []raft.Server {
	out := make([]raft.Server, len(nodes))
	for i, n := range nodes {
		out[i] = raft.Server{ID: serverID(n), Address: raft.ServerAddress(c.raftAddr(n))}
	}
	return out
}

// voterIDs are the controller quorum's node ids.
func (c *cluster) voterIDs() []int32 {
	ids := make([]int32, len(c.b.cfg.Voters))
	for i, v := range c.b.cfg.Voters {
		ids[i] = v.ID
	}
	return ids
}

// isVoter says whether this node is a member of the controller quorum;
// otherwise it is a broker-only node.
func (c *cluster) isVoter() bool { return slices.Contains(c.voterIDs(), c.b.cfg.NodeID) }

// loneVoter says whether this node is the whole controller quorum.
func (c *cluster) loneVoter() bool {
	v := c.b.cfg.Voters
	return len(v) == 1 && v[0].ID == c.b.cfg.NodeID
}

// loneVoterTimeout is the election timeout a lone voter starts with (the
// least raft accepts): its first election is over in 5–10 ms. Once it leads, it
// takes the configured timeouts (a broker-only node following it would
// otherwise be sent a heartbeat every few milliseconds).
const loneVoterTimeout = 5 * time.Millisecond

// awaitLoneLeader waits for a lone voter to elect itself, then restores
// its timeouts. Registering would wait for the leader anyway.
func (c *cluster) awaitLoneLeader() {
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for c.raft.State() != raft.Leader {
		select {
		case <-tick.C:
		case <-deadline:
			c.b.log.Warn("lone controller voter has not elected itself yet")
			return
		}
	}
	rc := c.raft.ReloadableConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout = c.b.cfg.RaftTimeout, c.b.cfg.RaftTimeout
	if err := c.raft.ReloadConfig(rc); err != nil {
		c.b.log.Warn("restoring controller Raft timeouts", "err", err)
	}
}

// clusterID is the image's cluster id; before one is recorded, the id
// derived from the voters, which every node computes alike.
func (c *cluster) clusterID() string {
	if id := c.ctl.Image().ClusterID(); id != "" {
		return id
	}
	return clusterIDOf(c.b.cfg.Voters)
}

// initClusterID records the cluster id if none is yet: derived from the
// voters (what every node reported before the image kept one) or, for a
// single node, whose Raft address may change from one start to the next,
// a random one. Only the active controller can; a cluster whose first
// leader missed it keeps reporting the derived id, which is the same.
func (c *cluster) initClusterID() {
	if c.ctl.Image().ClusterID() != "" || c.raft.State() != raft.Leader {
		return
	}
	id := clusterIDOf(c.b.cfg.Voters)
	if c.loneVoter() {
		id = newClusterID()
	}
	if err := c.ctl.InitCluster(id, 0); err != nil {
		c.b.log.Warn("recording the cluster id", "err", err)
	}
}

// raftConfig is the configuration of every Raft group of this node.
func (c *cluster) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeName(c.b.cfg.NodeID))
	t := c.b.cfg.RaftTimeout
	// The lease equals the heartbeat timeout (raft's default is half):
	// a leader then steps down only after a full timeout without a
	// quorum, which rides out scheduling pauses on a loaded machine.
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = t, t, t
	// Without new entries a leader still sends every follower an append
	// each CommitTimeout (50 ms by default), only to move its commit index;
	// with hundreds of groups that idle traffic dominated (3 brokers, 300
	// RF 3 partitions: 156% of a core idle, 101% at t/2). Entries are
	// still sent at once; a follower just learns the final commit of a
	// burst up to t/2 later, and followers serve no reads.
	rc.CommitTimeout = t / 2
	if d := c.b.cfg.RaftSnapshotInterval; d > 0 {
		rc.SnapshotInterval = d
	}
	if n := c.b.cfg.RaftSnapshotThreshold; n > 0 {
		rc.SnapshotThreshold = n
	}
	if n := c.b.cfg.RaftTrailingLogs; n > 0 {
		rc.TrailingLogs = n
	}
	rc.Logger = raftLogger(c.b.log)
	// Produce requests hand batches to Raft from many connections at
	// once; a buffered apply channel lets the leader take them in bulk.
	rc.BatchApplyCh = true
	return rc
}

// controllerID is the node id of the active controller, -1 if none.
func (c *cluster) controllerID() int32 {
	_, id := c.raft.LeaderWithID()
	if n, ok := nodeID(id); ok {
		return n
	}
	return -1
}

// stop ends the reconcile loop and the partition watchers; b.ctx must be
// cancelled first.
func (c *cluster) stop() { c.wg.Wait() }

// close shuts the controller and the transport down; partitions are closed
// before it.
func (c *cluster) close() {
	if c.fwd != nil {
		c.fwd.Close()
	}
	if c.progress != nil {
		c.progress.Close()
	}
	if c.raft != nil {
		if err := c.raft.Shutdown().Error(); err != nil {
			c.b.log.Warn("controller shutdown", "err", err)
		}
	}
	if c.store != nil {
		c.store.Close()
	}
	c.mux.Close()
}

// nodeName is a node id as a Raft server id and mux node name.
func nodeName(id int32) string { return strconv.Itoa(int(id)) }

// clusterIDOf derives the cluster id from the voters, so every node
// reports the same one without coordinating.
func clusterIDOf(voters []Voter) string {
	parts := make([]string, len(voters))
	for i, v := range voters {
		parts[i] = nodeName(v.ID) + "@" + v.RaftAddr
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte("weir-cluster:" + strings.Join(parts, ",")))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// raftLogger sends hashicorp/raft's warnings and errors to the broker's
// log; its info-level chatter (every election step) is dropped.
func raftLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{l}})
}

type slogWriter struct{ l *slog.Logger }

// loneElection is what raft warns on every start of a lone voter, whose
// only way to lead is to time out first: expected, not worth a warning.
const loneElection = "heartbeat timeout reached, starting election: last-leader-addr= last-leader-id="

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.HasSuffix(line, loneElection) {
		w.l.Debug(line)
		return len(p), nil
	}
	w.l.Warn(line)
	return len(p), nil
}
