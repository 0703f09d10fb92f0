package broker

import (
	"context"
	"sync"
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
//
// Raft reports heartbeats failing and resuming as events; the controller
// keeps which brokers are failing since when, and every half Raft timeout
// makes the image agree with that. Acting on the events themselves loses
// a change whenever one overtakes another in flight (a broker fenced just
// after its heartbeats resumed stayed fenced for good).

// sessionTimeout is how long heartbeats may fail before a broker is
// fenced: two election timeouts, so a slow election is not mistaken for a
// dead broker.
func (c *cluster) sessionTimeout() time.Duration { return 2 * c.b.cfg.RaftTimeout }

// liveness is what the active controller has heard of heartbeats.
type liveness struct {
	mu      sync.Mutex
	failing map[int32]time.Time // broker -> last successful contact
}

// follow records heartbeat observations until stop is closed. It never
// blocks on anything else: raft waits for it.
func (lv *liveness) follow(ch <-chan raft.Observation, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case o := <-ch:
			lv.observe(o.Data)
		}
	}
}

func (lv *liveness) observe(data any) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	switch d := data.(type) {
	case raft.FailedHeartbeatObservation:
		id, ok := nodeID(d.PeerID)
		if _, known := lv.failing[id]; ok && !known {
			since := d.LastContact
			if since.IsZero() { // never reached in this term
				since = time.Now()
			}
			lv.failing[id] = since
		}
	case raft.ResumedHeartbeatObservation:
		if id, ok := nodeID(d.PeerID); ok {
			delete(lv.failing, id)
		}
	}
}

// failingFor is how long heartbeats to broker id have failed (0: they
// have not).
func (lv *liveness) failingFor(id int32) time.Duration {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	since, ok := lv.failing[id]
	if !ok {
		return 0
	}
	return time.Since(since)
}

func (lv *liveness) reset() {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	clear(lv.failing)
}

// watchLiveness fences and unfences brokers while this node is the
// active controller.
func (c *cluster) watchLiveness() {
	defer c.wg.Done()
	lv := &liveness{failing: map[int32]time.Time{}}
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, true, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	c.raft.RegisterObserver(obs)
	stop := make(chan struct{})
	go lv.follow(ch, stop)
	defer func() {
		// Deregistering waits for a send in progress, which needs follow.
		c.raft.DeregisterObserver(obs)
		close(stop)
	}()
	tick := time.NewTicker(c.b.cfg.RaftTimeout / 2)
	defer tick.Stop()
	var leading time.Time // when this node became the active controller
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case <-tick.C:
		}
		if c.raft.State() != raft.Leader {
			leading = time.Time{}
			lv.reset()
			continue
		}
		if leading.IsZero() {
			leading = time.Now()
		}
		c.applyLiveness(lv, time.Since(leading))
	}
}

// applyLiveness fences the brokers failing for a session timeout and
// unfences the others. A new controller unfences nobody else for its
// first session timeout: until its heartbeats have had time to fail, not
// having seen a failure says nothing.
func (c *cluster) applyLiveness(lv *liveness, leading time.Duration) {
	session := c.sessionTimeout()
	for _, br := range c.ctl.Image().Brokers() {
		fence := lv.failingFor(br.NodeID) >= session
		switch {
		case br.Fenced == fence:
			continue
		case !fence && br.NodeID != c.b.cfg.NodeID && leading < session:
			continue
		}
		ctx, cancel := context.WithTimeout(c.b.ctx, session)
		var err error
		if fence {
			err = c.remote.FenceBroker(ctx, br.NodeID, br.Epoch)
		} else {
			err = c.remote.UnfenceBroker(ctx, br.NodeID, br.Epoch)
		}
		cancel()
		c.b.log.Info("broker liveness changed", "node", br.NodeID, "fenced", fence, "err", err)
	}
}
