// Package producer keeps idempotent producers' sequence state for one
// partition: the last batches of each producer, to answer a retried batch
// with its original offset and refuse gaps and stale epochs, as Kafka's
// ProducerStateManager does. The single-node broker and a partition's
// replicated state machine both use it; everything it decides depends only
// on the batches (never the clock), so every replica decides alike.
package producer

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
)

// window is how many recent batches per producer and partition are
// remembered for deduplication: Kafka's NUM_BATCHES_TO_RETAIN, matching a
// client's max.in.flight.requests.per.connection of 5.
const window = 5

// state is one idempotent producer's recent batches on one
// partition.
type state struct {
	epoch  int16
	recent [window]seqRange
	n      int // batches recorded, capped at window
	next   int // ring position of the next record
	// lastTimestamp is the max timestamp of the producer's last batch:
	// expiry is judged by record time, which every replica agrees on.
	lastTimestamp int64
}

type seqRange struct {
	first, last int32
	base        int64
}

// Table is the producer state of one partition. It is not safe for
// concurrent use: the partition's append lock guards it.
type Table struct {
	states map[int64]*state
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{states: make(map[int64]*state)} }

// Check decides what to do with a batch h (of an idempotent producer,
// h.ProducerID >= 0): append it (err nil, duplicate false), answer it with
// the original base offset (duplicate true), or refuse it with a Kafka
// error. A batch without a sequence (EpochOnly) is refused only when its
// epoch is older than the producer's, which is how a coordinator's stale
// marker (or a fenced zombie's) is kept out.
func (t *Table) Check(h batch.Header) (base int64, duplicate bool, err error) {
	st := t.states[h.ProducerID]
	if st == nil {
		return 0, false, nil // no history: any sequence starts a producer
	}
	if EpochOnly(h) {
		if h.ProducerEpoch < st.epoch {
			return 0, false, kerr.InvalidProducerEpoch
		}
		return 0, false, nil
	}
	return st.check(h)
}

// Record remembers a batch appended at base. A marker with a newer epoch
// (the coordinator fencing the producer) moves the producer to it with no
// batches remembered, so the old epoch is refused from then on and the new
// one may start at any sequence.
func (t *Table) Record(h batch.Header, base int64) {
	st := t.states[h.ProducerID]
	if st == nil || h.ProducerEpoch > st.epoch {
		st = &state{epoch: h.ProducerEpoch}
		t.states[h.ProducerID] = st
	}
	if EpochOnly(h) {
		st.lastTimestamp = max(st.lastTimestamp, h.MaxTimestamp)
		return
	}
	st.record(h, base)
}

// EpochOnly reports a batch that carries a producer id and epoch but no
// sequence: a transaction marker, or the transactional offset commits a
// group coordinator writes (Kafka's NO_SEQUENCE). Only its epoch counts.
func EpochOnly(h batch.Header) bool { return h.Control() || h.BaseSequence < 0 }

// Expire forgets producers whose last batch's max timestamp is before
// cutoff (Unix ms): Kafka's producer.id.expiration.ms. A forgotten producer
// that returns is accepted at any sequence, as in Kafka.
func (t *Table) Expire(cutoff int64) {
	for id, st := range t.states {
		if st.lastTimestamp < cutoff {
			delete(t.states, id)
		}
	}
}

// Len is the number of producers remembered.
func (t *Table) Len() int { return len(t.states) }

// check decides what to do with a batch from this producer: append it,
// answer it as a duplicate with the original offset, or refuse it.
func (s *state) check(h batch.Header) (base int64, duplicate bool, err error) {
	switch {
	case h.ProducerEpoch < s.epoch:
		return 0, false, kerr.InvalidProducerEpoch
	case h.ProducerEpoch > s.epoch:
		// A bumped epoch starts its sequences over at zero.
		if h.BaseSequence != 0 {
			return 0, false, kerr.OutOfOrderSequenceNumber
		}
		return 0, false, nil // Record starts the new epoch's state
	}
	if s.n == 0 {
		// No history (new producer, or its batches were deleted): Kafka
		// accepts any sequence rather than wedge the client.
		return 0, false, nil
	}
	last := lastSeq(h)
	for i := 0; i < s.n; i++ {
		r := s.recent[i]
		if r.first == h.BaseSequence && r.last == last {
			return r.base, true, nil
		}
	}
	newest := s.recent[(s.next+window-1)%window]
	if h.BaseSequence != nextSeq(newest.last) {
		return 0, false, kerr.OutOfOrderSequenceNumber
	}
	return 0, false, nil
}

// record remembers an appended batch.
func (s *state) record(h batch.Header, base int64) {
	s.epoch = h.ProducerEpoch
	s.lastTimestamp = max(s.lastTimestamp, h.MaxTimestamp)
	s.recent[s.next] = seqRange{first: h.BaseSequence, last: lastSeq(h), base: base}
	s.next = (s.next + 1) % window
	if s.n < window {
		s.n++
	}
}

// lastSeq is the sequence of the batch's last record; sequences wrap from
// MaxInt32 to 0.
func lastSeq(h batch.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// Info describes one producer the table remembers, for DescribeProducers.
type Info struct {
	ID            int64
	Epoch         int16
	LastSequence  int32 // -1 when no sequenced batch is remembered
	LastTimestamp int64
}

// Producers lists the producers remembered, in no particular order.
func (t *Table) Producers() []Info {
	out := make([]Info, 0, len(t.states))
	for id, st := range t.states {
		in := Info{ID: id, Epoch: st.epoch, LastSequence: -1, LastTimestamp: st.lastTimestamp}
		if st.n > 0 {
			in.LastSequence = st.recent[(st.next+window-1)%window].last
		}
		out = append(out, in)
	}
	return out
}
