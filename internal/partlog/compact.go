package partlog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

// Compact applies cleanup.policy=compact: in sealed segments it keeps only
// the latest record of each key, as of the whole log including the active
// segment, which itself is never rewritten.
//
// Offsets never change: a batch keeps its base offset and last offset
// delta, kept records keep their offset deltas, and a batch of an
// idempotent producer that loses all its records stays as an empty batch so
// its producer id, epoch and sequence range survive. Keyless records are
// dropped, as Kafka's cleaner does.
//
// Tombstones follow KIP-534: the first compaction that keeps a tombstone
// stamps its batch with a delete horizon (now + DeleteRetention, stored in
// baseTimestamp with attribute bit 6), and a later compaction at or after
// the horizon drops it. Consumers reading from the start therefore get at
// least DeleteRetention to see a delete, however old its timestamp.
//
// Transactions: only segments wholly below the last stable offset are
// cleaned, so every transactional batch met is decided. A committed
// transaction's records are cleaned like any others; an aborted one's
// records are dropped (its batches stay, empty, for their producer
// fields) and never count as a key's latest value, so an aborted write
// cannot erase the committed value before it. Control batches are kept.
//
// Segments whose newest record is younger than MinCompactionLag, and all
// after them, are left alone. Each segment is rewritten to
// <base>.log.cleaned, fsynced, renamed to .swap and then over the original,
// so a crash leaves either the old or the new segment (Open completes a
// pending .swap). Readers holding the old segment finish on the old file.
func (l *Log) Compact(now time.Time) error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	cfg := l.cfg
	segs := slices.Clone(l.segs)
	lso := l.lastStable(l.leo) // Kafka: the first unstable offset, whatever the high watermark
	ends := make([]int64, len(segs))
	for i, s := range segs {
		s.acquire()
		ends[i] = s.size
	}
	l.mu.RUnlock()
	defer func() {
		for _, s := range segs {
			s.release()
		}
	}()
	if !cfg.Cleanup.compacts() {
		return nil
	}

	cutoff := now.Add(-cfg.MinCompactionLag).UnixMilli()
	n := 0
	for n < len(segs)-1 && segs[n].next <= lso && (cfg.MinCompactionLag <= 0 || segs[n].maxTS <= cutoff) {
		n++
	}
	if n == 0 {
		return nil
	}
	aborted := abortedRanges(segs)
	latest, err := l.latestOffsets(segs, ends, aborted)
	if err != nil {
		return fmt.Errorf("partlog: compact: %w", err)
	}
	c := cleaner{
		latest:   latest,
		aborted:  aborted,
		now:      now.UnixMilli(),
		horizon:  now.Add(cfg.DeleteRetention).UnixMilli(),
		interval: cfg.IndexIntervalBytes,
	}
	for i, s := range segs[:n] {
		if err := l.cleanSegment(&c, s, ends[i]); err != nil {
			return fmt.Errorf("partlog: compact segment %d: %w", s.base, err)
		}
	}
	return nil
}

// latestOffsets maps every key to the offset of its last record in the
// given segments (read up to ends). Keys are held as strings, exactly.
func (l *Log) latestOffsets(segs []*segment, ends []int64, aborted map[int64][]AbortedTxn) (map[string]int64, error) {
	latest := make(map[string]int64)
	for i, s := range segs {
		err := s.eachBatch(ends[i], func(h batch.Header, b []byte) error {
			if h.Control() || (h.Transactional() && inAborted(aborted, h)) {
				return nil
			}
			err := batch.Each(b, func(rec *batch.Record) error {
				if rec.Key != nil {
					latest[string(rec.Key)] = h.BaseOffset + int64(rec.OffsetDelta)
				}
				return nil
			})
			if err != nil {
				// Undecodable batches are kept as they are; their keys
				// simply do not supersede anything.
				l.logger.Warn("partlog: compact: cannot decode batch", "offset", h.BaseOffset, "err", err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return latest, nil
}

// cleaner holds the inputs of one compaction pass.
type cleaner struct {
	latest   map[string]int64
	aborted  map[int64][]AbortedTxn
	now      int64 // ms
	horizon  int64 // delete horizon to stamp on batches that keep tombstones
	interval int
}

// cleanBatch returns the batch to write in place of b (b itself when
// nothing changes) or nil to drop it.
func (c *cleaner) cleanBatch(h batch.Header, b []byte) ([]byte, error) {
	if h.Control() {
		return b, nil
	}
	if h.Transactional() && inAborted(c.aborted, h) {
		if h.NumRecords == 0 {
			return b, nil
		}
		return c.rebuild(h, nil, false)
	}
	recs, err := batch.Records(b)
	if err != nil {
		return b, nil // see latestOffsets
	}
	expired := h.HasDeleteHorizon() && h.BaseTimestamp <= c.now
	kept := recs[:0:0]
	tombstones := false
	for _, r := range recs {
		off := h.BaseOffset + int64(r.OffsetDelta)
		if r.Key == nil || c.latest[string(r.Key)] != off || (r.Value == nil && expired) {
			continue
		}
		kept = append(kept, r)
		tombstones = tombstones || r.Value == nil
	}
	if len(kept) == len(recs) && (!tombstones || h.HasDeleteHorizon()) {
		return b, nil
	}
	if len(kept) == 0 && !h.HasProducerID() {
		return nil, nil
	}
	return c.rebuild(h, kept, tombstones)
}

// rebuild encodes the kept records of h with h's identity: offsets,
// producer fields, codec and attributes. A batch that keeps tombstones
// carries a delete horizon in its base timestamp; record timestamp deltas
// are re-based so every record keeps its timestamp.
func (c *cleaner) rebuild(h batch.Header, kept []batch.Record, tombstones bool) ([]byte, error) {
	o := batch.BuildOptions{
		BaseOffset:      h.BaseOffset,
		LeaderEpoch:     h.LeaderEpoch,
		Codec:           h.Codec(),
		Attributes:      h.Attributes &^ batch.AttrDeleteHorizon,
		MaxTimestamp:    h.MaxTimestamp,
		LastOffsetDelta: h.LastOffsetDelta,
		ProducerID:      h.ProducerID,
		ProducerEpoch:   h.ProducerEpoch,
		BaseSequence:    h.BaseSequence,
	}
	switch {
	case tombstones && h.HasDeleteHorizon():
		o.BaseTimestamp = h.BaseTimestamp
		o.Attributes |= batch.AttrDeleteHorizon
	case tombstones:
		o.BaseTimestamp = c.horizon
		o.Attributes |= batch.AttrDeleteHorizon
	case len(kept) > 0:
		o.BaseTimestamp = h.BaseTimestamp + kept[0].TimestampDelta
	default:
		o.BaseTimestamp = h.BaseTimestamp
	}
	for i := range kept {
		kept[i].TimestampDelta = h.BaseTimestamp + kept[i].TimestampDelta - o.BaseTimestamp
	}
	return batch.Build(o, kept)
}

// cleanSegment rewrites one sealed segment through the cleaner and swaps
// the result in, unless nothing changed.
func (l *Log) cleanSegment(c *cleaner, s *segment, end int64) error {
	cleanedPath := s.path(logSuffix + cleanedSuffix)
	f, err := os.OpenFile(cleanedPath, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	ns := newSegment(s.dir, s.base, f)
	ns.aborted, ns.openAtEnd = s.aborted, s.openAtEnd // offsets do not move
	installed := false
	defer func() {
		if !installed {
			ns.release()
			os.Remove(cleanedPath) // gone already if renamed
		}
	}()

	changed, err := c.copySegment(s, end, ns)
	if err != nil || !changed {
		return err
	}
	if err := fdatasync(f); err != nil {
		return err
	}
	installed, err = l.swapIn(s, ns)
	return err
}

// copySegment writes the cleaned batches of s into ns and reports whether
// anything differs from s.
func (c *cleaner) copySegment(s *segment, end int64, ns *segment) (bool, error) {
	w := bufio.NewWriterSize(ns.f, 1<<20)
	changed := false
	err := s.eachBatch(end, func(h batch.Header, b []byte) error {
		nb, err := c.cleanBatch(h, b)
		if err != nil {
			return err
		}
		if nb == nil {
			changed = true
			return nil
		}
		if len(nb) != len(b) || &nb[0] != &b[0] {
			changed = true
		}
		nh, err := batch.ParseHeader(nb)
		if err != nil {
			return err
		}
		if _, err := w.Write(nb); err != nil {
			return err
		}
		ns.track(nh, ns.size, len(nb), c.interval)
		return nil
	})
	if err != nil {
		return false, err
	}
	return changed, w.Flush()
}

// eachBatch calls fn with every whole batch of s up to end, reading
// sequentially through one window. b is valid only during the call.
func (s *segment) eachBatch(end int64, fn func(h batch.Header, b []byte) error) error {
	r := newSpanReader(s.f, end, 1<<20)
	for pos := int64(0); pos < end; {
		h, err := r.header(pos)
		if err != nil {
			return err
		}
		b, err := r.peek(pos, h.Size())
		if err != nil {
			return err
		}
		if err := fn(h, b); err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

// swapIn replaces the sealed segment old with its cleaned version ns
// (whose file is the fsynced ".cleaned" file), or drops old when ns is
// empty. It reports whether ns now belongs to the log; if not, the caller
// discards it. Nothing happens when old is no longer part of the log
// (deleted by retention meanwhile, or the log closed).
func (l *Log) swapIn(old, ns *segment) (bool, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	i := slices.Index(l.segs, old)
	if l.closed || i < 0 || i == len(l.segs)-1 {
		return false, nil
	}
	if ns.size == 0 {
		l.replace(i, nil)
		return false, old.removeFiles()
	}
	swap := ns.path(logSuffix + swapSuffix)
	if err := os.Rename(ns.path(logSuffix+cleanedSuffix), swap); err != nil {
		return false, err
	}
	// From here a crash completes the swap on Open, so stale indexes must
	// be gone before the new log file takes the old one's name.
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := os.Remove(old.path(suf)); err != nil && !os.IsNotExist(err) {
			return false, l.failSwap(err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		return false, l.failSwap(err)
	}
	if err := os.Rename(swap, old.path(logSuffix)); err != nil {
		return false, l.failSwap(err)
	}
	if err := syncDir(l.dir); err != nil {
		return false, l.failSwap(err)
	}
	ns.appendTimeEntry()
	l.replace(i, ns)
	if err := ns.seal(); err != nil {
		// The indexes are rebuilt by the next Open.
		l.logger.Warn("partlog: compact: writing index failed", "segment", ns.base, "err", err)
	}
	return true, nil
}

// failSwap reports an I/O error in the middle of a swap. The swap file is
// complete, so the next Open finishes the job.
func (l *Log) failSwap(err error) error {
	return errors.Join(err, errors.New("partlog: compaction swap interrupted; reopen the log to complete it"))
}

// replace publishes segs[i] := ns, or removes segs[i] when ns is nil, and
// drops the log's reference to the old segment. Caller holds wmu.
func (l *Log) replace(i int, ns *segment) {
	old := l.segs[i]
	segs := slices.Clone(l.segs)
	l.mu.Lock()
	if ns == nil {
		l.segs = slices.Delete(segs, i, i+1)
		l.size -= old.size
	} else {
		segs[i] = ns
		l.segs = segs
		l.size += ns.size - old.size
	}
	l.mu.Unlock()
	old.release()
}
