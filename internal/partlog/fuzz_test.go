package partlog

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-io/weir/internal/batch"
)

func quietLogs(t *testing.T) {
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
}

// checkLog asserts the invariants any opened log must satisfy: every
// batch from the start reads back valid and in offset order up to the log
// end, appends land at the end, and a reopen agrees.
func checkLog(t *testing.T, l *Log) {
	t.Helper()
	next := l.StartOffset()
	err := l.Batches(0, func(h batch.Header) error {
		if h.BaseOffset < next {
			t.Fatalf("batch %d before %d", h.BaseOffset, next)
		}
		next = h.NextOffset()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next > l.EndOffset() {
		t.Fatalf("batches end at %d beyond LEO %d", next, l.EndOffset())
	}
	readAll(t, l, l.StartOffset())
	leo := l.EndOffset()
	if off, err := l.Append(mkBatch(t, 1, 5, 0)); err != nil || off != leo {
		t.Fatalf("append at %d (LEO %d): %v", off, leo, err)
	}
}

func FuzzRecover(f *testing.F) {
	var valid []byte
	for i := range 3 {
		valid = append(valid, mkBatch(f, 2, 10, int64(i))...)
	}
	f.Add(uint8(0), valid)
	f.Add(uint8(2), valid[:len(valid)-7])
	f.Add(uint8(1), []byte("garbage"))
	f.Add(uint8(3), make([]byte, 100))
	f.Fuzz(func(t *testing.T, prefix uint8, tail []byte) {
		quietLogs(t)
		dir := t.TempDir()
		// A valid prefix of batches with correct offsets, then fuzz bytes.
		var seg []byte
		next := int64(0)
		for i := 0; i < int(prefix%4); i++ {
			b := mkBatch(t, 2, 10, int64(i))
			batch.SetBaseOffset(b, next)
			next += 2
			seg = append(seg, b...)
		}
		seg = append(seg, tail...)
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, logSuffix)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		if l.EndOffset() < next {
			t.Fatalf("valid prefix lost: LEO %d < %d", l.EndOffset(), next)
		}
		checkLog(t, l)
		leo := l.EndOffset()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2, err := Open(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		if l2.EndOffset() != leo {
			t.Fatalf("reopen: LEO %d, want %d", l2.EndOffset(), leo)
		}
	})
}

// FuzzIndex feeds arbitrary bytes as the index files of a sealed and of
// the active segment (after a clean shutdown, so they are trusted if they
// look valid).
func FuzzIndex(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 0, 0, 3, 0, 0, 1, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3})
	f.Add(bytes.Repeat([]byte{0xff}, 16), bytes.Repeat([]byte{0x7f}, 24))
	f.Fuzz(func(t *testing.T, idx, tidx []byte) {
		quietLogs(t)
		dir := t.TempDir()
		l, err := Open(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			if _, err := l.Append(mkBatch(t, 2, 60, int64(i*10))); err != nil {
				t.Fatal(err)
			}
		}
		leo := l.EndOffset()
		l.Close()
		bases, _ := (&Log{dir: dir}).listSegments()
		for _, base := range []int64{bases[0], bases[len(bases)-1]} {
			os.WriteFile(filepath.Join(dir, segmentName(base, indexSuffix)), idx, 0o644)
			os.WriteFile(filepath.Join(dir, segmentName(base, timeIndexSuffix)), tidx, 0o644)
		}
		l2, err := Open(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		if l2.EndOffset() != leo {
			t.Fatalf("LEO %d, want %d", l2.EndOffset(), leo)
		}
		for off := int64(0); off < leo; off += 3 {
			data, err := l2.Read(off, 1, leo)
			if err != nil {
				continue // a plausible but wrong index may mislead; it must not crash
			}
			if _, err := batch.Validate(data); err != nil {
				t.Fatalf("read at %d returned an invalid batch: %v", off, err)
			}
		}
		l2.OffsetForTime(55)
		checkLog(t, l2)
	})
}
