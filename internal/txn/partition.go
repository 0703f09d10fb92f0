package txn

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
)

// partition is one __transaction_state partition this coordinator is
// loading or serving. A partition that resigns is discarded whole; serving
// it again starts from a fresh one (Load, then Elect).
type partition struct {
	num    int32
	served bool         // guarded by Coordinator.mu; false while loading
	epoch  atomic.Int32 // coordinator epoch, stamped on markers

	// ctx ends when the partition resigns (or the coordinator closes): it
	// stops marker retries and fails queued writes.
	ctx    context.Context
	cancel context.CancelFunc

	w writer

	mu       sync.Mutex
	resigned bool
	txns     map[string]*txn
}

func (c *Coordinator) newPartition(num int32) *partition {
	ctx, cancel := context.WithCancel(c.ctx)
	return &partition{num: num, ctx: ctx, cancel: cancel, txns: make(map[string]*txn)}
}

// Elect starts serving partition with the records Load replayed into it
// (none if Load was never called), stamping coordinatorEpoch on its markers.
// Transactions left in a Prepare state by the previous coordinator are
// completed: their outcome was decided and acknowledged, but their markers
// may not all have been written. Electing a partition already served only
// updates its epoch.
func (c *Coordinator) Elect(partition int32, coordinatorEpoch int32) {
	if partition < 0 || partition >= c.cfg.Partitions {
		c.logger.Error("electing a partition out of range", "partition", partition)
		return
	}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return
	}
	p := c.parts[partition]
	if p == nil {
		p = c.newPartition(partition)
		c.parts[partition] = p
	}
	was := p.served
	p.epoch.Store(coordinatorEpoch)
	p.served = true
	c.mu.Unlock()
	if was {
		return
	}
	for _, t := range p.snapshot() {
		t.mu.Lock()
		prep := t.exists && !t.removed && preparing(t.m.state)
		t.mu.Unlock()
		if prep {
			c.startCompletion(t)
		}
	}
}

// Resign stops serving (or loading) partition: its state is dropped, marker
// work for it stops, and its transactional ids answer NOT_COORDINATOR.
func (c *Coordinator) Resign(partition int32) {
	c.mu.Lock()
	p := c.parts[partition]
	delete(c.parts, partition)
	c.mu.Unlock()
	if p != nil {
		p.shutdown()
	}
}

func (p *partition) shutdown() {
	p.cancel()
	p.mu.Lock()
	p.resigned = true
	ts := make([]*txn, 0, len(p.txns))
	for _, t := range p.txns {
		ts = append(ts, t)
	}
	p.txns = nil
	p.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		t.removed = true
		t.mu.Unlock()
	}
}

// lookup returns the served partition of txnID.
func (c *Coordinator) lookup(txnID string) (*partition, error) {
	n := c.PartitionFor(txnID)
	c.mu.RLock()
	defer c.mu.RUnlock()
	p := c.parts[n]
	switch {
	case p == nil:
		return nil, kerr.NotCoordinator
	case !p.served:
		return nil, kerr.CoordinatorLoadInProgress
	}
	return p, nil
}

// loading returns partition for Load, creating it.
func (c *Coordinator) loading(partition int32) (*partition, error) {
	if partition < 0 || partition >= c.cfg.Partitions {
		return nil, fmt.Errorf("txn: partition %d out of range [0, %d)", partition, c.cfg.Partitions)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, fmt.Errorf("txn: coordinator closed")
	}
	p := c.parts[partition]
	if p == nil {
		p = c.newPartition(partition)
		c.parts[partition] = p
	}
	if p.served {
		return nil, fmt.Errorf("txn: partition %d is being served; Resign it before loading", partition)
	}
	return p, nil
}

// served returns the partitions being served.
func (c *Coordinator) served() []*partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ps []*partition
	for _, p := range c.parts {
		if p.served {
			ps = append(ps, p)
		}
	}
	return ps
}

func (p *partition) snapshot() []*txn {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := make([]*txn, 0, len(p.txns))
	for _, t := range p.txns {
		ts = append(ts, t)
	}
	return ts
}

// lockTxn returns id's txn, locked, creating an unwritten one if create is
// set; nil (and no error) if there is none. It fails with NOT_COORDINATOR
// once p has resigned. A txn removed between lookup and lock is looked up
// again.
func (p *partition) lockTxn(id string, create bool) (*txn, error) {
	for {
		p.mu.Lock()
		if p.resigned {
			p.mu.Unlock()
			return nil, kerr.NotCoordinator
		}
		t := p.txns[id]
		if t == nil {
			if !create {
				p.mu.Unlock()
				return nil, nil
			}
			t = &txn{id: id, p: p, m: newMeta()}
			p.txns[id] = t
		}
		p.mu.Unlock()
		t.mu.Lock()
		if !t.removed {
			return t, nil
		}
		t.mu.Unlock()
	}
}

// drop removes t from its partition. t.mu must be held.
func (t *txn) drop() {
	t.removed = true
	t.p.mu.Lock()
	if t.p.txns[t.id] == t {
		delete(t.p.txns, t.id)
	}
	t.p.mu.Unlock()
}
