package partlog

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/weir-io/weir/internal/batch"
)

// errPastEnd means a requested range extends past the readable end of a
// segment.
var errPastEnd = errors.New("partlog: read past segment end")

// spanReader reads a segment through a window buffer so that walking
// consecutive batches costs one pread per window rather than one per batch.
type spanReader struct {
	f     *os.File
	end   int64 // readable end of the segment
	chunk int   // minimum bytes per pread
	start int64 // file position of buf[0]
	buf   []byte
}

func newSpanReader(f *os.File, end int64, chunk int) *spanReader {
	return &spanReader{f: f, end: end, chunk: max(chunk, batch.HeaderSize)}
}

// peek returns the n bytes at file position pos. The slice aliases the
// window and is valid until the next call.
func (r *spanReader) peek(pos int64, n int) ([]byte, error) {
	if pos < 0 || n < 0 || pos+int64(n) > r.end {
		return nil, errPastEnd
	}
	if pos >= r.start && pos+int64(n) <= r.start+int64(len(r.buf)) {
		off := pos - r.start
		return r.buf[off : off+int64(n)], nil
	}
	if err := r.fill(pos, n); err != nil {
		return nil, err
	}
	return r.buf[:n], nil
}

// span returns a new buffer holding exactly the n bytes at pos, reusing
// what the window already holds and reading the rest with one pread.
func (r *spanReader) span(pos int64, n int) ([]byte, error) {
	if pos < 0 || n < 0 || pos+int64(n) > r.end {
		return nil, errPastEnd
	}
	out := make([]byte, n)
	have := 0
	if winEnd := r.start + int64(len(r.buf)); pos >= r.start && pos < winEnd {
		have = copy(out, r.buf[pos-r.start:])
	}
	if have < n {
		got, err := r.f.ReadAt(out[have:], pos+int64(have))
		if got < n-have {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("partlog: read %s at %d: %w", r.f.Name(), pos+int64(have), err)
		}
	}
	return out, nil
}

// windowSpan returns the batches from pos that Read returns (those with
// a base offset below limit, within maxBytes; pos holds the first batch
// wanted) when the window holds all of them and the header of the batch
// after: the common case of a consumer at the log's tail. The slice
// aliases the window, which fill never reuses. ok is false when the
// window does not settle it; the caller then reads the span.
func (r *spanReader) windowSpan(pos int64, maxBytes int, limit int64) ([]byte, bool) {
	if pos < r.start || pos > r.start+int64(len(r.buf)) {
		return nil, false
	}
	win := r.buf[pos-r.start:]
	p := 0
	for {
		if pos+int64(p) == r.end {
			break // the segment's end: nothing follows
		}
		if p+batch.HeaderSize > len(win) {
			return nil, false
		}
		h, err := batch.ParseHeader(win[p:])
		if err != nil {
			return nil, false // let the slow path report it
		}
		n := h.Size()
		if h.BaseOffset >= limit || p+n > maxBytes {
			// A first batch larger than maxBytes is returned whole
			// (KIP-74); that, and anything odd, is the slow path's.
			if p == 0 && h.BaseOffset < limit {
				return nil, false
			}
			break
		}
		if p+n > len(win) {
			return nil, false
		}
		p += n
	}
	if p == 0 {
		return nil, true
	}
	return win[:p:p], true
}

// fill reads at least n bytes (and up to the chunk size) at pos into the
// window. The old window's memory is not reused, so slices handed out
// earlier stay valid.
func (r *spanReader) fill(pos int64, n int) error {
	want := int(min(int64(max(n, r.chunk)), r.end-pos))
	buf := make([]byte, want)
	got, err := r.f.ReadAt(buf, pos)
	if got < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("partlog: read %s at %d: %w", r.f.Name(), pos, err)
	}
	r.start, r.buf = pos, buf[:got]
	return nil
}

// header parses the batch header at pos and checks that the whole batch
// lies within the readable end.
func (r *spanReader) header(pos int64) (batch.Header, error) {
	if left := r.end - pos; left < batch.HeaderSize {
		return batch.Header{}, fmt.Errorf("partlog: %s at position %d: %w: %w: %d bytes left, short of a batch header",
			r.f.Name(), pos, batch.ErrCorrupt, batch.ErrTruncated, left)
	}
	b, err := r.peek(pos, batch.HeaderSize)
	if err != nil {
		return batch.Header{}, err
	}
	h, err := batch.ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("partlog: %s at position %d: %w", r.f.Name(), pos, err)
	}
	if pos+int64(h.Size()) > r.end {
		return h, fmt.Errorf("partlog: %s at position %d: %w: batch of %d bytes past the end", r.f.Name(), pos, batch.ErrCorrupt, h.Size())
	}
	return h, nil
}
