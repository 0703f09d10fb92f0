package broker

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/controller"
)

// Preferred leaders. Kafka spreads leadership by making the first replica
// of each partition's assignment (spread round-robin by placement) its
// leader, and moves leadership back there after a failover. Here each
// partition's Raft group elects its own leader, so weir gets there in
// three steps:
//
//   - A brand-new group's other replicas wait firstElectionDelay times
//     longer before their first election, so the preferred replica, if it
//     is up, usually wins it outright.
//   - A partition whose image asks for its preferred leader
//     (Partition.ElectPreferred: at creation, after an ElectLeaders request
//     or an imbalance check) is handed over by its current leader once the
//     preferred replica is caught up: Raft's leadership transfer, which
//     sends no entry twice and loses nothing committed.
//   - The active controller checks the balance every
//     LeaderImbalanceCheckInterval and asks for the preferred leaders of
//     brokers leading too few of their preferred partitions (Kafka's
//     auto.leader.rebalance.enable and leader.imbalance.per.broker.percentage).

// firstElectionDelay stretches the election timeout of a new group's
// non-preferred replicas until the group has a leader.
const firstElectionDelay = 3

// replicaRaftConfig is the Raft configuration of a replica about to
// open. It reports whether it delays the first election, which the
// replica's watcher undoes (restoreTimeouts) once a leader is known.
func (c *cluster) replicaRaftConfig(raftDir string, ip controller.Partition) (*raft.Config, bool) {
	rc := c.raftConfig()
	if ip.Preferred() == c.b.cfg.NodeID {
		return rc, false
	}
	if _, err := os.Stat(raftDir); !os.IsNotExist(err) {
		return rc, false // an existing group: its leader is already settled
	}
	rc.HeartbeatTimeout *= firstElectionDelay
	rc.ElectionTimeout *= firstElectionDelay
	return rc, true
}

// restoreTimeouts gives a replica the normal election timeouts back.
func (c *cluster) restoreTimeouts(p *partition) {
	r := p.repl.Raft()
	rc := r.ReloadableConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout = c.b.cfg.RaftTimeout, c.b.cfg.RaftTimeout
	if err := r.ReloadConfig(rc); err != nil {
		c.b.log.Warn("restoring Raft timeouts", "topic", p.topic, "partition", p.index, "err", err)
	}
}

// handOver runs on a partition's leader: if the image asks for the
// preferred leader and that replica is in sync on a broker in service and
// has just reported itself caught up, it transfers leadership to it. It
// reports whether leadership moved.
func (c *cluster) handOver(img *controller.Image, p *partition, ip controller.Partition) bool {
	pref := ip.Preferred()
	if !ip.ElectPreferred || pref == c.b.cfg.NodeID || !slices.Contains(ip.ISR, pref) || ip.Reassigning() {
		return false
	}
	br, ok := img.Broker(pref)
	if !ok || br.Fenced || !p.followers.inSync(pref, br.Epoch, false, time.Now(), 0) {
		return false
	}
	err := p.repl.Raft().LeadershipTransferToServer(serverID(pref), raft.ServerAddress(c.raftAddr(pref))).Error()
	if err != nil {
		c.b.log.Debug("handing leadership to the preferred replica", "topic", p.topic, "partition", p.index, "to", pref, "err", err)
		return false
	}
	c.b.log.Info("handed leadership to the preferred replica", "topic", p.topic, "partition", p.index, "to", pref)
	return true
}

// balanceLeaders runs the imbalance check on the active controller every
// LeaderImbalanceCheckInterval until the broker stops.
func (c *cluster) balanceLeaders() {
	defer c.wg.Done()
	tick := time.NewTicker(c.b.cfg.LeaderImbalanceCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case <-tick.C:
		}
		if c.raft.State() != raft.Leader {
			continue
		}
		refs := imbalanced(c.ctl.Image(), c.b.cfg.LeaderImbalancePerBrokerPercentage)
		if len(refs) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
		err := c.remote.ElectPreferred(ctx, refs)
		cancel()
		if err != nil {
			c.b.log.Warn("leader imbalance check", "err", err)
			continue
		}
		c.b.log.Info("asked for preferred leaders", "partitions", len(refs))
	}
}

// imbalanced lists the partitions to hand back to their preferred leaders:
// those of every broker in service that leads more than pct percent fewer
// of its preferred partitions than it could, limited to partitions whose
// preferred replica is in sync and not already asked for.
func imbalanced(img *controller.Image, pct int) []controller.PartitionRef {
	preferred := map[int32]int{}
	notLed := map[int32][]controller.PartitionRef{}
	ready := map[int32][]controller.PartitionRef{}
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			pref := p.Preferred()
			if len(p.Replicas) < 2 || !inService(img, pref) {
				continue
			}
			preferred[pref]++
			if p.Leader == pref {
				continue
			}
			ref := controller.PartitionRef{TopicID: t.ID, Partition: p.Index}
			notLed[pref] = append(notLed[pref], ref)
			if !p.ElectPreferred && slices.Contains(p.ISR, pref) {
				ready[pref] = append(ready[pref], ref)
			}
		}
	}
	var out []controller.PartitionRef
	for id, n := range preferred {
		if len(notLed[id])*100 > pct*n {
			out = append(out, ready[id]...)
		}
	}
	return out
}
