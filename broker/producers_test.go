package broker

import (
	"testing"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

func TestProducerStateExpires(t *testing.T) {
	p := &partition{producers: make(map[int64]*producerState)}
	now := time.Now()
	old := &producerState{}
	old.record(batch.Header{ProducerID: 1, MaxTimestamp: now.Add(-25 * time.Hour).UnixMilli()}, 0)
	fresh := &producerState{}
	fresh.record(batch.Header{ProducerID: 2, MaxTimestamp: now.Add(-time.Hour).UnixMilli()}, 10)
	p.producers[1], p.producers[2] = old, fresh
	p.expireProducers(now, 24*time.Hour)
	if _, ok := p.producers[1]; ok {
		t.Fatal("a producer idle for 25 h was kept")
	}
	if _, ok := p.producers[2]; !ok {
		t.Fatal("a producer active an hour ago was dropped")
	}
}

func TestProducerWindow(t *testing.T) {
	st := &producerState{}
	h := func(seq, n int32) batch.Header {
		return batch.Header{ProducerID: 7, BaseSequence: seq, LastOffsetDelta: n - 1}
	}
	for i, seq := range []int32{0, 3, 6, 9, 12, 15} {
		if _, dup, err := st.check(h(seq, 3)); err != nil || dup {
			t.Fatalf("batch %d: dup %v err %v", i, dup, err)
		}
		st.record(h(seq, 3), int64(seq))
	}
	if base, dup, _ := st.check(h(12, 3)); !dup || base != 12 {
		t.Fatalf("retry inside the window: dup %v base %d", dup, base)
	}
	if _, _, err := st.check(h(0, 3)); err == nil {
		t.Fatal("a batch older than the 5-batch window was accepted")
	}
	if _, _, err := st.check(h(19, 1)); err == nil {
		t.Fatal("a sequence gap was accepted")
	}
	bumped := h(0, 1)
	bumped.ProducerEpoch = 1
	if _, _, err := st.check(bumped); err != nil {
		t.Fatalf("a new epoch starting at 0: %v", err)
	}
}
