package partlog

import (
	"errors"
	"testing"
	"time"
)

func TestRetentionByTime(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionTime = time.Hour
	l := openLog(t, t.TempDir(), cfg)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		ts := base.Add(time.Duration(i) * time.Minute).UnixMilli()
		mustAppend(t, l, mkBatch(t, 2, 100, ts))
	}
	nsegs := len(l.segs)
	if nsegs < 4 {
		t.Fatalf("only %d segments", nsegs)
	}
	// Nothing is older than an hour at minute 60.
	if n, err := l.EnforceRetention(base.Add(60 * time.Minute)); err != nil || n != 0 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	// Far in the future everything but the active segment goes.
	n, err := l.EnforceRetention(base.Add(48 * time.Hour))
	if err != nil || n != nsegs-1 {
		t.Fatalf("deleted %d of %d: %v", n, nsegs, err)
	}
	if l.StartOffset() != l.segs[0].base || len(l.segs) != 1 {
		t.Fatalf("start %d, %d segments", l.StartOffset(), len(l.segs))
	}
	if _, err := l.Read(0, 100, l.EndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	readAll(t, l, l.StartOffset())
}

func TestRetentionByTimePartial(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionTime = 30 * time.Minute
	l := openLog(t, t.TempDir(), cfg)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		mustAppend(t, l, mkBatch(t, 2, 100, base.Add(time.Duration(i)*time.Minute).UnixMilli()))
	}
	now := base.Add(60 * time.Minute)
	if _, err := l.EnforceRetention(now); err != nil {
		t.Fatal(err)
	}
	for i, s := range l.segs[:len(l.segs)-1] {
		if i == 0 && s.maxTS < now.Add(-30*time.Minute).UnixMilli() {
			t.Fatalf("expired segment %d kept", s.base)
		}
	}
	if l.StartOffset() == 0 {
		t.Fatal("nothing deleted")
	}
}

func TestRetentionByBytes(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionBytes = 10000
	l := openLog(t, t.TempDir(), cfg)
	for i := range 100 {
		mustAppend(t, l, mkBatch(t, 2, 100, int64(i)))
	}
	before := l.Size()
	n, err := l.EnforceRetention(time.Now())
	if err != nil || n == 0 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if l.Size() < cfg.RetentionBytes || l.Size() >= before {
		t.Fatalf("size %d (was %d), retention %d", l.Size(), before, cfg.RetentionBytes)
	}
	// Deleting one more segment would go below retention.bytes.
	if l.Size()-l.segs[0].size >= cfg.RetentionBytes {
		t.Fatalf("too little deleted: size %d first segment %d", l.Size(), l.segs[0].size)
	}
	// Compact-only logs are not subject to retention.
	cfg.Cleanup = Compact
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(time.Now()); n != 0 {
		t.Fatalf("compact policy deleted %d", n)
	}
}

func TestDeleteBefore(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustAppend(t, l, mkBatch(t, 2, 100, int64(i)))
	}
	leo := l.EndOffset()
	target := int64(51) // mid batch, in a later segment
	if err := l.DeleteBefore(target); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != target {
		t.Fatalf("start %d", l.StartOffset())
	}
	if l.segs[0].base > target || (len(l.segs) > 1 && l.segs[1].base <= target) {
		t.Fatalf("wrong segments kept: first base %d", l.segs[0].base)
	}
	if _, err := l.Read(target-1, 100, leo); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	data, err := l.Read(target, 1, leo)
	if err != nil || len(data) == 0 {
		t.Fatalf("read at start: %v", err)
	}
	if err := l.DeleteBefore(10); err != nil || l.StartOffset() != target {
		t.Fatal("start moved backwards")
	}
	if err := l.DeleteBefore(leo + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatal(err)
	}
	l.Close()

	// The start offset survives a restart.
	l2 := openLog(t, dir, testConfig())
	if l2.StartOffset() != target || l2.EndOffset() != leo {
		t.Fatalf("reopened start %d end %d", l2.StartOffset(), l2.EndOffset())
	}
	// Deleting everything rolls so that the last data segment goes too.
	if err := l2.DeleteBefore(leo); err != nil {
		t.Fatal(err)
	}
	if len(l2.segs) != 1 || l2.segs[0].base != leo || l2.Size() != 0 {
		t.Fatalf("%d segments, size %d", len(l2.segs), l2.Size())
	}
	if off := mustAppend(t, l2, mkBatch(t, 1, 1, 0)); off != leo {
		t.Fatal(off)
	}
}
