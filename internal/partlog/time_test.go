package partlog

import (
	"testing"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

func TestOffsetForTime(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	// Batch i holds 3 records with timestamps 1000+10i, +1, +2.
	for i := range 60 {
		mustAppend(t, l, mkBatch(t, 3, 50, int64(1000+10*i)))
	}
	tests := []struct {
		ts       int64
		wantOff  int64
		wantTS   int64
		wantOK   bool
		describe string
	}{
		{0, 0, 1000, true, "before everything"},
		{1000, 0, 1000, true, "exact first"},
		{1001, 1, 1001, true, "record precision"},
		{1003, 3, 1010, true, "between batches"},
		{1302, 92, 1302, true, "mid log"},
		{1592, 179, 1592, true, "last record"},
		{1593, -1, -1, false, "after everything"},
	}
	for _, tt := range tests {
		off, ts, ok := l.OffsetForTime(tt.ts)
		if off != tt.wantOff || ts != tt.wantTS || ok != tt.wantOK {
			t.Errorf("%s: OffsetForTime(%d) = %d, %d, %v; want %d, %d, %v", tt.describe, tt.ts, off, ts, ok, tt.wantOff, tt.wantTS, tt.wantOK)
		}
	}
	// After DeleteRecords the answer never precedes the start offset.
	if err := l.DeleteBefore(95); err != nil {
		t.Fatal(err)
	}
	if off, _, ok := l.OffsetForTime(0); !ok || off != 95 {
		t.Fatalf("after delete: %d %v", off, ok)
	}
}

func TestOffsetForTimeOutOfOrder(t *testing.T) {
	// Timestamps are client-set and may go backwards; the answer is the
	// first record (in offset order) at or after the target.
	l := openLog(t, t.TempDir(), testConfig())
	for _, ts := range []int64{500, 100, 900, 200, 950} {
		for range 10 {
			mustAppend(t, l, mkBatch(t, 1, 100, ts))
		}
	}
	if off, ts, ok := l.OffsetForTime(600); !ok || off != 20 || ts != 900 {
		t.Fatalf("got %d %d %v", off, ts, ok)
	}
	if off, _, ok := l.OffsetForTime(150); !ok || off != 0 {
		t.Fatalf("got %d %v", off, ok)
	}
	if off, _, ok := l.OffsetForTime(920); !ok || off != 40 {
		t.Fatalf("got %d %v", off, ok)
	}
}

func TestOffsetForTimeLogAppendTime(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	for i := range 5 {
		b := mkBatch(t, 4, 10, 1)
		batch.SetLogAppendTime(b, int64(100*(i+1)))
		mustAppend(t, l, b)
	}
	if off, ts, ok := l.OffsetForTime(250); !ok || off != 8 || ts != 300 {
		t.Fatalf("got %d %d %v", off, ts, ok)
	}
}

func TestRollByAge(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 30
	cfg.SegmentAge = time.Minute
	l := openLog(t, t.TempDir(), cfg)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		mustAppend(t, l, mkBatch(t, 1, 10, base.Add(time.Duration(i)*20*time.Second).UnixMilli()))
	}
	// Rolls when a batch is more than a minute newer than the segment's
	// first: at 80s and 160s.
	if len(l.segs) != 3 {
		t.Fatalf("%d segments", len(l.segs))
	}
	if l.segs[1].base != 4 || l.segs[2].base != 8 {
		t.Fatalf("bases %d %d", l.segs[1].base, l.segs[2].base)
	}
}

func TestRollBySize(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	l := openLog(t, t.TempDir(), cfg)
	b := mkBatch(t, 1, 300, 0) // ~375 bytes: two per segment
	for range 6 {
		mustAppend(t, l, mkBatch(t, 1, 300, 0))
	}
	if len(l.segs) != 3 {
		t.Fatalf("%d segments", len(l.segs))
	}
	for _, s := range l.segs {
		if s.size != 2*int64(len(b)) {
			t.Fatalf("segment %d has %d bytes", s.base, s.size)
		}
	}
	// A batch larger than a segment still goes in, alone.
	mustAppend(t, l, mkBatch(t, 1, 2000, 0))
	mustAppend(t, l, mkBatch(t, 1, 10, 0))
	if len(l.segs) != 5 {
		t.Fatalf("%d segments", len(l.segs))
	}
}
