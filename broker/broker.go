package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/weir-io/weir/internal/group"
	"github.com/weir-io/weir/internal/txn"
)

// Broker is a running broker: a single node or one node of a cluster,
// through the same code (a single node is a controller quorum of one).
// Create one with Start.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	ln     net.Listener
	addr   string
	ctx    context.Context
	cancel context.CancelFunc
	conns  sync.WaitGroup
	bg     sync.WaitGroup

	groups *group.Coordinator
	txns   *txn.Coordinator
	peers  *peers // inter-broker client for transaction markers
	// meta is what handlers use of cluster (meta.go); only the machinery
	// behind it touches cluster itself.
	meta    metadata
	cluster *cluster

	mu     sync.RWMutex // guards topics
	topics map[string]*topic

	connMu   sync.Mutex
	open     map[net.Conn]struct{}
	closeErr error
	closed   sync.Once
}

// defaultRaftTimeout is Config.RaftTimeout's default. hashicorp/raft's
// own 1 s default measured ~2 s produce unavailability when a partition
// leader died; 500 ms measured 0.5–1.5 s (broker/cluster_fault_test.go).
const defaultRaftTimeout = 500 * time.Millisecond

// defaultReplicaLagTimeMax is Kafka's replica.lag.time.max.ms.
const defaultReplicaLagTimeMax = 30 * time.Second

// Kafka's leader.imbalance.check.interval.seconds and
// leader.imbalance.per.broker.percentage defaults.
const (
	defaultLeaderImbalanceCheckInterval = 5 * time.Minute
	defaultLeaderImbalancePercentage    = 10
)

// Start opens (or recovers) the data directory, starts listening and
// returns a serving broker. Cancelling ctx or calling Close stops it.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Voters == nil && cfg.RaftListen == "" {
		// A lone voter's Raft address is dialled by nobody until a
		// broker-only node joins, which needs one it was told.
		cfg.RaftListen = "127.0.0.1:0"
	}
	if cfg.DefaultReplicationFactor == 0 {
		cfg.DefaultReplicationFactor = int16(max(1, min(3, len(cfg.Voters))))
	}
	if cfg.RaftTimeout == 0 {
		cfg.RaftTimeout = defaultRaftTimeout
	}
	if cfg.ReplicaLagTimeMax == 0 {
		cfg.ReplicaLagTimeMax = defaultReplicaLagTimeMax
	}
	if cfg.LeaderImbalanceCheckInterval == 0 {
		cfg.LeaderImbalanceCheckInterval = defaultLeaderImbalanceCheckInterval
	}
	if cfg.LeaderImbalancePerBrokerPercentage == 0 {
		cfg.LeaderImbalancePerBrokerPercentage = defaultLeaderImbalancePercentage
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: create data dir: %w", err)
	}
	b := &Broker{
		cfg:    cfg,
		log:    cfg.Logger,
		topics: make(map[string]*topic),
		open:   make(map[net.Conn]struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.join(ctx); err != nil {
		b.cancel()
		return nil, err
	}
	b.bg.Add(2)
	go b.acceptLoop()
	go b.maintainLogs()
	go func() {
		select {
		case <-ctx.Done():
			b.Close()
		case <-b.ctx.Done():
		}
	}()
	return b, nil
}

// join joins the controller quorum, registering the address clients use;
// the partitions this broker holds open as its copy of the metadata image
// comes in. Where that address is known beforehand (a fixed port), the
// Kafka port opens only once the broker is registered and caught up with
// the metadata, as a Kafka broker's does: a script that waits for the
// ports of a cluster then finds every broker in it. Port 0 must be bound
// first to learn the address.
func (b *Broker) join(ctx context.Context) error {
	addr, late := lateAddr(b.cfg)
	if late {
		b.addr = addr
	} else if err := b.listen(); err != nil {
		return err
	}
	b.startGroups()
	b.startTxns()
	if err := b.startCluster(ctx); err != nil {
		b.txns.Close()
		b.groups.Close()
		if b.ln != nil {
			b.ln.Close()
		}
		return err
	}
	if !late {
		return nil
	}
	if !b.meta.catchUp() {
		b.log.Warn("serving clients before this broker caught up with the metadata")
	}
	if err := b.listen(); err != nil {
		b.Close()
		return err
	}
	return nil
}

// lateAddr is the address to register before listening: the advertised
// address, or the listen address when it names a host and a port. A
// wildcard host or port 0 needs the listener to say what it is.
func lateAddr(cfg Config) (string, bool) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "" || port == "0" {
		return "", false
	}
	if cfg.AdvertisedAddr != "" {
		return cfg.AdvertisedAddr, true
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return "", false
	}
	return net.JoinHostPort(ip.String(), port), true
}

// listen binds the Kafka listener; unless join registered an address
// already, the listener's own (or the advertised one) becomes the
// broker's.
func (b *Broker) listen() error {
	ln, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("broker: listen on %s: %w", b.cfg.Listen, err)
	}
	b.ln = ln
	if b.addr != "" {
		return nil
	}
	b.addr = ln.Addr().String()
	if b.cfg.AdvertisedAddr != "" {
		b.addr = b.cfg.AdvertisedAddr
	}
	return nil
}

// Addr is the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// ClusterID is the id Metadata and DescribeCluster report.
func (b *Broker) ClusterID() string { return b.cluster.clusterID() }

// Close stops accepting, closes every connection, waits for them to finish
// and closes the logs. It is safe to call more than once.
func (b *Broker) Close() error {
	b.closed.Do(func() {
		b.cancel()
		if b.ln != nil {
			b.ln.Close()
		}
		b.connMu.Lock()
		for c := range b.open {
			c.Close()
		}
		b.connMu.Unlock()
		b.bg.Wait()
		b.conns.Wait()
		b.cluster.stop()
		b.txns.Close()
		b.peers.close()
		b.groups.Close()
		b.closeErr = b.closeTopics()
		b.cluster.close()
	})
	return b.closeErr
}

func (b *Broker) closeTopics() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, t := range b.topics {
		errs = append(errs, t.closeParts())
	}
	return errors.Join(errs...)
}

func (b *Broker) acceptLoop() {
	defer b.bg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() == nil {
				b.log.Error("accept failed; broker stops accepting", "err", err)
			}
			return
		}
		b.connMu.Lock()
		if b.ctx.Err() != nil {
			b.connMu.Unlock()
			nc.Close()
			return
		}
		b.open[nc] = struct{}{}
		b.conns.Add(1)
		b.connMu.Unlock()
		go func() {
			defer b.conns.Done()
			b.serveConn(nc)
			b.connMu.Lock()
			delete(b.open, nc)
			b.connMu.Unlock()
		}()
	}
}

// maintainLogs applies retention and compaction on an interval.
func (b *Broker) maintainLogs() {
	defer b.bg.Done()
	t := time.NewTicker(b.cfg.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-t.C:
			b.cleanLogs(now)
		}
	}
}

// cleanLogs runs one pass of retention and compaction over every partition.
func (b *Broker) cleanLogs(now time.Time) {
	for _, t := range b.allTopics() {
		for _, p := range t.parts {
			if p != nil {
				p.clean(now, b.cfg.ProducerIDExpiration)
			}
		}
	}
}

func (b *Broker) allTopics() []*topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ts := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		ts = append(ts, t)
	}
	return ts
}
