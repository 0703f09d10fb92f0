package txn

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// writer serialises the writes of one __transaction_state partition: they
// are appended in the order they were queued, whatever queued up during an
// Append going out in the next one (group commit), and their apply
// callbacks run in that order.
type writer struct {
	mu      sync.Mutex
	q       []write
	running bool
}

type write struct {
	t     *txn
	rec   Record
	apply func(err error) error // runs with t.mu held once rec is durable (nil) or failed
	done  chan error            // buffered; receives apply's result
}

// persist queues rec for t and returns where apply's result will arrive.
// The caller has set t.pending and must not hold t.mu. apply runs whether or
// not anyone waits, so a state change that became durable is applied even if
// the request that made it has gone.
func (c *Coordinator) persist(t *txn, rec Record, apply func(error) error) <-chan error {
	p := t.p
	wr := write{t: t, rec: rec, apply: apply, done: make(chan error, 1)}
	p.w.mu.Lock()
	p.w.q = append(p.w.q, wr)
	start := !p.w.running
	p.w.running = true
	p.w.mu.Unlock()
	// Once Close has begun no goroutine may start; the context is then
	// cancelled, so draining inline fails the writes without blocking.
	if start && !c.spawn(func() { c.drain(p) }) {
		c.drain(p)
	}
	return wr.done
}

func (c *Coordinator) drain(p *partition) {
	for {
		p.w.mu.Lock()
		batch := p.w.q
		p.w.q = nil
		if len(batch) == 0 {
			p.w.running = false
			p.w.mu.Unlock()
			return
		}
		p.w.mu.Unlock()

		recs := make([]Record, len(batch))
		for i, wr := range batch {
			recs[i] = wr.rec
		}
		err := p.ctx.Err()
		if err == nil {
			err = c.log.Append(p.ctx, p.num, recs)
		}
		if err != nil {
			c.logger.Warn("appending to __transaction_state failed", "partition", p.num, "records", len(recs), "err", err)
		}
		for _, wr := range batch {
			wr.t.mu.Lock()
			res := wr.apply(err)
			wr.t.mu.Unlock()
			wr.done <- res
		}
	}
}

// await waits for a queued write. A request that gives up leaves the write
// to finish on its own; its client retries and finds the outcome.
func await(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return kerr.RequestTimedOut
	}
}

// applyState returns the apply of a write moving t to next: the new state
// becomes visible only once durable, and then after (if any) runs, with
// t.mu held.
func (t *txn) applyState(next meta, after func()) func(error) error {
	return func(err error) error {
		t.pending = false
		if t.removed {
			return kerr.NotCoordinator
		}
		if err != nil {
			if !t.exists {
				t.drop() // an id whose first write failed was never there
			}
			return appendErr(err)
		}
		t.m, t.exists = next, true
		if after != nil {
			after()
		}
		return nil
	}
}

// applyDelete is the apply of a tombstone.
func (t *txn) applyDelete(err error) error {
	t.pending = false
	if t.removed {
		return kerr.NotCoordinator
	}
	if err != nil {
		return appendErr(err)
	}
	t.drop()
	return nil
}

// persistState queues next as t's state. t.pending must be set.
func (c *Coordinator) persistState(t *txn, next meta, after func()) <-chan error {
	rec := Record{Key: txnKey(t.id), Value: txnValue(next)}
	return c.persist(t, rec, t.applyState(next, after))
}
