package partlog

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

// File suffixes, as Kafka names them.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanedSuffix   = ".cleaned" // compaction output being written
	swapSuffix      = ".swap"    // complete compaction output awaiting its rename
	tmpSuffix       = ".tmp"
)

// segment is one <base>.log file with its sparse indexes, which are kept in
// memory and written to disk when the segment is sealed.
//
// Fields below f are owned by the Log: the writer (holding Log.wmu) changes
// them only while also holding Log.mu for writing, so readers holding
// Log.mu for reading see a consistent snapshot.
type segment struct {
	base int64
	dir  string
	f    *os.File
	// refs counts the Log's own reference plus readers in flight; the file
	// closes when it drops to zero, so a reader never sees a closed file
	// even if retention deletes the segment under it.
	refs atomic.Int32

	size     int64 // bytes of whole batches; the file may hold a torn tail beyond
	next     int64 // offset after the last batch (base when empty)
	index    []indexEntry
	tindex   []timeEntry
	maxTS    int64 // largest batch max timestamp, -1 when none
	maxTSOff int64 // last offset of the batch that set maxTS
	// aborted lists the transactions whose ABORT marker is in this
	// segment; openAtEnd, for a sealed segment, the transactions still
	// open at its end (txn.go).
	aborted   []AbortedTxn
	openAtEnd []openTxn

	// Writer-only state.
	bytesSinceIndex int
	firstTS         int64     // max timestamp of the first batch, -1 when none; drives segment.ms
	created         time.Time // fallback for segment.ms when batches have no timestamps
}

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

func newSegment(dir string, base int64, f *os.File) *segment {
	s := &segment{base: base, dir: dir, f: f, next: base, maxTS: -1, maxTSOff: base, firstTS: -1, created: time.Now()}
	s.refs.Store(1)
	return s
}

// createSegment creates an empty segment file, replacing any leftover.
func createSegment(dir string, base int64) (*segment, error) {
	f, err := os.OpenFile(filepath.Join(dir, segmentName(base, logSuffix)), os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	return newSegment(dir, base, f), nil
}

func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.f.Close()
	}
}

// rel converts an absolute offset to one relative to the segment base.
func (s *segment) rel(off int64) int32 { return int32(off - s.base) }

// fits reports whether a batch ending at lastOffset can still be indexed
// in this segment (relative offsets are int32).
func (s *segment) fits(lastOffset int64) bool { return lastOffset-s.base <= math.MaxInt32 }

// track records a batch of size bytes written at pos: sparse index entries
// every interval bytes, and the running max timestamp. Like Kafka, an
// entry points at the batch that crosses the interval, keyed by its last
// offset.
func (s *segment) track(h batch.Header, pos int64, size int, interval int) {
	if h.MaxTimestamp > s.maxTS {
		s.maxTS, s.maxTSOff = h.MaxTimestamp, h.LastOffset()
	}
	if s.bytesSinceIndex > interval {
		s.index = append(s.index, indexEntry{rel: s.rel(h.LastOffset()), pos: int32(pos)})
		s.appendTimeEntry()
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += size
	if pos == 0 {
		s.firstTS = h.MaxTimestamp
	}
	s.size = pos + int64(size)
	s.next = h.NextOffset()
}

// appendTimeEntry adds the running max timestamp to the time index if it
// grew; Kafka's time index holds strictly increasing timestamps.
func (s *segment) appendTimeEntry() {
	if s.maxTS < 0 {
		return
	}
	if n := len(s.tindex); n > 0 && s.maxTS <= s.tindex[n-1].ts {
		return
	}
	s.tindex = append(s.tindex, timeEntry{ts: s.maxTS, rel: s.rel(s.maxTSOff)})
}

// seal writes the index files of a segment that will receive no more
// appends. Like Kafka, the time index gets a final entry so that the last
// entry's timestamp is the segment's max timestamp when loaded again.
func (s *segment) seal() error {
	s.appendTimeEntry()
	if err := writeFileSync(s.path(indexSuffix), encodeIndex(s.index)); err != nil {
		return fmt.Errorf("partlog: write index: %w", err)
	}
	if err := writeFileSync(s.path(timeIndexSuffix), encodeTimeIndex(s.tindex)); err != nil {
		return fmt.Errorf("partlog: write time index: %w", err)
	}
	return nil
}

// removeFiles unlinks the segment's files. Open descriptors stay usable
// until the last reader releases the segment.
func (s *segment) removeFiles() error {
	var first error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := os.Remove(s.path(suf)); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}

// loadIndexes reads and checks the index files of a sealed segment.
func (s *segment) loadIndexes() error {
	ib, err := os.ReadFile(s.path(indexSuffix))
	if err != nil {
		return err
	}
	tb, err := os.ReadFile(s.path(timeIndexSuffix))
	if err != nil {
		return err
	}
	idx, err := decodeIndex(ib, s.size)
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(tb)
	if err != nil {
		return err
	}
	if n := len(tidx); n > 0 {
		if s.size == 0 {
			return fmt.Errorf("%w: time index for an empty segment", errBadIndex)
		}
		s.maxTS, s.maxTSOff = tidx[n-1].ts, s.base+int64(tidx[n-1].rel)
	}
	if n := len(idx); n > 0 {
		// Spot-check the last entry against the log: a stale or foreign
		// index would send reads to the wrong place.
		r := newSpanReader(s.f, s.size, batch.HeaderSize)
		h, err := r.header(int64(idx[n-1].pos))
		if err != nil || h.LastOffset() != s.base+int64(idx[n-1].rel) {
			return fmt.Errorf("%w: last entry does not match the log", errBadIndex)
		}
	}
	s.index, s.tindex = idx, tidx
	return nil
}
