package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"slices"

	"github.com/weir-io/weir/internal/batch"
)

// Transactions, as the log sees them. A transactional producer's first
// batch on a partition opens its transaction; the COMMIT or ABORT control
// batch the coordinator writes closes it. The log tracks this itself, from
// the batches appended, so that every replica (and a restarted broker)
// derives the same view from the same bytes:
//
//   - the first unstable offset, the start of the oldest transaction whose
//     marker is not yet below the high watermark; read_committed readers
//     and compaction stop there (LastStable);
//   - the aborted transactions, kept per segment (the segment holding the
//     ABORT marker) in a <base>.txnindex file as Kafka does, so Fetch can
//     list the ones overlapping what it returns (AbortedTxns) and
//     compaction can drop their records.
//
// A sealed segment's .txnindex also records the transactions still open
// at its end, so recovery scans only the active segment (or segments whose
// file is missing) to rebuild the open set.
const txnIndexSuffix = ".txnindex"

// AbortedTxn is one aborted transaction on this partition: its producer,
// the offset of its first batch here and the offset of its ABORT marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// txnSpan is a transaction of one producer: its first offset and the
// offset of its marker, -1 while it is open.
type txnSpan struct{ first, end int64 }

// openTxn is a transaction open at a segment's end.
type openTxn struct{ pid, first int64 }

// trackTxn updates the transaction view for batch b (header h) appended
// at h.BaseOffset into s. Caller holds wmu and mu for writing.
func (l *Log) trackTxn(s *segment, h batch.Header, b []byte) {
	if !h.Transactional() || h.ProducerID < 0 {
		return
	}
	trackTxnBatch(l.txns, s, h, b)
}

// trackTxnBatch is trackTxn over an explicit set of spans, for recovery.
func trackTxnBatch(txns map[int64]txnSpan, s *segment, h batch.Header, b []byte) {
	span, ok := txns[h.ProducerID]
	open := ok && span.end < 0
	if !h.Control() {
		if !open {
			txns[h.ProducerID] = txnSpan{first: h.BaseOffset, end: -1}
		}
		return
	}
	if !open {
		return // a marker for a producer with nothing open here: Kafka writes no index entry
	}
	if typ, err := batch.ControlType(b); err == nil && typ == batch.ControlAbort {
		s.aborted = append(s.aborted, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: span.first, LastOffset: h.BaseOffset})
	}
	txns[h.ProducerID] = txnSpan{first: span.first, end: h.BaseOffset}
}

// LastStable returns the last stable offset for high watermark hw: the
// first offset of the oldest transaction not yet decided below hw, or hw
// itself. Records below it belong to no open transaction; read_committed
// readers stop there.
func (l *Log) LastStable(hw int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastStable(hw)
}

func (l *Log) lastStable(hw int64) int64 {
	lso := hw
	for _, s := range l.txns {
		if (s.end < 0 || s.end >= hw) && s.first < lso {
			lso = s.first
		}
	}
	return max(lso, min(l.start, hw))
}

// HasOpenTxn reports whether producer pid has a transaction open here.
func (l *Log) HasOpenTxn(pid int64) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s, ok := l.txns[pid]
	return ok && s.end < 0
}

// OpenTxns returns the first offset of every open transaction by
// producer id (DescribeProducers' currentTxnStartOffset).
func (l *Log) OpenTxns() map[int64]int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[int64]int64)
	for pid, s := range l.txns {
		if s.end < 0 {
			out[pid] = s.first
		}
	}
	return out
}

// AbortedTxns returns the aborted transactions that overlap offsets
// [from, to): marker at or after from, first batch before to. This is
// the AbortedTransactions list of a read_committed Fetch.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []AbortedTxn
	if l.closed {
		return nil
	}
	for _, s := range l.segs[l.segmentFor(from):] {
		for _, a := range s.aborted {
			if a.LastOffset >= from && a.FirstOffset < to {
				out = append(out, a)
			}
		}
	}
	return out
}

// abortedRanges maps each producer to its aborted transactions across
// segs, for compaction.
func abortedRanges(segs []*segment) map[int64][]AbortedTxn {
	out := make(map[int64][]AbortedTxn)
	for _, s := range segs {
		for _, a := range s.aborted {
			out[a.ProducerID] = append(out[a.ProducerID], a)
		}
	}
	return out
}

// inAborted reports whether the transactional batch h lies in an aborted
// transaction of its producer.
func inAborted(r map[int64][]AbortedTxn, h batch.Header) bool {
	for _, a := range r[h.ProducerID] {
		if h.BaseOffset >= a.FirstOffset && h.BaseOffset < a.LastOffset {
			return true
		}
	}
	return false
}

// sealTxns records, at a roll, the transactions open at the end of the
// sealed segment s, and forgets decided ones whose markers s holds (they
// are all below any future high watermark check that matters: a roll
// happens after the batch that closed them was written).
func (l *Log) sealTxns(s *segment) {
	s.openAtEnd = openList(l.txns)
	for pid, span := range l.txns {
		if span.end >= 0 && span.end < s.next {
			delete(l.txns, pid)
		}
	}
}

func openList(txns map[int64]txnSpan) []openTxn {
	var out []openTxn
	for _, pid := range slices.Sorted(maps.Keys(txns)) {
		if s := txns[pid]; s.end < 0 {
			out = append(out, openTxn{pid: pid, first: s.first})
		}
	}
	return out
}

// The .txnindex file: magic, version, the aborted entries (producer id,
// first offset, marker offset), the transactions open at the segment's end
// (producer id, first offset), all big-endian, then a CRC-32C.
const (
	txnIndexMagic   = "WTXN"
	txnIndexVersion = 1
	maxTxnIndex     = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeTxnIndex(aborted []AbortedTxn, open []openTxn) []byte {
	b := append([]byte(txnIndexMagic), txnIndexVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(aborted)))
	for _, a := range aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(open)))
	for _, o := range open {
		b = binary.BigEndian.AppendUint64(b, uint64(o.pid))
		b = binary.BigEndian.AppendUint64(b, uint64(o.first))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeTxnIndex parses a .txnindex of the segment [base, next). It never
// panics and refuses entries outside the segment.
func decodeTxnIndex(b []byte, base, next int64) ([]AbortedTxn, []openTxn, error) {
	if len(b) < 4+1+4+4+4 || len(b) > maxTxnIndex {
		return nil, nil, fmt.Errorf("%w: txn index of %d bytes", errBadIndex, len(b))
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return nil, nil, fmt.Errorf("%w: txn index checksum mismatch", errBadIndex)
	}
	if string(body[:4]) != txnIndexMagic || body[4] != txnIndexVersion {
		return nil, nil, fmt.Errorf("%w: txn index magic or version", errBadIndex)
	}
	body = body[5:]
	n := int(binary.BigEndian.Uint32(body))
	body = body[4:]
	if n > len(body)/24 {
		return nil, nil, fmt.Errorf("%w: txn index count %d", errBadIndex, n)
	}
	aborted := make([]AbortedTxn, n)
	for i := range aborted {
		a := AbortedTxn{
			ProducerID:  int64(binary.BigEndian.Uint64(body)),
			FirstOffset: int64(binary.BigEndian.Uint64(body[8:])),
			LastOffset:  int64(binary.BigEndian.Uint64(body[16:])),
		}
		body = body[24:]
		if a.ProducerID < 0 || a.FirstOffset < 0 || a.FirstOffset > a.LastOffset || a.LastOffset < base || a.LastOffset >= next {
			return nil, nil, fmt.Errorf("%w: txn index entry %d", errBadIndex, i)
		}
		aborted[i] = a
	}
	if len(body) < 4 {
		return nil, nil, fmt.Errorf("%w: txn index truncated", errBadIndex)
	}
	m := int(binary.BigEndian.Uint32(body))
	body = body[4:]
	if len(body) != m*16 {
		return nil, nil, fmt.Errorf("%w: txn index open count %d", errBadIndex, m)
	}
	open := make([]openTxn, m)
	for i := range open {
		o := openTxn{pid: int64(binary.BigEndian.Uint64(body)), first: int64(binary.BigEndian.Uint64(body[8:]))}
		body = body[16:]
		if o.pid < 0 || o.first < 0 || o.first >= next || (i > 0 && o.pid <= open[i-1].pid) {
			return nil, nil, fmt.Errorf("%w: txn index open entry %d", errBadIndex, i)
		}
		open[i] = o
	}
	return aborted, open, nil
}

// writeTxnIndex persists s's aborted list and open set.
func (s *segment) writeTxnIndex() error {
	if err := writeFileSync(s.path(txnIndexSuffix), encodeTxnIndex(s.aborted, s.openAtEnd)); err != nil {
		return fmt.Errorf("partlog: write txn index: %w", err)
	}
	return nil
}

// loadTxnIndex reads s's .txnindex.
func (s *segment) loadTxnIndex() error {
	b, err := os.ReadFile(s.path(txnIndexSuffix))
	if err != nil {
		return err
	}
	aborted, open, err := decodeTxnIndex(b, s.base, s.next)
	if err != nil {
		return err
	}
	s.aborted, s.openAtEnd = aborted, open
	return nil
}

// recoverTxns rebuilds the transaction view at open: each sealed
// segment's .txnindex in turn, scanning (and rewriting the file for) any
// segment whose index is missing or unusable, then the active segment,
// whose index is trusted only after a clean shutdown.
func (l *Log) recoverTxns(clean bool) error {
	txns := make(map[int64]txnSpan)
	for i, s := range l.segs {
		active := i == len(l.segs)-1
		if !active || clean {
			err := s.loadTxnIndex()
			if err == nil {
				txns = spansOf(s.openAtEnd)
				continue
			}
			if !errors.Is(err, os.ErrNotExist) {
				l.logger.Warn("partlog: rebuilding txn index", "segment", s.base, "reason", err)
			}
		}
		s.aborted = nil
		if err := s.eachBatch(s.size, func(h batch.Header, b []byte) error {
			if h.Transactional() && h.ProducerID >= 0 {
				trackTxnBatch(txns, s, h, b)
			}
			return nil
		}); err != nil {
			return err
		}
		for pid, span := range txns {
			if span.end >= 0 && !active {
				delete(txns, pid)
			}
		}
		s.openAtEnd = openList(txns)
		if !active {
			if err := s.writeTxnIndex(); err != nil {
				return err
			}
		}
	}
	l.txns = txns
	return nil
}

func spansOf(open []openTxn) map[int64]txnSpan {
	m := make(map[int64]txnSpan, len(open))
	for _, o := range open {
		m[o.pid] = txnSpan{first: o.first, end: -1}
	}
	return m
}
