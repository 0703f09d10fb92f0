package partlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-io/weir/internal/batch"
)

// crashCopy simulates kill -9: it copies the log directory as the disk
// would hold it without Close (no clean marker, active indexes unwritten),
// leaving the original log open.
func crashCopy(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func lastSegmentPath(t *testing.T, dir string) string {
	t.Helper()
	l := &Log{dir: dir}
	bases, err := l.listSegments()
	if err != nil || len(bases) == 0 {
		t.Fatal("no segments", err)
	}
	return filepath.Join(dir, segmentName(bases[len(bases)-1], logSuffix))
}

func TestRecoverTornTail(t *testing.T) {
	src := t.TempDir()
	l := openLog(t, src, testConfig())
	var ends []int64 // LEO after each append
	for i := range 30 {
		mustAppend(t, l, mkBatch(t, 2, 60, int64(i)))
		ends = append(ends, l.EndOffset())
	}
	if err := l.Sync(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	synced := l.EndOffset()
	last := mkBatch(t, 3, 60, 99)
	mustAppend(t, l, last)
	lastSize := int64(len(last))

	tests := []struct {
		name    string
		damage  func(path string, size int64) error
		wantLEO int64
	}{
		{"intact", func(string, int64) error { return nil }, synced + 3},
		{"garbage appended", func(p string, _ int64) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("this is not a record batch at all, really not"))
			return err
		}, synced + 3},
		{"zeros appended", func(p string, size int64) error { return os.Truncate(p, size+4096) }, synced + 3},
		{"truncated mid batch", func(p string, size int64) error { return os.Truncate(p, size-lastSize/2) }, synced},
		{"truncated mid header", func(p string, size int64) error { return os.Truncate(p, size-lastSize+20) }, synced},
		{"crc flipped in tail", func(p string, size int64) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{0xff}, size-5)
			return err
		}, synced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := crashCopy(t, src)
			p := lastSegmentPath(t, dir)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(p, st.Size()); err != nil {
				t.Fatal(err)
			}
			r := openLog(t, dir, testConfig())
			if r.EndOffset() != tt.wantLEO {
				t.Fatalf("LEO %d, want %d", r.EndOffset(), tt.wantLEO)
			}
			if r.EndOffset() < synced {
				t.Fatalf("lost synced data: LEO %d < %d", r.EndOffset(), synced)
			}
			hs := readAll(t, r, 0)
			if len(hs) == 0 || hs[len(hs)-1].NextOffset() != tt.wantLEO {
				t.Fatalf("read %d batches ending at %d", len(hs), hs[len(hs)-1].NextOffset())
			}
			// The log accepts appends after recovery, at the recovered end.
			if off := mustAppend(t, r, mkBatch(t, 1, 10, 0)); off != tt.wantLEO {
				t.Fatalf("append at %d", off)
			}
			readAll(t, r, 0)
		})
	}
	_ = ends
}

func TestIndexRebuild(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustAppend(t, l, mkBatch(t, 2, 60, int64(1000+i)))
	}
	want := readAll(t, l, 0)
	nsegs := len(l.segs)
	var wantIdx [][]indexEntry
	for _, s := range l.segs {
		wantIdx = append(wantIdx, s.index)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	bases, _ := (&Log{dir: dir}).listSegments()
	// Delete one index, corrupt another, truncate a time index.
	os.Remove(filepath.Join(dir, segmentName(bases[0], indexSuffix)))
	os.WriteFile(filepath.Join(dir, segmentName(bases[1], indexSuffix)), []byte{0, 0, 0, 9, 0, 0, 0, 0, 1}, 0o644)
	os.WriteFile(filepath.Join(dir, segmentName(bases[2], timeIndexSuffix)), []byte{1, 2, 3}, 0o644)
	os.Remove(filepath.Join(dir, segmentName(bases[len(bases)-1], indexSuffix)))

	l2 := openLog(t, dir, cfg)
	if len(l2.segs) != nsegs {
		t.Fatalf("%d segments, want %d", len(l2.segs), nsegs)
	}
	for i, s := range l2.segs {
		if len(s.index) != len(wantIdx[i]) {
			t.Fatalf("segment %d: %d index entries, want %d", i, len(s.index), len(wantIdx[i]))
		}
		for j := range s.index {
			if s.index[j] != wantIdx[i][j] {
				t.Fatalf("segment %d entry %d: %v want %v", i, j, s.index[j], wantIdx[i][j])
			}
		}
	}
	got := readAll(t, l2, 0)
	if len(got) != len(want) {
		t.Fatalf("%d batches, want %d", len(got), len(want))
	}
	// Rebuilt indexes were written back.
	if _, err := os.Stat(filepath.Join(dir, segmentName(bases[0], indexSuffix))); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCleansStaging(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustAppend(t, l, mkBatch(t, 2, 100, int64(i)))
	}
	want := readAll(t, l, 0)
	l.Close()
	// A leftover .cleaned (incomplete) goes; a .swap (complete) replaces
	// its segment. Here the "swap" is the original content, so reads must
	// be unchanged.
	bases, _ := (&Log{dir: dir}).listSegments()
	first := filepath.Join(dir, segmentName(bases[0], logSuffix))
	content, _ := os.ReadFile(first)
	os.WriteFile(first+cleanedSuffix, []byte("partial"), 0o644)
	os.WriteFile(first+swapSuffix, content, 0o644)
	os.WriteFile(first, []byte("stale original"), 0o644)

	l2 := openLog(t, dir, testConfig())
	if got := readAll(t, l2, 0); len(got) != len(want) {
		t.Fatalf("%d batches, want %d", len(got), len(want))
	}
	for _, p := range []string{first + cleanedSuffix, first + swapSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind", p)
		}
	}
}

func TestRecoverEmptyAndGarbageOnly(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, segmentName(0, logSuffix)), []byte("garbage garbage garbage garbage garbage garbage garbage garbage!"), 0o644)
	l := openLog(t, dir, testConfig())
	if l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("LEO %d size %d", l.EndOffset(), l.Size())
	}
	mustAppend(t, l, mkBatch(t, 1, 1, 0))
	if hs := readAll(t, l, 0); len(hs) != 1 {
		t.Fatal(len(hs))
	}
}

func TestBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	for i := range 40 {
		mustAppend(t, l, mkBatch(t, 3, 50, int64(i)))
	}
	var got []int64
	err := l.Batches(31, func(h batch.Header) error { got = append(got, h.BaseOffset); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 30 || got[0] != 30 || got[29] != 117 {
		t.Fatalf("%v", got)
	}
	stop := errors.New("stop")
	if err := l.Batches(0, func(batch.Header) error { return stop }); err != stop {
		t.Fatal(err)
	}
}
