package partlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

var (
	// ErrOffsetOutOfRange reports an offset below the log start or above
	// the log end offset.
	ErrOffsetOutOfRange = errors.New("partlog: offset out of range")
	// ErrClosed reports use of a closed log.
	ErrClosed = errors.New("partlog: log closed")
)

// Log is one partition's log: a directory of segments. Append, Read, Sync
// and the maintenance operations may be called concurrently.
//
// Locking: wmu serializes everything that changes the log (appends, rolls,
// deletion, compaction's swap, Close). mu guards the view readers use; the
// writer takes it exclusively only for the instant it publishes a change,
// never across disk I/O, so reads do not wait for writes or fsyncs. The
// segs slice is copied on change, never modified in place.
type Log struct {
	dir    string
	logger *slog.Logger

	wmu     sync.Mutex
	cleanMu sync.Mutex // one compaction at a time

	mu     sync.RWMutex
	cfg    Config
	segs   []*segment // ascending base offsets; the last is active
	start  int64      // log start offset
	leo    int64      // log end offset
	size   int64      // bytes in all segments
	closed bool
	// txns is each transactional producer's latest transaction on this
	// partition (txn.go).
	txns map[int64]txnSpan

	// Group commit: syncMu admits one fsync at a time; callers queued
	// behind it usually find durable already past their offset.
	syncMu   sync.Mutex
	syncErr  error // sticky: after a failed fsync the page cache state is unknown
	durable  atomic.Int64
	dirDirty atomic.Bool // a segment file was created since the directory was synced
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// active returns the active segment. Callers hold wmu or mu.
func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// StartOffset returns the log start offset: the first offset readable.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// EndOffset returns the log end offset (LEO): the offset the next
// appended record gets.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo
}

// Size returns the bytes held in segment files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// DurableOffset returns the offset below which every record is fsynced.
func (l *Log) DurableOffset() int64 { return l.durable.Load() }

// Config returns the log's configuration.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig replaces the configuration; it applies to later appends and
// maintenance calls.
func (l *Log) SetConfig(cfg Config) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	l.cfg = cfg.normalized()
	l.mu.Unlock()
}

// Append writes one v2 batch at the end of the log, stamping its base
// offset in place, and returns that offset. The batch must already be
// validated (batch.Validate); only its header is read here. Append does not
// fsync; see Sync.
func (l *Log) Append(b []byte) (int64, error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return -1, err
	}
	if h.Size() != len(b) {
		return -1, fmt.Errorf("partlog: append: %w: batch of %d bytes in a buffer of %d", batch.ErrCorrupt, h.Size(), len(b))
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return -1, ErrClosed
	}
	h.BaseOffset = l.leo
	seg := l.active()
	if l.shouldRoll(seg, h, len(b)) {
		if seg, err = l.roll(); err != nil {
			return -1, err
		}
	}
	batch.SetBaseOffset(b, h.BaseOffset)
	pos := seg.size
	// A failed or short write leaves bytes past seg.size, which the next
	// append overwrites and recovery truncates; readers never look there.
	if _, err := seg.f.WriteAt(b, pos); err != nil {
		return -1, fmt.Errorf("partlog: append: %w", err)
	}
	l.mu.Lock()
	seg.track(h, pos, len(b), l.cfg.IndexIntervalBytes)
	l.trackTxn(seg, h, b)
	l.leo = h.NextOffset()
	l.size += int64(len(b))
	l.mu.Unlock()
	return h.BaseOffset, nil
}

// shouldRoll reports whether the batch h of n bytes must go to a new
// segment: size, age (Kafka's rule: the batch's timestamp against the
// segment's first batch, else wall time since creation), or offsets that no
// longer fit the int32 relative offsets of the index.
func (l *Log) shouldRoll(s *segment, h batch.Header, n int) bool {
	if s.size == 0 {
		return false
	}
	if s.size+int64(n) > l.cfg.SegmentBytes || !s.fits(h.LastOffset()) {
		return true
	}
	if s.firstTS >= 0 && h.MaxTimestamp >= 0 {
		return h.MaxTimestamp-s.firstTS > l.cfg.SegmentAge.Milliseconds()
	}
	return time.Since(s.created) > l.cfg.SegmentAge
}

// roll seals the active segment and starts a new one at the log end. The
// old segment is fsynced first, so after a crash only the last segment can
// have a torn tail and recovery need only scan that one. Caller holds wmu.
func (l *Log) roll() (*segment, error) {
	old := l.active()
	if old.size == 0 {
		return old, nil
	}
	if err := fdatasync(old.f); err != nil {
		return nil, fmt.Errorf("partlog: roll: %w", err)
	}
	l.mu.Lock()
	old.appendTimeEntry()
	l.sealTxns(old)
	l.mu.Unlock()
	if err := old.seal(); err != nil {
		return nil, err
	}
	if err := old.writeTxnIndex(); err != nil {
		return nil, err
	}
	seg, err := createSegment(l.dir, l.leo)
	if err != nil {
		return nil, fmt.Errorf("partlog: roll: %w", err)
	}
	l.dirDirty.Store(true) // before publishing: Sync must see it with the segment
	l.mu.Lock()
	l.segs = append(slices.Clip(l.segs), seg)
	l.mu.Unlock()
	return seg, nil
}

// Sync makes every record below upTo durable. Concurrent callers coalesce:
// while one fsyncs, the others wait, and most then find themselves covered
// without another fsync. upTo beyond the log end syncs everything written.
func (l *Log) Sync(upTo int64) error {
	if l.durable.Load() >= upTo {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.durable.Load() >= upTo {
		return nil
	}
	if l.syncErr != nil {
		return l.syncErr
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	// Segments before the active one were fsynced when rolled.
	seg, leo := l.active(), l.leo
	seg.acquire()
	l.mu.RUnlock()
	defer seg.release()

	if l.dirDirty.Swap(false) {
		if err := syncDir(l.dir); err != nil {
			l.dirDirty.Store(true)
			return fmt.Errorf("partlog: sync: %w", err)
		}
	}
	if err := fdatasync(seg.f); err != nil {
		l.syncErr = fmt.Errorf("partlog: sync: %w", err)
		return l.syncErr
	}
	if leo > l.durable.Load() {
		l.durable.Store(leo)
	}
	return nil
}

// syncDir fsyncs a directory so that file creations and renames in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// segmentFor returns the index of the segment that would hold offset.
// Caller holds mu.
func (l *Log) segmentFor(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}

// segmentAfter returns the index of the first segment with a base above
// base, or -1. Caller holds mu.
func (l *Log) segmentAfter(base int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > base })
	if i == len(l.segs) {
		return -1
	}
	return i
}

// Read returns whole stored batches, starting with the one that contains
// offset (or the first after it, where compaction left a gap) and stopping
// before any batch whose base offset is >= limit. The total stays within
// maxBytes, except that the first batch is returned whole however large
// (KIP-74), so a consumer always makes progress. It reads from one segment
// only, as Kafka does. offset == limit (or the log end) returns nothing.
func (l *Log) Read(offset int64, maxBytes int, limit int64) ([]byte, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	if start, leo := l.start, l.leo; offset < start || offset > leo {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, leo)
	}
	limit = min(limit, l.leo)
	if offset >= limit {
		l.mu.RUnlock()
		return nil, nil
	}
	i := l.segmentFor(offset)
	for {
		seg := l.segs[i]
		pos, end := lookupPos(seg.index, offset-seg.base), seg.size
		seg.acquire()
		interval := l.cfg.IndexIntervalBytes
		l.mu.RUnlock()

		data, found, err := seg.read(pos, end, offset, maxBytes, limit, interval)
		seg.release()
		if err != nil || found {
			return data, err
		}
		// offset lies past this segment's last batch (a compaction gap):
		// continue with the next segment.
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return nil, ErrClosed
		}
		if i = l.segmentAfter(seg.base); i < 0 {
			l.mu.RUnlock()
			return nil, nil
		}
	}
}

// read implements Read within one segment, scanning from pos (from the
// index) to end. found is false when no batch in the segment reaches
// offset.
//
// Two steps keep it to one or two preads and no per-batch syscalls: a
// window from the index position finds the first batch. For a consumer at
// the tail (the index position within tailWindow of the segment's end)
// the window holds everything to return, which is then returned from it
// without another allocation or copy (windowSpan); otherwise one exact
// buffer receives the span to return, reusing what the window holds, and
// headers are walked in memory.
func (s *segment) read(pos, end, offset int64, maxBytes int, limit int64, interval int) ([]byte, bool, error) {
	maxBytes = max(maxBytes, 0)
	chunk := min(maxBytes, 64<<10) + interval + batch.HeaderSize
	if left := end - pos; left <= tailWindow {
		// Near the end, one window can hold all there is to return.
		chunk = max(chunk, int(min(left, int64(maxBytes)+int64(interval)+batch.HeaderSize)))
	}
	r := newSpanReader(s.f, end, chunk)
	for {
		if pos >= end {
			return nil, false, nil
		}
		h, err := r.header(pos)
		if err != nil {
			return nil, false, err
		}
		if h.LastOffset() >= offset {
			break
		}
		pos += int64(h.Size())
	}
	if data, ok := r.windowSpan(pos, maxBytes, limit); ok {
		return data, true, nil
	}
	buf, err := r.span(pos, int(min(end-pos, int64(maxBytes)+batch.HeaderSize)))
	if err != nil {
		return nil, false, err
	}
	p := 0
	for p+batch.HeaderSize <= len(buf) {
		h, err := batch.ParseHeader(buf[p:])
		if err != nil {
			return nil, false, fmt.Errorf("partlog: %s at position %d: %w", s.f.Name(), pos+int64(p), err)
		}
		n := h.Size()
		if h.BaseOffset >= limit || (p > 0 && p+n > maxBytes) {
			break
		}
		if p+n > len(buf) {
			if p > 0 || pos+int64(n) > end {
				return nil, false, fmt.Errorf("partlog: %s at position %d: %w: batch of %d bytes past the end", s.f.Name(), pos+int64(p), batch.ErrCorrupt, n)
			}
			// KIP-74: a first batch larger than maxBytes is returned whole.
			if buf, err = r.span(pos, n); err != nil {
				return nil, false, err
			}
		}
		p += n
	}
	if p == 0 {
		return nil, true, nil
	}
	return buf[:p:p], true, nil
}

// tailWindow is how close to a segment's end a read must start for its
// first window to reach the end. Consumers keeping up with producers at
// hundreds of MB/s read tens to a few hundred KB per partition per fetch;
// the window holds that, and what lies beyond the high watermark, in one
// pread and one buffer. Reads further back (catching up) keep the small
// first window.
const tailWindow = 256 << 10

// Batches calls fn with the header of every batch whose last offset is at
// or after from, in order, up to the log end at the time of the call. It is
// meant for rebuilding producer state at startup. fn runs without locks
// held.
func (l *Log) Batches(from int64, fn func(h batch.Header) error) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	leo := l.leo
	i := l.segmentFor(from)
	for {
		seg := l.segs[i]
		pos, end := lookupPos(seg.index, from-seg.base), seg.size
		seg.acquire()
		l.mu.RUnlock()

		err := seg.walk(pos, end, 64<<10, func(h batch.Header, _ int64) (bool, error) {
			if h.BaseOffset >= leo {
				return false, nil
			}
			if h.LastOffset() < from {
				return true, nil
			}
			return true, fn(h)
		})
		seg.release()
		if err != nil {
			return err
		}
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return ErrClosed
		}
		if i = l.segmentAfter(seg.base); i < 0 {
			l.mu.RUnlock()
			return nil
		}
	}
}

// walk calls fn for each batch header from pos to end until fn returns
// false or an error.
func (s *segment) walk(pos, end int64, chunk int, fn func(h batch.Header, pos int64) (bool, error)) error {
	r := newSpanReader(s.f, end, chunk)
	for pos < end {
		h, err := r.header(pos)
		if err != nil {
			return err
		}
		more, err := fn(h, pos)
		if err != nil || !more {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

// OffsetForTime returns the offset and timestamp of the first record with
// a timestamp >= ts at or after the log start (Kafka's ListOffsets by
// timestamp). The time index finds the first candidate batch (the first
// whose max timestamp is >= ts); its records are then decoded for
// record-level precision. ok is false when no record is that recent.
func (l *Log) OffsetForTime(ts int64) (offset int64, timestamp int64, ok bool) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return -1, -1, false
	}
	start, leo := l.start, l.leo
	for i := 0; i >= 0 && i < len(l.segs); {
		seg := l.segs[i]
		if seg.maxTS < ts {
			i = l.segmentAfter(seg.base)
			continue
		}
		from := int64(0)
		if rel := lookupTime(seg.tindex, ts); rel >= 0 {
			from = lookupPos(seg.index, rel)
		}
		end := seg.size
		seg.acquire()
		l.mu.RUnlock()

		offset, timestamp, ok = seg.findTime(from, end, ts, start, leo)
		seg.release()
		if ok {
			return offset, timestamp, true
		}
		l.mu.RLock()
		if l.closed {
			break
		}
		i = l.segmentAfter(seg.base)
	}
	l.mu.RUnlock()
	return -1, -1, false
}

// findTime scans one segment for the first record at or after start with
// a timestamp >= ts.
func (s *segment) findTime(pos, end, ts, start, leo int64) (offset, timestamp int64, ok bool) {
	err := s.walk(pos, end, 64<<10, func(h batch.Header, p int64) (bool, error) {
		if h.BaseOffset >= leo {
			return false, nil
		}
		if h.MaxTimestamp < ts || h.LastOffset() < start {
			return true, nil
		}
		offset, timestamp, ok = s.firstRecordAt(h, p, ts, start)
		return !ok, nil
	})
	if err != nil {
		return -1, -1, false
	}
	return offset, timestamp, ok
}

// firstRecordAt decodes the batch h at pos and returns its first record
// at or after start with a timestamp >= ts. If the batch cannot be decoded
// it falls back to batch precision.
func (s *segment) firstRecordAt(h batch.Header, pos, ts, start int64) (int64, int64, bool) {
	b := make([]byte, h.Size())
	if _, err := s.f.ReadAt(b, pos); err != nil {
		return max(h.BaseOffset, start), h.MaxTimestamp, true
	}
	var off, rts int64
	found := false
	errStop := errors.New("stop")
	err := batch.Each(b, func(r *batch.Record) error {
		o := h.BaseOffset + int64(r.OffsetDelta)
		t := h.BaseTimestamp + r.TimestampDelta
		if h.LogAppendTime() {
			t = h.MaxTimestamp
		}
		if o >= start && t >= ts {
			off, rts, found = o, t, true
			return errStop
		}
		return nil
	})
	if found {
		return off, rts, true
	}
	if err != nil && err != errStop {
		return max(h.BaseOffset, start), h.MaxTimestamp, true
	}
	return 0, 0, false
}

// Close syncs and seals the active segment, records a clean shutdown so
// the next Open can skip recovery, and closes the files (each as soon as
// no reader holds it).
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	err := l.shutdown()
	l.mu.Lock()
	l.closed = true
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	return err
}

// shutdown makes the active segment durable and indexed and writes the
// clean-shutdown marker. Caller holds wmu.
func (l *Log) shutdown() error {
	seg := l.active()
	if st, err := seg.f.Stat(); err == nil && st.Size() != seg.size {
		if err := seg.f.Truncate(seg.size); err != nil {
			return fmt.Errorf("partlog: close: %w", err)
		}
	}
	if err := fdatasync(seg.f); err != nil {
		return fmt.Errorf("partlog: close: %w", err)
	}
	l.mu.Lock()
	seg.appendTimeEntry()
	seg.openAtEnd = openList(l.txns)
	l.mu.Unlock()
	if err := seg.seal(); err != nil {
		return err
	}
	if err := seg.writeTxnIndex(); err != nil {
		return err
	}
	if err := writeCleanMarker(l.dir, seg.base, seg.size); err != nil {
		return fmt.Errorf("partlog: close: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("partlog: close: %w", err)
	}
	if l.leo > l.durable.Load() {
		l.durable.Store(l.leo)
	}
	return nil
}

// Remove closes the log without syncing (its data is going away) and
// deletes its directory. Readers in flight finish on the unlinked files.
func (l *Log) Remove() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	segs := l.segs
	l.segs, l.closed = nil, true
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	return os.RemoveAll(l.dir)
}
