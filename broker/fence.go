package broker

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// Broker liveness. Every broker of a cluster is a controller voter, so
// the active controller already heartbeats each of them through Raft: a
// broker whose heartbeats have failed for longer than its session timeout
// is fenced (it leaves Metadata's broker list and every ISR, and partitions
// it led report no leader until their Raft groups elect another), and is
// unfenced when heartbeats resume. This plays the part of KRaft's broker
// heartbeats without a second protocol.

// sessionTimeout is how long heartbeats may fail before a broker is
// fenced: two election timeouts, so a slow election is not mistaken for a
// dead broker.
func (c *cluster) sessionTimeout() time.Duration { return 2 * c.b.cfg.RaftTimeout }

// watchLiveness fences and unfences brokers from the controller's
// heartbeat observations, while this node is the active controller.
func (c *cluster) watchLiveness() {
	defer c.wg.Done()
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	c.raft.RegisterObserver(obs)
	defer c.raft.DeregisterObserver(obs)
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case o := <-ch:
			c.observeHeartbeat(o.Data)
		}
	}
}

func (c *cluster) observeHeartbeat(data any) {
	var (
		peer  raft.ServerID
		fence bool
	)
	switch d := data.(type) {
	case raft.FailedHeartbeatObservation:
		if time.Since(d.LastContact) < c.sessionTimeout() {
			return
		}
		peer, fence = d.PeerID, true
	case raft.ResumedHeartbeatObservation:
		peer = d.PeerID
	}
	id, ok := nodeID(peer)
	if !ok {
		return
	}
	br, ok := c.ctl.Image().Broker(id)
	if !ok || br.Fenced == fence {
		return
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, c.sessionTimeout())
	defer cancel()
	var err error
	if fence {
		err = c.remote.FenceBroker(ctx, br.NodeID, br.Epoch)
	} else {
		err = c.remote.UnfenceBroker(ctx, br.NodeID, br.Epoch)
	}
	c.b.log.Info("broker liveness changed", "node", br.NodeID, "fenced", fence, "err", err)
}
