package broker

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/controller"
)

// Reassignment (KIP-455). The controller records the target replicas; the
// partition's leader moves its Raft group there one membership change at
// a time, as Kafka moves a partition by growing its replica set, waiting
// for the new replicas to join the ISR and then shrinking it:
//
//  1. a target replica missing from the group joins as a non-voter (it
//     opened the group empty and learns everything from the leader,
//     snapshot first if the log has been compacted);
//  2. a non-voter that has reported itself caught up becomes a voter;
//  3. once every target replica votes, the others are removed, the leader
//     last: it hands leadership to a caught-up target replica first;
//  4. the leader reports CompleteReassign and the image drops the removed
//     replicas, whose brokers then close and delete them.
//
// A reassignment's steps are Raft configuration changes, each committed
// by the current voters, so no acknowledged record depends on a replica
// being removed. The leader converges on the image's target whether or
// not a reassignment is recorded, so a reassignment replaced or cancelled
// halfway is undone the same way.

// membershipTimeout bounds one Raft configuration change.
const membershipTimeout = 5 * time.Second

// tendMembership makes one step towards the image's target replicas. It
// reports whether it changed something (or leadership moved), in which
// case the caller re-evaluates on its next tick.
func (c *cluster) tendMembership(ctx context.Context, img *controller.Image, id [16]byte, p *partition, ip controller.Partition) bool {
	r := p.repl.Raft()
	cf := r.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	servers := cf.Configuration().Servers
	target, self := ip.Target(), c.b.cfg.NodeID
	suffrage := map[int32]raft.ServerSuffrage{}
	for _, s := range servers {
		if n, ok := nodeID(s.ID); ok {
			suffrage[n] = s.Suffrage
		}
	}
	step := func(what string, node int32, f raft.Future) bool {
		if err := f.Error(); err != nil {
			c.b.log.Warn("reassigning partition", "topic", p.topic, "partition", p.index, "step", what, "replica", node, "err", err)
			return false
		}
		c.b.log.Info("reassigning partition", "topic", p.topic, "partition", p.index, "step", what, "replica", node)
		return true
	}
	waiting := false
	for _, n := range target {
		s, ok := suffrage[n]
		switch {
		case !ok:
			return step("add non-voter", n, r.AddNonvoter(serverID(n), raft.ServerAddress(c.raftAddr(n)), 0, membershipTimeout))
		case s == raft.Nonvoter && c.caughtUp(img, p, n):
			return step("promote to voter", n, r.AddVoter(serverID(n), raft.ServerAddress(c.raftAddr(n)), 0, membershipTimeout))
		case s == raft.Nonvoter:
			waiting = true
		}
	}
	if waiting {
		return false // shrinking waits until every target replica votes
	}
	for n := range suffrage {
		if n != self && !slices.Contains(target, n) {
			return step("remove", n, r.RemoveServer(serverID(n), 0, membershipTimeout))
		}
	}
	if !slices.Contains(target, self) {
		for _, n := range target {
			if c.caughtUp(img, p, n) {
				return step("hand leadership to", n, r.LeadershipTransferToServer(serverID(n), raft.ServerAddress(c.raftAddr(n))))
			}
		}
		return false
	}
	if ip.Reassigning() {
		err := c.remote.CompleteReassign(ctx, controller.CompleteReassign{TopicID: id, Partition: p.index,
			Leader: self, LeaderEpoch: ip.LeaderEpoch, PartitionEpoch: ip.PartitionEpoch})
		if err != nil {
			c.b.log.Debug("completing reassignment", "topic", p.topic, "partition", p.index, "err", err)
			return false
		}
		c.b.log.Info("reassigned partition", "topic", p.topic, "partition", p.index, "replicas", target)
	}
	return false
}

// caughtUp says whether replica n, on a broker in service, has just
// reported itself caught up with this leader.
func (c *cluster) caughtUp(img *controller.Image, p *partition, n int32) bool {
	br, ok := img.Broker(n)
	return ok && !br.Fenced && p.followers.inSync(n, br.Epoch, false, time.Now(), 0)
}

func serverID(n int32) raft.ServerID { return raft.ServerID(nodeName(n)) }
