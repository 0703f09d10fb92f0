package txn

import (
	"cmp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Description is one transactional id in DescribeTransactions.
type Description struct {
	TransactionalID string
	// Err is nil, kerr.NotCoordinator, kerr.CoordinatorLoadInProgress or
	// kerr.TransactionalIDNotFound; the other fields are set only if nil.
	Err            error
	State          string // as Kafka prints it: "Empty", "Ongoing", ...
	ProducerID     int64
	ProducerEpoch  int16
	TimeoutMillis  int32
	StartTimestamp int64 // ms since the Unix epoch; -1 if no transaction started
	Partitions     []TopicPartition
}

// Listing is one transactional id in ListTransactions.
type Listing struct {
	TransactionalID string
	ProducerID      int64
	State           string
}

// Describe handles DescribeTransactions, from the durable state of each id.
func (c *Coordinator) Describe(txnIDs []string) []Description {
	out := make([]Description, len(txnIDs))
	for i, id := range txnIDs {
		out[i] = c.describe(id)
	}
	return out
}

func (c *Coordinator) describe(id string) Description {
	d := Description{TransactionalID: id}
	p, err := c.lookup(id)
	if err != nil {
		d.Err = err
		return d
	}
	t, err := p.lockTxn(id, false)
	switch {
	case err != nil:
		d.Err = err
		return d
	case t == nil:
		d.Err = kerr.TransactionalIDNotFound
		return d
	}
	defer t.mu.Unlock()
	if !t.exists {
		d.Err = kerr.TransactionalIDNotFound
		return d
	}
	d.State = t.m.state.String()
	d.ProducerID, d.ProducerEpoch, d.TimeoutMillis = t.m.pid, t.m.epoch, t.m.timeoutMs
	d.StartTimestamp = t.m.startMs
	d.Partitions = slices.Clone(t.m.parts)
	return d
}

// List handles ListTransactions over the partitions served here, sorted by
// transactional id. Empty states or pids match everything; an unknown state
// name matches nothing. minDuration > 0 keeps only transactions started
// longer ago than that (KIP-994).
func (c *Coordinator) List(states []string, pids []int64, minDuration time.Duration) []Listing {
	now := c.nowMs()
	var out []Listing
	for _, p := range c.served() {
		for _, t := range p.snapshot() {
			t.mu.Lock()
			m, ok := t.m, t.exists && !t.removed
			t.mu.Unlock()
			if !ok || !matches(m, states, pids, minDuration, now) {
				continue
			}
			out = append(out, Listing{TransactionalID: t.id, ProducerID: m.pid, State: m.state.String()})
		}
	}
	slices.SortFunc(out, func(a, b Listing) int { return cmp.Compare(a.TransactionalID, b.TransactionalID) })
	return out
}

func matches(m meta, states []string, pids []int64, minDuration time.Duration, now int64) bool {
	if len(states) > 0 && !slices.Contains(states, m.state.String()) {
		return false
	}
	if len(pids) > 0 && !slices.Contains(pids, m.pid) {
		return false
	}
	if minDuration > 0 && (m.startMs < 0 || now-m.startMs <= minDuration.Milliseconds()) {
		return false
	}
	return true
}
