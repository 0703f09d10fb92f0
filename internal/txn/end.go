package txn

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// EndTxn handles EndTxn. For an Ongoing transaction it writes PrepareCommit
// or PrepareAbort and answers once that is durable: from then on the
// outcome is decided and survives failover. The markers and the Complete
// record follow asynchronously. A retry with the same outcome answers
// success once complete and CONCURRENT_TRANSACTIONS until then; the other
// outcome, or no transaction, answers INVALID_TXN_STATE.
func (c *Coordinator) EndTxn(ctx context.Context, txnID string, pid int64, epoch int16, commit bool) error {
	p, err := c.lookup(txnID)
	if err != nil {
		return err
	}
	t, err := lockProducer(p, txnID, pid, epoch)
	if err != nil {
		return err
	}
	if t.pending {
		t.mu.Unlock()
		return kerr.ConcurrentTransactions
	}
	prepare, complete := statePrepareAbort, stateCompleteAbort
	if commit {
		prepare, complete = statePrepareCommit, stateCompleteCommit
	}
	switch s := t.m.state; {
	case s == stateOngoing:
		next := t.m
		next.state, next.updateMs = prepare, c.nowMs()
		t.pending = true
		t.mu.Unlock()
		return await(ctx, c.persistState(t, next, func() { c.startCompletion(t) }))
	case s == complete:
		t.mu.Unlock()
		return nil
	case s == prepare:
		t.mu.Unlock()
		return kerr.ConcurrentTransactions
	}
	t.mu.Unlock()
	return kerr.InvalidTxnState
}

// startCompletion completes t's Prepare state in the background.
func (c *Coordinator) startCompletion(t *txn) {
	c.spawn(func() { c.complete(t) })
}

// complete writes the markers of t's prepared transaction, then its
// Complete record. It gives up only when the partition resigns (the next
// coordinator completes the transaction from the log) or a newer
// coordinator fences the markers.
func (c *Coordinator) complete(t *txn) {
	p := t.p
	t.mu.Lock()
	m, ok := t.m, t.exists && !t.removed && preparing(t.m.state)
	t.mu.Unlock()
	if !ok {
		return
	}
	commit := m.state == statePrepareCommit
	req := MarkerRequest{ProducerID: m.pid, ProducerEpoch: m.epoch, Commit: commit, Partitions: slices.Clone(m.parts)}
	if !c.writeMarkers(p, t.id, req) {
		return
	}
	done := stateCompleteAbort
	if commit {
		done = stateCompleteCommit
	}
	for d := c.retryMin; ; d = min(2*d, c.retryMax) {
		t.mu.Lock()
		if t.removed || t.pending || t.m.state != m.state || t.m.epoch != m.epoch {
			t.mu.Unlock()
			return
		}
		next := m
		next.state, next.parts, next.updateMs = done, nil, c.nowMs()
		t.pending = true
		t.mu.Unlock()
		err := <-c.persistState(t, next, nil)
		if err == nil || errors.Is(err, kerr.NotCoordinator) {
			return
		}
		c.logger.Warn("writing a completed transaction failed; retrying", "transactional_id", t.id, "err", err)
		if !sleep(p.ctx, d) {
			return
		}
	}
}

// writeMarkers writes req's markers, retrying the partitions that failed
// with backoff. It reports whether all were written (or their topics are
// gone).
func (c *Coordinator) writeMarkers(p *partition, txnID string, req MarkerRequest) bool {
	for d := c.retryMin; len(req.Partitions) > 0; d = min(2*d, c.retryMax) {
		if p.ctx.Err() != nil {
			return false
		}
		// Re-read each attempt: a re-election may have raised it.
		req.CoordinatorEpoch = p.epoch.Load()
		errs := c.markers.WriteMarkers(p.ctx, req)
		var left []TopicPartition
		for _, tp := range req.Partitions {
			err, ok := errs[tp]
			switch {
			case ok && err == nil:
			case errors.Is(err, kerr.UnknownTopicOrPartition):
				c.logger.Info("dropping the marker of a deleted partition", "transactional_id", txnID, "topic", tp.Topic, "partition", tp.Partition)
			case errors.Is(err, kerr.TransactionCoordinatorFenced):
				c.logger.Warn("a newer coordinator fenced our markers", "transactional_id", txnID, "partition", p.num)
				return false
			default:
				left = append(left, tp)
			}
		}
		if len(left) == 0 {
			return true
		}
		c.logger.Warn("writing transaction markers failed; retrying", "transactional_id", txnID, "partitions", len(left), "first_err", errs[left[0]])
		req.Partitions = left
		if !sleep(p.ctx, d) {
			return false
		}
	}
	return true
}

// sleep waits d, reporting false if ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
