package partlog

import (
	"fmt"
	"slices"
	"time"
)

// DeleteBefore raises the log start offset to offset (Kafka's
// DeleteRecords) and deletes the segments that lie entirely below it. The
// new start offset is persisted before anything is deleted, so a crash
// cannot expose deleted records again. offset beyond the log end is
// ErrOffsetOutOfRange; an offset at or below the current start is a no-op.
func (l *Log) DeleteBefore(offset int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset > l.leo {
		return fmt.Errorf("%w: delete before %d beyond log end %d", ErrOffsetOutOfRange, offset, l.leo)
	}
	if offset <= l.start {
		return nil
	}
	if err := writeStartCheckpoint(l.dir, offset); err != nil {
		return fmt.Errorf("partlog: delete records: %w", err)
	}
	l.mu.Lock()
	l.start = offset
	l.mu.Unlock()
	if offset == l.leo {
		// Everything is deleted: roll so the active segment can go too,
		// as Kafka does.
		if _, err := l.roll(); err != nil {
			return err
		}
	}
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].base <= offset {
		n++
	}
	return l.deleteOldest(n)
}

// EnforceRetention deletes the oldest segments whose newest record is
// older than RetentionTime, or while the log would still hold at least
// RetentionBytes without them (Kafka's retention.bytes rule). The active
// segment is never deleted. It does nothing unless the cleanup policy
// includes Delete, and returns the number of segments deleted.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	cfg := l.cfg
	if !cfg.Cleanup.deletes() {
		return 0, nil
	}
	cutoff := now.Add(-cfg.RetentionTime).UnixMilli()
	remaining := l.size
	n := 0
	for ; n < len(l.segs)-1; n++ {
		s := l.segs[n]
		expired := cfg.RetentionTime >= 0 && s.newestTimestamp() < cutoff
		oversize := cfg.RetentionBytes >= 0 && remaining-s.size >= cfg.RetentionBytes
		if !expired && !oversize {
			break
		}
		remaining -= s.size
	}
	return n, l.deleteOldest(n)
}

// newestTimestamp is the segment's max record timestamp, or its file's
// modification time when its batches carry no timestamps (as Kafka does).
func (s *segment) newestTimestamp() int64 {
	if s.maxTS >= 0 {
		return s.maxTS
	}
	if st, err := s.f.Stat(); err == nil {
		return st.ModTime().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// deleteOldest removes the n oldest segments (never the active one),
// advancing the log start offset past them. Readers still holding one
// finish on the unlinked file. Caller holds wmu.
func (l *Log) deleteOldest(n int) error {
	n = min(n, len(l.segs)-1)
	if n <= 0 {
		return nil
	}
	gone := l.segs[:n]
	var freed int64
	for _, s := range gone {
		freed += s.size
	}
	l.mu.Lock()
	l.segs = slices.Clone(l.segs[n:])
	l.start = max(l.start, l.segs[0].base)
	l.size -= freed
	l.mu.Unlock()

	var first error
	for _, s := range gone {
		if err := s.removeFiles(); err != nil && first == nil {
			first = fmt.Errorf("partlog: delete segment %d: %w", s.base, err)
		}
		s.release()
	}
	return first
}
