package replica

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/weir-io/weir/internal/batch"
)

// The snapshot stream is what a Raft snapshot of a partition reads as:
//
//	"WSNP" | version u8 | flags u8 | state length u32 | state (see fsmState)
//	if flags&streamHasData:
//	  segment count u32
//	  per segment: base offset i64 | length u32 | whole stored batches
//
// integers big-endian. A snapshot written by FSMSnapshot.Persist has no
// data: the segment files are the state, so only the head is stored. The
// snapshot store's Open adds the data when it can: the partition's
// segments as they are on disk when the snapshot is sent, up to the
// state's log end. Batches carry their own CRC, so the framing needs none.
const (
	streamMagic   = "WSNP"
	streamVersion = 1
	streamHasData = 1 << 0
	streamHead    = 4 + 1 + 1 + 4
	segmentHead   = 8 + 4
	// maxSegments bounds the segment count a receiver accepts: at the
	// smallest sensible segment size (1 MiB) that is a petabyte.
	maxSegments = 1 << 30
	// maxBatchBytes bounds one stored batch. A batch reached the log as
	// one Raft entry, and raft-wal refuses entries over 64 MiB;
	// compaction only shrinks batches.
	maxBatchBytes = 64 << 20
)

// errBadStream reports a snapshot stream that is not well-formed.
var errBadStream = errors.New("replica: malformed snapshot stream")

// appendStreamHead encodes the head of a snapshot stream.
func appendStreamHead(b []byte, st *fsmState, hasData bool) []byte {
	state := appendState(nil, st)
	b = append(b, streamMagic...)
	b = append(b, streamVersion)
	var flags byte
	if hasData {
		flags |= streamHasData
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(len(state)))
	return append(b, state...)
}

// readStreamHead reads and checks the head of a snapshot stream.
func readStreamHead(r io.Reader) (st fsmState, hasData bool, err error) {
	var h [streamHead]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return st, false, fmt.Errorf("%w: head: %w", errBadStream, err)
	}
	if string(h[:4]) != streamMagic || h[4] != streamVersion || h[5]&^streamHasData != 0 {
		return st, false, fmt.Errorf("%w: unknown magic, version or flags", errBadStream)
	}
	n := binary.BigEndian.Uint32(h[6:])
	if n > maxStateBytes {
		return st, false, fmt.Errorf("%w: state of %d bytes", errBadStream, n)
	}
	b, err := readN(r, int64(n))
	if err != nil {
		return st, false, fmt.Errorf("%w: state: %w", errBadStream, err)
	}
	st, err = decodeState(b)
	return st, h[5]&streamHasData != 0, err
}

// segmentSink receives the segments of a snapshot stream as they are
// decoded and checked: begin starts the segment with base offset base,
// batch appends one whole stored batch to it.
type segmentSink interface {
	begin(base int64) error
	batch(b []byte) error
}

// readSegments reads the data part of a snapshot stream whose head
// decoded as st, checking everything before passing it on: segment bases
// ascend, every batch is whole, passes batch.Validate (CRC included) and
// lies in its segment and below st.LogEnd, offsets ascend across the
// stream, and nothing follows the last segment. It returns the offset
// after the last batch (st.LogStart when there is none).
func readSegments(r io.Reader, st *fsmState, sink segmentSink) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n [4]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return 0, fmt.Errorf("%w: segment count: %w", errBadStream, err)
	}
	count := binary.BigEndian.Uint32(n[:])
	if count > maxSegments {
		return 0, fmt.Errorf("%w: %d segments", errBadStream, count)
	}
	next := int64(-1) // offset after the last batch read
	for range count {
		var err error
		if next, err = readSegment(br, st, next, sink); err != nil {
			return 0, err
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return 0, fmt.Errorf("%w: data after the last segment", errBadStream)
	}
	return max(next, st.LogStart), nil
}

// readSegment reads one framed segment; next is the offset after the
// previous batch (-1 before the first).
func readSegment(br *bufio.Reader, st *fsmState, next int64, sink segmentSink) (int64, error) {
	var h [segmentHead]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, fmt.Errorf("%w: segment head: %w", errBadStream, err)
	}
	base, length := int64(binary.BigEndian.Uint64(h[:])), int64(binary.BigEndian.Uint32(h[8:]))
	if base < 0 || base < next || base >= st.LogEnd || length < batch.HeaderSize || length > math.MaxInt32 {
		return 0, fmt.Errorf("%w: segment at %d of %d bytes after offset %d", errBadStream, base, length, next)
	}
	if err := sink.begin(base); err != nil {
		return 0, err
	}
	for length > 0 {
		b, err := readBatch(br, length)
		if err != nil {
			return 0, err
		}
		hd, err := batch.Validate(b)
		if err != nil {
			return 0, fmt.Errorf("%w: segment %d: %w", errBadStream, base, err)
		}
		if hd.BaseOffset < max(base, next) || hd.LastOffset() >= st.LogEnd || hd.LastOffset()-base > math.MaxInt32 {
			return 0, fmt.Errorf("%w: segment %d: batch [%d, %d] out of place", errBadStream, base, hd.BaseOffset, hd.LastOffset())
		}
		if err := sink.batch(b); err != nil {
			return 0, err
		}
		next = hd.NextOffset()
		length -= int64(len(b))
	}
	return next, nil
}

// readBatch reads one stored batch of at most limit bytes.
func readBatch(br *bufio.Reader, limit int64) ([]byte, error) {
	head, err := br.Peek(batch.HeaderSize)
	if err != nil {
		return nil, fmt.Errorf("%w: batch header: %w", errBadStream, err)
	}
	h, err := batch.ParseHeader(head)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadStream, err)
	}
	size := int64(h.Size())
	if size > limit || size > maxBatchBytes {
		return nil, fmt.Errorf("%w: batch of %d bytes in %d", errBadStream, size, limit)
	}
	b, err := readN(br, size)
	if err != nil {
		return nil, fmt.Errorf("%w: batch: %w", errBadStream, err)
	}
	return b, nil
}

// readN reads exactly n bytes. The buffer grows with the data that
// arrives, so a length field promising more than the stream holds costs
// no more memory than the stream itself.
func readN(r io.Reader, n int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(n, 256<<10)))
	if _, err := io.CopyN(&buf, r, n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// streamSource is a planned snapshot stream over a partition's segment
// files: opened up front, so retention and compaction (which unlink or
// rename over files) cannot change what is sent once the size is known.
type streamSource struct {
	head  []byte
	segs  []plannedSegment
	size  int64
	files []*os.File // every file opened, closed by Close
}

type plannedSegment struct {
	base   int64
	f      *os.File
	length int64
}

// planStream plans the stream of the snapshot st from the partition in
// dir, whose log now starts at start and ends at end. Without the data
// (the log does not reach st.LogEnd, as on a replica that just received
// this snapshot and has yet to install it) the stream is the head only.
//
// The segments sent are those on disk now, which may differ from what
// they were at st.Index: retention may have deleted old ones and
// compaction rewritten sealed ones. Both are local decisions each
// replica makes anyway, so the receiver gets a log that is equivalent
// for every offset still held; the log start sent is the later of the
// two. Only data below st.LogEnd is sent: in the segment holding it the
// walk stops at the batch that reaches st.LogEnd, never reading the
// bytes an append may be writing beyond.
func planStream(dir string, st fsmState, start, end int64) (*streamSource, error) {
	if end < st.LogEnd {
		head := appendStreamHead(nil, &st, false)
		return &streamSource{head: head, size: int64(len(head))}, nil
	}
	s := &streamSource{}
	if err := s.open(dir, st.LogEnd); err != nil {
		s.Close()
		return nil, err
	}
	st.LogStart = min(max(st.LogStart, start), st.LogEnd)
	if err := s.measure(st.LogStart, st.LogEnd); err != nil {
		s.Close()
		return nil, err
	}
	s.head = binary.BigEndian.AppendUint32(appendStreamHead(nil, &st, true), uint32(len(s.segs)))
	s.size = int64(len(s.head))
	for _, p := range s.segs {
		s.size += segmentHead + p.length
	}
	return s, nil
}

// open opens the segment files with a base below logEnd. A file deleted
// between listing and opening was removed by retention (or emptied by
// compaction); the log start read afterwards accounts for it.
func (s *streamSource) open(dir string, logEnd int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("replica: snapshot: %w", err)
	}
	for _, e := range entries {
		base, ok := parseSegmentName(e.Name())
		if !ok || base >= logEnd || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("replica: snapshot: %w", err)
		}
		s.files = append(s.files, f)
		s.segs = append(s.segs, plannedSegment{base: base, f: f})
	}
	slices.SortFunc(s.segs, func(a, b plannedSegment) int { return cmp.Compare(a.base, b.base) })
	return nil
}

// measure drops the segments that lie wholly below start and finds how
// many bytes of each remaining one hold batches below end.
func (s *streamSource) measure(start, end int64) error {
	first := 0
	for first+1 < len(s.segs) && s.segs[first+1].base <= start {
		first++
	}
	kept := s.segs[:0]
	for _, p := range s.segs[first:] {
		n, last, err := measureSegment(p.f, end)
		if err != nil {
			return err
		}
		if n > 0 {
			p.length = n
			kept = append(kept, p)
		}
		if last {
			break
		}
	}
	s.segs = kept
	return nil
}

// measureSegment walks the batch headers of one segment file and returns
// the length of its batches below end, and whether the last of them
// reaches end (then later segments hold nothing below it).
func measureSegment(f *os.File, end int64) (n int64, last bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("replica: snapshot: %w", err)
	}
	var head [batch.HeaderSize]byte
	for n+batch.HeaderSize <= fi.Size() {
		if _, err := f.ReadAt(head[:], n); err != nil {
			return 0, false, fmt.Errorf("replica: snapshot: %s: %w", f.Name(), err)
		}
		h, err := batch.ParseHeader(head[:])
		if err != nil {
			return 0, false, fmt.Errorf("replica: snapshot: %s at %d: %w", f.Name(), n, err)
		}
		if h.BaseOffset >= end {
			return n, true, nil
		}
		if n+int64(h.Size()) > fi.Size() {
			return 0, false, fmt.Errorf("replica: snapshot: %s: batch at %d past the end of the file", f.Name(), h.BaseOffset)
		}
		n += int64(h.Size())
		if h.NextOffset() >= end {
			return n, true, nil
		}
	}
	return n, false, nil
}

// reader returns the stream: exactly size bytes.
func (s *streamSource) reader() io.Reader {
	rs := []io.Reader{bytes.NewReader(s.head)}
	for _, p := range s.segs {
		h := make([]byte, segmentHead)
		binary.BigEndian.PutUint64(h, uint64(p.base))
		binary.BigEndian.PutUint32(h[8:], uint32(p.length))
		rs = append(rs, bytes.NewReader(h), io.NewSectionReader(p.f, 0, p.length))
	}
	return io.MultiReader(rs...)
}

// Close closes the segment files.
func (s *streamSource) Close() error {
	var err error
	for _, f := range s.files {
		err = errors.Join(err, f.Close())
	}
	s.files = nil
	return err
}

// parseSegmentName returns the base offset of a "<20 digits>.log" segment
// file name (Kafka's naming, which partlog uses).
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ".log")
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

func segmentFileName(base int64) string { return fmt.Sprintf("%020d.log", base) }
