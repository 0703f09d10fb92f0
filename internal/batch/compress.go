package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is the compression codec in the low three attribute bits.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's name as Kafka's compression.type spells it.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// MaxUncompressedBytes bounds the decompressed size of one batch's records.
// Kafka has no such limit, but a broker that decompresses untrusted input
// (during compaction) must not let a small batch inflate without bound.
var MaxUncompressedBytes = 256 << 20

// Pools of stateful codecs. The broker decompresses only while compacting,
// but then batch after batch, so reusing decoder state matters.
var (
	gzipReaders sync.Pool // *gzip.Reader
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	lz4Writers  = sync.Pool{New: func() any {
		// Kafka's Java client uses 64 KiB blocks; the library default of
		// 4 MiB would make every pooled writer hold megabytes.
		w := lz4.NewWriter(nil)
		w.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
		return w
	}}

	// zstd's Decoder and Encoder are safe for concurrent DecodeAll and
	// EncodeAll and pool their internal state, so one of each suffices.
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(uint64(MaxUncompressedBytes)))
	})
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	})
)

// decompress returns the uncompressed records of a batch body.
func decompress(c Codec, src []byte) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		out, err = gunzip(src)
	case CodecSnappy:
		out, err = unsnappy(src)
	case CodecLZ4:
		out, err = unlz4(src)
	case CodecZstd:
		out, err = unzstd(src)
	default:
		return nil, fmt.Errorf("%w: %w %d", ErrCorrupt, ErrUnsupportedCodec, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, c, err)
	}
	return out, nil
}

// readLimited drains r, failing once more than MaxUncompressedBytes arrive.
// sizeHint presizes the buffer (compressed size times a typical ratio).
func readLimited(r io.Reader, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(sizeHint, MaxUncompressedBytes)))
	n, err := buf.ReadFrom(io.LimitReader(r, int64(MaxUncompressedBytes)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(MaxUncompressedBytes) {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

func gunzip(src []byte) ([]byte, error) {
	var zr *gzip.Reader
	if v := gzipReaders.Get(); v != nil {
		zr = v.(*gzip.Reader)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, err
		}
	} else {
		var err error
		if zr, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
			return nil, err
		}
	}
	defer gzipReaders.Put(zr)
	return readLimited(zr, 4*len(src))
}

func unlz4(src []byte) ([]byte, error) {
	zr := lz4Readers.Get().(*lz4.Reader)
	defer lz4Readers.Put(zr)
	zr.Reset(bytes.NewReader(src))
	return readLimited(zr, 4*len(src))
}

func unzstd(src []byte) ([]byte, error) {
	d, err := zstdDecoder()
	if err != nil {
		return nil, err
	}
	return d.DecodeAll(src, nil)
}

// xerialMagic starts the framing Java's snappy-java (SnappyOutputStream)
// writes: magic, then version and compatible version (int32 each), then
// chunks of int32 length + raw snappy block. Other clients (librdkafka,
// franz-go) write one raw block; Kafka accepts both.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// unsnappy decodes xerial-framed or raw snappy, checking every block's
// declared size against MaxUncompressedBytes before allocating for it.
func unsnappy(src []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src)
	}
	if len(src) < xerialHeaderSize {
		return nil, fmt.Errorf("xerial header truncated")
	}
	var out []byte
	for p := xerialHeaderSize; p < len(src); {
		if len(src)-p < 4 {
			return nil, fmt.Errorf("xerial chunk length truncated")
		}
		n := int(binary.BigEndian.Uint32(src[p:]))
		p += 4
		if n > len(src)-p {
			return nil, fmt.Errorf("xerial chunk of %d bytes, %d left", n, len(src)-p)
		}
		var err error
		if out, err = snappyBlock(out, src[p:p+n]); err != nil {
			return nil, err
		}
		p += n
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst.
func snappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > MaxUncompressedBytes-len(dst) {
		return nil, ErrTooLarge
	}
	dst = growLen(dst, n)
	if _, err := s2.Decode(dst[len(dst)-n:], block); err != nil {
		return nil, err
	}
	return dst, nil
}

// growLen extends b by n bytes, reallocating if needed.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// compress appends the compressed form of raw to dst.
func compress(dst []byte, c Codec, raw []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, raw...), nil
	case CodecGzip:
		return streamCompress(dst, raw, &gzipWriters)
	case CodecSnappy:
		// Kafka's Java producer writes xerial framing; writing the same
		// keeps any consumer that reads Java-produced data happy.
		return append(dst, xerial.Encode(nil, raw)...), nil
	case CodecLZ4:
		return streamCompress(dst, raw, &lz4Writers)
	case CodecZstd:
		e, err := zstdEncoder()
		if err != nil {
			return nil, err
		}
		return e.EncodeAll(raw, dst), nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnsupportedCodec, c)
}

// resetWriter is the common shape of pooled gzip and lz4 writers.
type resetWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// appendWriter lets a stream compressor append to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func streamCompress(dst, raw []byte, pool *sync.Pool) ([]byte, error) {
	zw := pool.Get().(resetWriter)
	defer pool.Put(zw)
	out := &appendWriter{b: dst}
	zw.Reset(out)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.b, nil
}
