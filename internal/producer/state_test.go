package producer

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
)

func hdr(pid int64, epoch int16, seq, n int32) batch.Header {
	return batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1}
}

func TestWindowDuplicatesGapsAndEpochs(t *testing.T) {
	tb := NewTable()
	for i, seq := range []int32{0, 3, 6, 9, 12, 15} {
		if _, dup, err := tb.Check(hdr(7, 0, seq, 3)); err != nil || dup {
			t.Fatalf("batch %d: dup %v err %v", i, dup, err)
		}
		tb.Record(hdr(7, 0, seq, 3), int64(seq))
	}
	if base, dup, _ := tb.Check(hdr(7, 0, 12, 3)); !dup || base != 12 {
		t.Fatalf("retry inside the window: dup %v base %d", dup, base)
	}
	if _, _, err := tb.Check(hdr(7, 0, 0, 3)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a batch older than the 5-batch window: %v", err)
	}
	if _, _, err := tb.Check(hdr(7, 0, 19, 1)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a sequence gap: %v", err)
	}
	if _, _, err := tb.Check(hdr(7, 1, 5, 1)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a new epoch not starting at 0: %v", err)
	}
	if _, _, err := tb.Check(hdr(7, 1, 0, 1)); err != nil {
		t.Fatalf("a new epoch starting at 0: %v", err)
	}
	// Check decides but does not change state: the old epoch still holds
	// until the new epoch's batch is recorded.
	if _, dup, _ := tb.Check(hdr(7, 0, 15, 3)); !dup {
		t.Fatal("a refused or merely checked batch changed the state")
	}
	tb.Record(hdr(7, 1, 0, 1), 100)
	if _, _, err := tb.Check(hdr(7, 0, 18, 1)); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("a stale epoch after the bump: %v", err)
	}
	if _, _, err := tb.Check(hdr(99, 0, 42, 1)); err != nil {
		t.Fatalf("an unknown producer at any sequence: %v", err)
	}
}

func TestSequencesWrap(t *testing.T) {
	tb := NewTable()
	tb.Record(hdr(1, 0, math.MaxInt32-1, 2), 0) // last sequence MaxInt32
	if _, _, err := tb.Check(hdr(1, 0, 0, 1)); err != nil {
		t.Fatalf("sequence after MaxInt32 must be 0: %v", err)
	}
}

func TestExpire(t *testing.T) {
	tb := NewTable()
	now := time.Now()
	old := hdr(1, 0, 0, 1)
	old.MaxTimestamp = now.Add(-25 * time.Hour).UnixMilli()
	fresh := hdr(2, 0, 0, 1)
	fresh.MaxTimestamp = now.Add(-time.Hour).UnixMilli()
	tb.Record(old, 0)
	tb.Record(fresh, 1)
	tb.Expire(now.Add(-24 * time.Hour).UnixMilli())
	if tb.Len() != 1 {
		t.Fatalf("%d producers after expiry, want 1", tb.Len())
	}
	if _, _, err := tb.Check(hdr(1, 0, 77, 1)); err != nil {
		t.Fatalf("an expired producer returning: %v", err)
	}
}

func TestMarkerFencesOlderEpoch(t *testing.T) {
	tb := NewTable()
	data := batch.Header{ProducerID: 1, ProducerEpoch: 2, BaseSequence: 0, LastOffsetDelta: 0, Attributes: batch.AttrTransactional}
	if _, _, err := tb.Check(data); err != nil {
		t.Fatal(err)
	}
	tb.Record(data, 0)
	// The coordinator aborts with a bumped epoch (a timeout or a new
	// producer with the same transactional id).
	m := batch.Header{ProducerID: 1, ProducerEpoch: 3, Attributes: batch.AttrTransactional | batch.AttrControl}
	if _, _, err := tb.Check(m); err != nil {
		t.Fatalf("newer marker refused: %v", err)
	}
	tb.Record(m, 1)
	data.BaseSequence = 1
	if _, _, err := tb.Check(data); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie batch after the fencing marker: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	old := m
	old.ProducerEpoch = 2
	if _, _, err := tb.Check(old); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("stale marker: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	fresh := batch.Header{ProducerID: 1, ProducerEpoch: 3, BaseSequence: 0, Attributes: batch.AttrTransactional}
	if _, _, err := tb.Check(fresh); err != nil {
		t.Fatalf("new epoch's first batch: %v", err)
	}
}
