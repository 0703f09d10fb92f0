package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/controller"
	"github.com/weir-io/weir/internal/partlog"
	"github.com/weir-io/weir/internal/replica"
)

// The metadata image says which partitions exist and which brokers hold
// their replicas; a broker makes its local state match: it opens every
// replica assigned to it (a log of its own for a partition it alone holds,
// else the partition's Raft group), closes and removes those of deleted
// topics, and applies config changes. A single-replica partition is led by
// its replica from creation. Other leaders are not assigned by the
// controller: each partition's Raft group elects its leader, and the
// leader reports itself (with its term as leader epoch) so Metadata on
// every broker can route clients to it.

// watchInterval is how often a partition watcher re-checks leadership
// besides raft's leadership notifications (which may be dropped when they
// come faster than they are read).
const watchInterval = 250 * time.Millisecond

func (c *cluster) reconcileLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	swept := false
	for {
		img := c.ctl.Image()
		c.reconcile(img)
		c.reconciled.Store(img.Index())
		// The broker epoch is the Raft index of this process's
		// registration: an image that has applied it holds every topic
		// this node could have created a directory for.
		if !swept && img.Index() >= uint64(c.brokerEpoch) {
			c.sweepOrphans(img)
			swept = true
		}
		select {
		case <-c.b.ctx.Done():
			return
		case <-img.Changed():
		case <-tick.C: // retries replicas that failed to open
		}
	}
}

func (c *cluster) reconcile(img *controller.Image) {
	for _, t := range c.b.allTopics() {
		if it, ok := img.Topic(t.name); !ok || it.ID != t.id {
			c.dropTopic(t)
		}
	}
	for _, it := range img.Topics() {
		if c.b.ctx.Err() != nil {
			return
		}
		c.syncTopic(it)
	}
}

// syncTopic opens the replicas of it that this broker holds and applies
// its configs.
func (c *cluster) syncTopic(it controller.Topic) {
	b := c.b
	old := b.lookupTopic(it.Name)
	if old != nil && c.inSync(old, it) {
		return
	}
	nt := &topic{name: it.Name, id: it.ID, internal: isInternalTopic(it.Name), configs: maps.Clone(it.Configs)}
	nt.settings = resolveSettings(b.cfg, nt.configs)
	nt.parts = make([]*partition, len(it.Partitions))
	if old != nil {
		copy(nt.parts, old.parts)
	}
	for i, ip := range it.Partitions {
		p := nt.parts[i]
		var err error
		switch {
		case p != nil && !slices.Contains(ip.Replicas, b.cfg.NodeID):
			// Reassigned away: its group no longer counts on it.
			c.dropReplica(nt, p)
			nt.parts[i] = nil
		case c.needsRaft(p, ip):
			// A reassignment gives it other replicas: Raft takes over.
			nt.parts[i], err = c.adopt(nt, p, ip)
		case p != nil:
			p.setLogConfig(nt.settings.log)
		case slices.Contains(ip.Replicas, b.cfg.NodeID):
			nt.parts[i], err = c.openReplica(nt, ip)
		}
		if err != nil {
			b.log.Error("opening partition replica", "topic", it.Name, "partition", ip.Index, "err", err)
		}
	}
	b.mu.Lock()
	b.topics[it.Name] = nt
	b.mu.Unlock()
}

// inSync reports whether the local topic already matches the image's.
func (c *cluster) inSync(t *topic, it controller.Topic) bool {
	if len(t.parts) != len(it.Partitions) || !maps.Equal(t.configs, it.Configs) {
		return false
	}
	for i, ip := range it.Partitions {
		p := t.parts[i]
		if (p == nil) == slices.Contains(ip.Replicas, c.b.cfg.NodeID) || c.needsRaft(p, ip) {
			return false
		}
	}
	return true
}

// needsRaft says whether p, open without Raft, has been given other
// replicas, so its log must move into a Raft group (adopt).
func (c *cluster) needsRaft(p *partition, ip controller.Partition) bool {
	return p != nil && p.repl == nil && !c.soleReplica(ip)
}

// soleReplica says whether this broker is a partition's only replica.
func (c *cluster) soleReplica(ip controller.Partition) bool {
	return len(ip.Replicas) == 1 && ip.Replicas[0] == c.b.cfg.NodeID
}

// openReplica starts this broker's replica of one partition: its own log
// if it is the only replica and the partition never had a Raft group here
// (a group, once made, stays one), else the Raft group, bootstrapped with
// the assigned replicas on first open.
func (c *cluster) openReplica(t *topic, ip controller.Partition) (*partition, error) {
	_, err := os.Stat(c.raftDir(t.name, ip.Index))
	fresh := os.IsNotExist(err)
	if fresh && c.soleReplica(ip) {
		return c.openDirect(t, ip.Index)
	}
	rcfg, delayed := c.replicaConfig(t, ip)
	// Only the replicas of a group that never had a leader bootstrap it,
	// all with the same configuration. A replica opened later (added by a
	// reassignment, or whose directory was lost) starts empty and learns
	// the configuration from the leader; bootstrapping it would write a
	// different first entry than the group's.
	bootstrap := func(g *replica.Group) error {
		if ip.LeaderEpoch != 0 {
			return nil
		}
		if err := g.Bootstrap(c.servers(ip.Replicas)); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap: %w", err)
		}
		return nil
	}
	return c.startGroup(t, ip.Index, rcfg, delayed, bootstrap)
}

// replicaConfig is the configuration of this broker's Raft replica of ip;
// delayed reports that its first election waits longer (leaders.go).
func (c *cluster) replicaConfig(t *topic, ip controller.Partition) (replica.Config, bool) {
	b := c.b
	raftDir := c.raftDir(t.name, ip.Index)
	rc, delayed := c.replicaRaftConfig(raftDir, ip)
	return replica.Config{
		ID:                   raft.ServerID(nodeName(b.cfg.NodeID)),
		Dir:                  b.partitionDir(t.name, ip.Index),
		RaftDir:              raftDir,
		Log:                  t.settings.log,
		Raft:                 rc,
		WALSegmentBytes:      walSegmentBytes(t),
		ProducerIDExpiration: b.cfg.ProducerIDExpiration,
	}, delayed
}

// startGroup opens a Raft replica with rcfg, runs first (bootstrap or
// nothing) on it and starts its leadership watcher.
func (c *cluster) startGroup(t *topic, index int32, rcfg replica.Config, delayed bool, first func(*replica.Group) error) (*partition, error) {
	trans, err := c.mux.Transport(groupName(t.id, index), nil)
	if err != nil {
		return nil, err
	}
	p := newPartition(t.name, index, nil, c.b.log)
	rcfg.Transport, rcfg.OnAdvance = trans, p.wake
	g, err := replica.NewGroup(rcfg)
	if err != nil {
		trans.Close()
		return nil, err
	}
	if err := first(g); err != nil {
		g.Close()
		return nil, err
	}
	p.repl = g
	p.stopWatch = make(chan struct{})
	c.wg.Add(1)
	go c.watch(t.id, p, delayed)
	return p, nil
}

// openDirect opens a partition this broker alone holds: its log, the
// producers' sequence windows rebuilt from it, and for __consumer_offsets
// its groups, which this broker coordinates from now on.
func (c *cluster) openDirect(t *topic, index int32) (*partition, error) {
	b := c.b
	l, err := partlog.Open(b.partitionDir(t.name, index), t.settings.log)
	if err != nil {
		return nil, err
	}
	p := newPartition(t.name, index, l, b.log)
	if err := p.loadProducers(); err != nil {
		l.Close()
		return nil, fmt.Errorf("recover producer state: %w", err)
	}
	if err := b.loadCoordinator(p); err != nil {
		l.Close()
		return nil, fmt.Errorf("load %s: %w", t.name, err)
	}
	return p, nil
}

// adopt moves a partition without Raft into a Raft group of which this
// broker is the only voter, when a reassignment gives the partition other
// replicas; the leader then adds them (reassign.go), and they receive the
// log by snapshot. The old partition is closed first: appends racing with
// the move fail with NOT_LEADER_OR_FOLLOWER and are retried on the group.
func (c *cluster) adopt(t *topic, old *partition, ip controller.Partition) (*partition, error) {
	c.closeDirect(old)
	rcfg, _ := c.replicaConfig(t, ip)
	self := []int32{c.b.cfg.NodeID}
	if err := replica.Adopt(rcfg, c.servers(self)); err != nil {
		return nil, fmt.Errorf("move the log into a Raft group: %w", err)
	}
	c.b.log.Info("partition log moved into a Raft group for its new replicas", "topic", t.name, "partition", ip.Index, "replicas", ip.Replicas)
	return c.startGroup(t, ip.Index, rcfg, false, func(*replica.Group) error { return nil })
}

// closeDirect closes a partition without Raft whose log another takes
// over, waiting out an append in progress.
func (c *cluster) closeDirect(p *partition) {
	c.b.unloadCoordinator(p)
	p.mu.Lock()
	err := p.plog().Close()
	p.mu.Unlock()
	if err != nil {
		c.b.log.Warn("closing partition log", "topic", p.topic, "partition", p.index, "err", err)
	}
	p.deleted.Store(true) // long polls return and look the partition up again
	p.wake()
}

// walSegmentBytes sizes a replica's raft-wal segments, which are
// allocated whole. raft-wal's 64 MiB default would put 64 MiB behind every
// partition replica; batches are the entries, so 8 MiB segments rotate
// often enough and compact the Raft log sooner, and a few rotations a
// second at full speed cost little. __consumer_offsets (50 partitions by
// default) carries only commits: 1 MiB there saves 350 MiB a node.
func walSegmentBytes(t *topic) int {
	if t.internal {
		return 1 << 20
	}
	return 8 << 20
}

// groupName names a partition's Raft group on the mux; the topic id keeps a
// recreated topic's groups apart from the deleted one's.
func groupName(id [16]byte, p int32) string { return fmt.Sprintf("p-%x-%d", id, p) }

func (c *cluster) raftDir(topic string, p int32) string {
	return filepath.Join(c.b.cfg.DataDir, "raft", fmt.Sprintf("%s-%d", topic, p))
}

// dropTopic closes and removes this broker's replicas of a topic the image
// no longer has (or has under a new id).
func (c *cluster) dropTopic(t *topic) {
	b := c.b
	b.mu.Lock()
	if b.topics[t.name] == t {
		delete(b.topics, t.name)
	}
	b.mu.Unlock()
	for _, p := range t.parts {
		if p != nil {
			c.dropReplica(t, p)
		}
	}
	b.log.Info("deleted topic", "topic", t.name)
}

// dropReplica closes this broker's replica of a partition and removes its
// directories: its topic was deleted or it was reassigned away.
func (c *cluster) dropReplica(t *topic, p *partition) {
	b := c.b
	if p.stopWatch != nil {
		close(p.stopWatch)
	}
	b.unloadCoordinator(p) // a coordinator replica reassigned away
	p.deleted.Store(true)
	if err := p.close(); err != nil {
		b.log.Warn("closing dropped replica", "topic", t.name, "partition", p.index, "err", err)
	}
	p.wake()
	for _, dir := range []string{b.partitionDir(t.name, p.index), c.raftDir(t.name, p.index)} {
		if err := os.RemoveAll(dir); err != nil {
			b.log.Warn("removing dropped replica", "dir", dir, "err", err)
		}
	}
}

// sweepOrphans removes replica directories of topics that were deleted
// (or moved off this node) while it was down: any partition or Raft
// directory the image does not assign here is left over. It runs once the
// local image has caught up with this node's registration.
func (c *cluster) sweepOrphans(img *controller.Image) {
	b := c.b
	known := map[string]bool{}
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, b.cfg.NodeID) {
				known[filepath.Base(b.partitionDir(t.Name, p.Index))] = true
			}
		}
	}
	for _, dir := range []string{b.cfg.DataDir, filepath.Join(b.cfg.DataDir, "raft")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() && !known[e.Name()] && (looksLikePartitionDir(e.Name()) || strings.HasSuffix(e.Name(), deletedSuffix)) {
				b.log.Info("removing replica directory of a topic no longer assigned here", "dir", filepath.Join(dir, e.Name()))
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// watch follows one replica's leadership: a leader that has committed in
// its term reports itself to the controller, and a __consumer_offsets
// leader loads its groups into the coordinator (unloading them when it
// stops leading).
func (c *cluster) watch(id [16]byte, p *partition, delayed bool) {
	defer c.wg.Done()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	leaderCh := p.repl.Raft().LeaderCh()
	for {
		if delayed && p.repl.Leader() != "" {
			c.restoreTimeouts(p)
			delayed = false
		}
		c.tend(id, p)
		select {
		case <-c.b.ctx.Done():
			return
		case <-p.stopWatch:
			return
		case <-leaderCh:
		case <-tick.C:
		}
	}
}

func (c *cluster) tend(id [16]byte, p *partition) {
	if !p.repl.IsLeader() {
		c.b.unloadCoordinator(p)
		return
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, readyTimeout)
	defer cancel()
	if p.repl.Ready(ctx) != nil {
		return
	}
	self, epoch, img := c.b.cfg.NodeID, p.repl.LeaderEpoch(), c.ctl.Image()
	switch ip, ok := imagePartition(img, id, p.index); {
	case !ok:
	case ip.Leader == self && ip.LeaderEpoch == epoch:
		c.tendISR(ctx, img, id, p, ip)
		if c.tendMembership(ctx, img, id, p, ip) || c.handOver(img, p, ip) {
			return
		}
	case ip.LeaderEpoch <= epoch:
		if err := c.remote.ReportLeader(ctx, id, p.index, self, epoch); err != nil {
			c.b.log.Debug("reporting partition leader", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
	if isInternalTopic(p.topic) && !p.loaded.Load() {
		if err := c.b.loadCoordinator(p); err != nil {
			c.b.log.Warn("loading coordinator state", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
}

func imagePartition(img *controller.Image, id [16]byte, index int32) (controller.Partition, bool) {
	t, ok := img.TopicByID(id)
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return controller.Partition{}, false
	}
	return t.Partitions[index], true
}
