package txn

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// InitProducerID handles InitProducerId for a transactional id (the broker
// answers a null transactional id itself, from IDs). pid and epoch are -1
// unless the client is re-initialising after an error (KIP-360). It returns
// the producer id and epoch to use, after the new state is durable:
//
//   - a new id gets a fresh producer id at epoch 0;
//   - an Empty or completed id gets its epoch bumped (fencing older
//     instances), or a fresh producer id once the epoch is exhausted;
//   - an Ongoing transaction is aborted with a bumped epoch, and the answer
//     is CONCURRENT_TRANSACTIONS so the client retries once it is done;
//   - a transaction being committed or aborted answers
//     CONCURRENT_TRANSACTIONS.
func (c *Coordinator) InitProducerID(ctx context.Context, txnID string, timeoutMs int32, pid int64, epoch int16) (int64, int16, error) {
	hasExp := pid != -1 || epoch != -1
	if err := c.checkInit(txnID, timeoutMs, pid, epoch); err != nil {
		return -1, -1, err
	}
	p, err := c.lookup(txnID)
	if err != nil {
		return -1, -1, err
	}
	t, err := p.lockTxn(txnID, true)
	if err != nil {
		return -1, -1, err
	}
	now := c.nowMs()
	next := newMeta()
	next.timeoutMs, next.state, next.updateMs = timeoutMs, stateEmpty, now
	switch {
	case t.pending:
		t.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions
	case !t.exists:
		t.pending = true
		t.mu.Unlock()
		return c.initNewProducer(ctx, t, next)
	case hasExp && !t.m.validProducer(pid, epoch):
		t.mu.Unlock()
		return -1, -1, kerr.ProducerFenced
	case preparing(t.m.state):
		t.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions
	case t.m.state == stateOngoing:
		return -1, -1, c.fenceOngoing(ctx, t, now)
	case exhausted(t.m.epoch) && (!hasExp || epoch == t.m.epoch):
		next.lastPID = t.m.pid
		if hasExp {
			next.lastEpoch = t.m.epoch
		}
		t.pending = true
		t.mu.Unlock()
		return c.initNewProducer(ctx, t, next)
	}
	return c.bumpEpoch(ctx, t, next, hasExp, epoch)
}

// checkInit validates an InitProducerId request as Kafka does before
// looking at any state.
func (c *Coordinator) checkInit(txnID string, timeoutMs int32, pid int64, epoch int16) error {
	if txnID == "" || (pid == -1) != (epoch == -1) {
		return kerr.InvalidRequest
	}
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.MaxTimeout {
		return kerr.InvalidTransactionTimeout
	}
	return nil
}

// bumpEpoch moves an Empty or completed t to next with its epoch bumped (or
// kept, for a KIP-360 retry). t.mu is held on entry and released.
func (c *Coordinator) bumpEpoch(ctx context.Context, t *txn, next meta, hasExp bool, exp int16) (int64, int16, error) {
	var ok bool
	next.pid, next.lastPID = t.m.pid, t.m.lastPID
	next.epoch, next.lastEpoch, ok = t.m.bumped(hasExp, exp)
	if !ok {
		t.mu.Unlock()
		return -1, -1, kerr.ProducerFenced
	}
	t.pending = true
	t.mu.Unlock()
	if err := await(ctx, c.persistState(t, next, nil)); err != nil {
		return -1, -1, err
	}
	return next.pid, next.epoch, nil
}

// initNewProducer allocates a producer id for next (epoch 0) and writes it.
// t.pending is set and t.mu not held: nothing else changes t meanwhile, so
// the allocation, which may be remote, runs unlocked.
func (c *Coordinator) initNewProducer(ctx context.Context, t *txn, next meta) (int64, int16, error) {
	pid, err := c.ids.AllocateProducerID(ctx)
	if err != nil {
		t.mu.Lock()
		t.pending = false
		if !t.exists && !t.removed {
			t.drop()
		}
		t.mu.Unlock()
		c.logger.Warn("allocating a producer id failed", "transactional_id", t.id, "err", err)
		return -1, -1, idErr(err)
	}
	next.pid, next.epoch = pid, 0
	if err := await(ctx, c.persistState(t, next, nil)); err != nil {
		return -1, -1, err
	}
	return next.pid, next.epoch, nil
}

// fenceOngoing aborts t's Ongoing transaction with a bumped epoch, as Kafka
// does when a new producer instance initialises: the old instance is fenced
// and its transaction rolled back before the new one may start. It answers
// CONCURRENT_TRANSACTIONS once the abort is decided. t.mu is held on entry
// and released.
func (c *Coordinator) fenceOngoing(ctx context.Context, t *txn, now int64) error {
	next := t.m.fenced(now)
	t.pending = true
	t.mu.Unlock()
	c.logger.Info("fencing the ongoing transaction of a re-initialised producer", "transactional_id", t.id, "producer_id", next.pid, "epoch", next.epoch)
	if err := await(ctx, c.persistState(t, next, func() { c.startCompletion(t) })); err != nil {
		return err
	}
	return kerr.ConcurrentTransactions
}
