package txn

import (
	"time"
)

// sweepLoop runs the timeout and expiration sweeps until Close.
func (c *Coordinator) sweepLoop() {
	abort := time.NewTicker(c.cfg.AbortInterval)
	defer abort.Stop()
	expire := time.NewTicker(c.cfg.ExpireInterval)
	defer expire.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-abort.C:
			c.abortTimedOut()
		case <-expire.C:
			c.expireIDs()
		}
	}
}

// abortTimedOut aborts every Ongoing transaction open longer than its
// timeout. The epoch is bumped first, as Kafka does, so that the producer,
// if it is a zombie rather than dead, is fenced: its next request answers
// PRODUCER_FENCED and the abort markers, carrying the new epoch, fence its
// produce. The writes are queued, not awaited.
func (c *Coordinator) abortTimedOut() {
	now := c.nowMs()
	for _, p := range c.served() {
		for _, t := range p.snapshot() {
			t.mu.Lock()
			if t.removed || t.pending || !t.exists || t.m.state != stateOngoing ||
				t.m.startMs+int64(t.m.timeoutMs) >= now {
				t.mu.Unlock()
				continue
			}
			next := t.m.fenced(now)
			t.pending = true
			t.mu.Unlock()
			c.logger.Info("aborting a timed out transaction", "transactional_id", t.id, "producer_id", next.pid, "epoch", next.epoch)
			c.persistState(t, next, func() { c.startCompletion(t) })
		}
	}
}

// expireIDs deletes, with a tombstone, every transactional id without a
// transaction in progress that has been idle for IDExpiration: its producer
// id and epoch are forgotten and its next InitProducerId starts afresh.
func (c *Coordinator) expireIDs() {
	cutoff := c.nowMs() - c.cfg.IDExpiration.Milliseconds()
	for _, p := range c.served() {
		for _, t := range p.snapshot() {
			t.mu.Lock()
			idle := t.m.state == stateEmpty || completed(t.m.state)
			if t.removed || t.pending || !t.exists || !idle || t.m.updateMs > cutoff {
				t.mu.Unlock()
				continue
			}
			t.pending = true
			t.mu.Unlock()
			c.logger.Info("expiring an idle transactional id", "transactional_id", t.id)
			c.persist(t, Record{Key: txnKey(t.id)}, t.applyDelete)
		}
	}
}
