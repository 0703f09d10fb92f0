package partlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/weir-io/weir/internal/batch"
)

func TestAppendRead(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	var sizes []int
	for i := range 50 {
		b := mkBatch(t, 1+i%3, 50, int64(1000+i*10))
		sizes = append(sizes, len(b))
		want := l.EndOffset()
		if off := mustAppend(t, l, b); off != want {
			t.Fatalf("append %d at %d, want %d", i, off, want)
		}
	}
	hs := readAll(t, l, 0)
	if len(hs) != 50 {
		t.Fatalf("read %d batches", len(hs))
	}
	next := int64(0)
	for i, h := range hs {
		if h.BaseOffset != next || h.Size() != sizes[i] {
			t.Fatalf("batch %d: base %d size %d, want %d %d", i, h.BaseOffset, h.Size(), next, sizes[i])
		}
		next = h.NextOffset()
	}
	if l.EndOffset() != next {
		t.Fatalf("LEO %d, want %d", l.EndOffset(), next)
	}
	// Every offset reads from the batch containing it.
	for off := int64(0); off < next; off++ {
		data, err := l.Read(off, 1, next)
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.Validate(data) // maxBytes 1: exactly one whole batch
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if off < h.BaseOffset || off > h.LastOffset() {
			t.Fatalf("offset %d read batch [%d, %d]", off, h.BaseOffset, h.LastOffset())
		}
	}
	if len(l.segs) < 3 {
		t.Fatalf("expected rolls, have %d segments", len(l.segs))
	}
}

func TestReadLimits(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	var offs []int64
	b0 := mkBatch(t, 2, 100, 1)
	size := len(b0)
	for range 10 {
		offs = append(offs, mustAppend(t, l, mkBatch(t, 2, 100, 1)))
	}
	leo := l.EndOffset()
	tests := []struct {
		name     string
		offset   int64
		maxBytes int
		limit    int64
		batches  int
		err      error
	}{
		{"one batch fits", 0, size, leo, 1, nil},
		{"first batch larger than max", 0, 10, leo, 1, nil},
		{"two and a half", 0, 2*size + size/2, leo, 2, nil},
		{"limit stops", 0, 1 << 20, offs[3], 3, nil},
		{"limit inside batch", 0, 1 << 20, offs[3] + 1, 4, nil},
		{"offset at limit", offs[3], 1 << 20, offs[3], 0, nil},
		{"offset at end", leo, 1 << 20, leo, 0, nil},
		{"mid batch", offs[2] + 1, size, leo, 1, nil},
		{"past end", leo + 1, 100, leo + 5, 0, ErrOffsetOutOfRange},
		{"negative", -1, 100, leo, 0, ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := l.Read(tt.offset, tt.maxBytes, tt.limit)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			parts, err := batch.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != tt.batches {
				t.Fatalf("%d batches, want %d", len(parts), tt.batches)
			}
			if len(parts) > 0 {
				h, _ := batch.ParseHeader(parts[0])
				if tt.offset < h.BaseOffset || tt.offset > h.LastOffset() {
					t.Fatalf("first batch [%d, %d] lacks %d", h.BaseOffset, h.LastOffset(), tt.offset)
				}
			}
		})
	}
}

func TestReopenClean(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		mustAppend(t, l, mkBatch(t, 3, 40, int64(i)))
	}
	want := readAll(t, l, 0)
	leo, size := l.EndOffset(), l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(mkBatch(t, 1, 1, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarkerFile)); err != nil {
		t.Fatal("no clean-shutdown marker")
	}
	l2 := openLog(t, dir, testConfig())
	if l2.EndOffset() != leo || l2.Size() != size || l2.DurableOffset() != leo {
		t.Fatalf("reopened LEO %d size %d durable %d, want %d %d", l2.EndOffset(), l2.Size(), l2.DurableOffset(), leo, size)
	}
	got := readAll(t, l2, 0)
	if len(got) != len(want) {
		t.Fatalf("%d batches after reopen, want %d", len(got), len(want))
	}
	if off := mustAppend(t, l2, mkBatch(t, 1, 1, 0)); off != leo {
		t.Fatalf("append after reopen at %d, want %d", off, leo)
	}
}

func TestConcurrentAppendReadSync(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 64 << 10
	l := openLog(t, t.TempDir(), cfg)
	const writers, perWriter = 4, 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				off, err := l.Append(mkBatch(t, 5, 100, int64(i)))
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Sync(off + 5); err != nil {
					t.Error(err)
					return
				}
				if l.DurableOffset() < off+5 {
					t.Errorf("durable %d below synced %d", l.DurableOffset(), off+5)
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for r := 0; r < 2; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			off := int64(0)
			for {
				select {
				case <-done:
					return
				default:
				}
				hw := l.DurableOffset()
				data, err := l.Read(off, 8<<10, hw)
				if err != nil {
					t.Error(err)
					return
				}
				parts, err := batch.Split(data)
				if err != nil {
					t.Error(err)
					return
				}
				for _, p := range parts {
					h, err := batch.Validate(p)
					if err != nil {
						t.Error(err)
						return
					}
					if h.BaseOffset >= hw || h.BaseOffset != off {
						t.Errorf("read batch at %d, expected %d below %d", h.BaseOffset, off, hw)
						return
					}
					off = h.NextOffset()
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	if got := l.EndOffset(); got != writers*perWriter*5 {
		t.Fatalf("LEO %d", got)
	}
	if hs := readAll(t, l, 0); len(hs) != writers*perWriter {
		t.Fatalf("%d batches", len(hs))
	}
}

func TestSyncAndRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l.DurableOffset() != 0 {
		t.Fatal(l.DurableOffset())
	}
	for range 30 { // crosses segment rolls
		mustAppend(t, l, mkBatch(t, 2, 100, 1))
	}
	if l.DurableOffset() != 0 {
		t.Fatalf("durable %d before Sync", l.DurableOffset())
	}
	if err := l.Sync(10); err != nil {
		t.Fatal(err)
	}
	// One fsync covers everything written before it.
	if l.DurableOffset() != l.EndOffset() {
		t.Fatalf("durable %d, LEO %d", l.DurableOffset(), l.EndOffset())
	}
	if err := l.Sync(l.EndOffset() + 100); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("directory left behind")
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// TestReadMatchesReference checks Read against a plain walk of the
// appended batches for every offset, limit and a range of maxBytes, with
// batches small enough that the read window holds the answer and large
// enough that it does not, near the segment's end (tailWindow) and far
// from it.
func TestReadMatchesReference(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20 // one segment: Read stays within a segment
	l := openLog(t, t.TempDir(), cfg)
	var stored [][]byte
	for i := range 24 {
		n, size := 1+i%3, 20
		if i%7 == 3 {
			size = 100 << 10 // a few batches past the window
		}
		b := mkBatch(t, n, size, int64(i))
		mustAppend(t, l, b) // stamps the base offset into b
		stored = append(stored, b)
	}
	leo := l.EndOffset()
	want := func(offset int64, maxBytes int, limit int64) []byte {
		var out []byte
		if offset >= limit {
			return nil // documented: nothing at or past the limit
		}
		for _, b := range stored {
			h, _ := batch.ParseHeader(b)
			if h.LastOffset() < offset {
				continue
			}
			if h.BaseOffset >= limit || len(out) > 0 && len(out)+len(b) > maxBytes {
				break
			}
			out = append(out, b...)
		}
		return out
	}
	for offset := int64(0); offset <= leo; offset++ {
		for limit := offset; limit <= leo; limit += 1 + (limit-offset)/3 {
			for _, maxBytes := range []int{0, 1, 200, 1000, 40 << 10, 100 << 10, 1 << 20} {
				got, err := l.Read(offset, maxBytes, limit)
				if err != nil {
					t.Fatalf("Read(%d, %d, %d): %v", offset, maxBytes, limit, err)
				}
				if w := want(offset, maxBytes, limit); !bytes.Equal(got, w) {
					t.Fatalf("Read(%d, %d, %d) = %d bytes, want %d", offset, maxBytes, limit, len(got), len(w))
				}
			}
		}
	}
}
