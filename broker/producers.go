package broker

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
)

// producerWindow is how many recent batches per producer and partition are
// remembered for deduplication: Kafka's NUM_BATCHES_TO_RETAIN, matching a
// client's max.in.flight.requests.per.connection of 5.
const producerWindow = 5

// producerState is one idempotent producer's recent batches on one
// partition.
type producerState struct {
	epoch  int16
	recent [producerWindow]seqRange
	n      int // batches recorded, capped at producerWindow
	next   int // ring position of the next record
	// lastTimestamp is the max timestamp of the producer's last batch:
	// expiry is judged by record time, which every replica agrees on.
	lastTimestamp int64
}

type seqRange struct {
	first, last int32
	base        int64
}

// check decides what to do with a batch from this producer: append it,
// answer it as a duplicate with the original offset, or refuse it.
func (s *producerState) check(h batch.Header) (base int64, duplicate bool, err error) {
	switch {
	case h.ProducerEpoch < s.epoch:
		return 0, false, kerr.InvalidProducerEpoch
	case h.ProducerEpoch > s.epoch:
		// A bumped epoch starts its sequences over at zero.
		if h.BaseSequence != 0 {
			return 0, false, kerr.OutOfOrderSequenceNumber
		}
		*s = producerState{epoch: h.ProducerEpoch}
		return 0, false, nil
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
	newest := s.recent[(s.next+producerWindow-1)%producerWindow]
	if h.BaseSequence != nextSeq(newest.last) {
		return 0, false, kerr.OutOfOrderSequenceNumber
	}
	return 0, false, nil
}

// record remembers an appended batch.
func (s *producerState) record(h batch.Header, base int64) {
	s.epoch = h.ProducerEpoch
	s.lastTimestamp = max(s.lastTimestamp, h.MaxTimestamp)
	s.recent[s.next] = seqRange{first: h.BaseSequence, last: lastSeq(h), base: base}
	s.next = (s.next + 1) % producerWindow
	if s.n < producerWindow {
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
