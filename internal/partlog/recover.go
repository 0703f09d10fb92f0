package partlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/weir-io/weir/internal/batch"
)

// Files in a partition directory besides the segments.
const (
	startCheckpointFile = "log-start-offset" // DeleteRecords' log start offset
	cleanMarkerFile     = "clean-shutdown"   // "<active base> <active size>", written by Close
)

// Open opens the log in dir, creating it if needed, and recovers it.
//
// After a clean Close only the active segment's tail beyond its last index
// entry is walked. Otherwise the last segment is scanned batch by batch,
// checking CRCs, and cut at the first torn or corrupt batch; earlier
// segments were fsynced when rolled. Missing or implausible index files are
// rebuilt from the segment. Unfinished compaction output is completed or
// discarded. What recovery changes is logged with slog.
func Open(dir string, cfg Config) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partlog: open: %w", err)
	}
	l := &Log{dir: dir, cfg: cfg.normalized(), logger: slog.Default().With("log", dir)}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.release()
		}
		return nil, fmt.Errorf("partlog: open %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) recover() error {
	if err := l.finishStaging(); err != nil {
		return err
	}
	bases, err := l.listSegments()
	if err != nil {
		return err
	}
	start, err := readStartCheckpoint(l.dir)
	if err != nil {
		return err
	}
	markBase, markSize, clean := readCleanMarker(l.dir)
	// A crash from here on must not be mistaken for a clean stop;
	// finishOpen fsyncs the directory.
	if err := os.Remove(filepath.Join(l.dir, cleanMarkerFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, base := range bases {
		s, err := openSegment(l.dir, base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}
	if err := l.dropBelow(start); err != nil {
		return err
	}
	for i, s := range l.segs {
		if i == len(l.segs)-1 {
			break
		}
		s.next = l.segs[i+1].base
		if err := l.loadSealed(s); err != nil {
			return err
		}
	}
	if len(l.segs) > 0 {
		last := l.active()
		if !clean || markBase != last.base || markSize != last.size || !l.loadActive(last) {
			clean = false
			if err := l.rescan(last); err != nil {
				return err
			}
		}
	}
	if err := l.recoverTxns(clean); err != nil {
		return err
	}
	return l.finishOpen(start)
}

// finishOpen settles the start and end offsets, makes sure an active
// segment exists, and makes the recovered state durable.
func (l *Log) finishOpen(start int64) error {
	if len(l.segs) > 0 {
		l.leo = l.active().next
		start = max(start, l.segs[0].base)
	}
	if len(l.segs) > 0 && start > l.leo {
		// The checkpoint is ahead of the data (lost tail): like Kafka,
		// empty the log and restart it at the start offset.
		l.logger.Warn("partlog: log start offset beyond recovered end; emptying log", "start", start, "end", l.leo)
		for _, s := range l.segs {
			if err := s.removeFiles(); err != nil {
				return err
			}
			s.release()
		}
		l.segs = nil
		l.txns = make(map[int64]txnSpan)
	}
	if len(l.segs) == 0 {
		s, err := createSegment(l.dir, start)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		l.leo = start
	}
	l.start = start
	for _, s := range l.segs {
		l.size += s.size
	}
	if err := fdatasync(l.active().f); err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.durable.Store(l.leo)
	return nil
}

// finishStaging resolves files left by an interrupted compaction or index
// write: complete ".swap" segments replace their originals (their indexes
// are removed first and rebuilt later); ".cleaned" and ".tmp" files are
// incomplete and deleted.
func (l *Log) finishStaging() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	changed := false
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(l.dir, name)
		switch {
		case strings.HasSuffix(name, cleanedSuffix), strings.HasSuffix(name, tmpSuffix), strings.HasSuffix(name, ".deleted"):
			if err := os.Remove(p); err != nil {
				return err
			}
			changed = true
		case strings.HasSuffix(name, logSuffix+swapSuffix):
			logName := strings.TrimSuffix(name, swapSuffix)
			base, ok := parseSegmentName(logName)
			if !ok {
				continue
			}
			for _, suf := range []string{indexSuffix, timeIndexSuffix} {
				if err := os.Remove(filepath.Join(l.dir, segmentName(base, suf))); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
			if err := os.Rename(p, filepath.Join(l.dir, logName)); err != nil {
				return err
			}
			l.logger.Info("partlog: completed interrupted compaction swap", "segment", logName)
			changed = true
		}
	}
	if changed {
		return syncDir(l.dir)
	}
	return nil
}

// listSegments returns the base offsets of the segment files, ascending.
func (l *Log) listSegments() ([]int64, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

func openSegment(dir string, base int64) (*segment, error) {
	f, err := os.OpenFile(filepath.Join(dir, segmentName(base, logSuffix)), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := newSegment(dir, base, f)
	s.size = st.Size()
	s.created = st.ModTime()
	return s, nil
}

// dropBelow deletes segments that lie entirely below the log start offset
// (a DeleteRecords whose deletions did not finish before a crash).
func (l *Log) dropBelow(start int64) error {
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].base <= start {
		n++
	}
	for _, s := range l.segs[:n] {
		if err := s.removeFiles(); err != nil {
			return err
		}
		s.release()
	}
	l.segs = l.segs[n:]
	return nil
}

// loadSealed loads a sealed segment's indexes, rebuilding them (and
// cutting the segment at any corrupt batch) if they are missing or
// implausible.
func (l *Log) loadSealed(s *segment) error {
	err := s.loadIndexes()
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		l.logger.Warn("partlog: rebuilding index", "segment", s.base, "reason", err)
	} else {
		l.logger.Info("partlog: rebuilding missing index", "segment", s.base)
	}
	next := s.next
	if err := l.rescan(s); err != nil {
		return err
	}
	s.next = next
	s.appendTimeEntry()
	return s.seal()
}

// loadActive loads the active segment after a clean shutdown: its indexes
// from disk, then a header walk over the few batches after the last index
// entry to find the log end. It returns false when anything looks wrong,
// and the caller falls back to full recovery.
func (l *Log) loadActive(s *segment) bool {
	if err := s.loadIndexes(); err != nil {
		l.logger.Warn("partlog: active segment index unusable; recovering", "segment", s.base, "reason", err)
		return false
	}
	pos := int64(0)
	if n := len(s.index); n > 0 {
		pos = int64(s.index[n-1].pos)
	}
	end := s.size
	s.size = pos
	err := s.walk(pos, end, 1<<20, func(h batch.Header, p int64) (bool, error) {
		if h.BaseOffset < s.base || !s.fits(h.LastOffset()) {
			return false, batch.ErrCorrupt
		}
		s.track(h, p, h.Size(), l.cfg.IndexIntervalBytes)
		return true, nil
	})
	if err != nil || s.size != end {
		return false
	}
	if end > 0 {
		r := newSpanReader(s.f, end, batch.HeaderSize)
		h, err := r.header(0)
		if err != nil {
			return false
		}
		s.firstTS = h.MaxTimestamp
	}
	return true
}

// rescan rebuilds a segment's in-memory state by reading and validating
// every batch, and truncates the file after the last valid one.
func (l *Log) rescan(s *segment) error {
	fileSize := s.size
	s.size, s.next, s.index, s.tindex = 0, s.base, nil, nil
	s.maxTS, s.maxTSOff, s.bytesSinceIndex, s.firstTS = -1, s.base, 0, -1
	r := newSpanReader(s.f, fileSize, 1<<20)
	pos := int64(0)
	var reason error
	for pos < fileSize {
		h, err := r.header(pos)
		if err != nil {
			reason = err
			break
		}
		b, err := r.peek(pos, h.Size())
		if err != nil {
			reason = err
			break
		}
		if _, err := batch.Validate(b); err != nil {
			reason = err
			break
		}
		if h.BaseOffset < s.next || !s.fits(h.LastOffset()) {
			reason = fmt.Errorf("%w: batch at offset %d after offset %d", batch.ErrCorrupt, h.BaseOffset, s.next)
			break
		}
		s.track(h, pos, h.Size(), l.cfg.IndexIntervalBytes)
		pos += int64(h.Size())
	}
	if pos == fileSize {
		return nil
	}
	l.logger.Warn("partlog: truncating corrupt or torn segment tail",
		"segment", s.base, "valid_bytes", pos, "dropped_bytes", fileSize-pos, "next_offset", s.next, "reason", reason)
	if err := s.f.Truncate(pos); err != nil {
		return err
	}
	return fdatasync(s.f)
}

// readStartCheckpoint returns the persisted log start offset, or 0.
func readStartCheckpoint(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, startCheckpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		// The file is written atomically, so this is not a torn write;
		// ignoring it can only expose records DeleteRecords hid.
		slog.Warn("partlog: ignoring unreadable log start checkpoint", "dir", dir, "content", string(b))
		return 0, nil
	}
	return v, nil
}

func writeStartCheckpoint(dir string, start int64) error {
	if err := writeFileSync(filepath.Join(dir, startCheckpointFile), []byte(strconv.FormatInt(start, 10)+"\n")); err != nil {
		return err
	}
	return syncDir(dir)
}

func readCleanMarker(dir string) (base, size int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, cleanMarkerFile))
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	base, err1 := strconv.ParseInt(f[0], 10, 64)
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	return base, size, err1 == nil && err2 == nil
}

func writeCleanMarker(dir string, base, size int64) error {
	return writeFileSync(filepath.Join(dir, cleanMarkerFile), fmt.Appendf(nil, "%d %d\n", base, size))
}
