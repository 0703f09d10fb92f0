package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Record is one decoded record. Key and Value are nil for Kafka null, and
// an empty non-nil slice for an empty byte string. Offsets and timestamps
// are deltas against the batch's BaseOffset and BaseTimestamp.
type Record struct {
	OffsetDelta    int32
	TimestampDelta int64
	Key, Value     []byte
	Headers        []RecordHeader
	Attributes     int8 // unused by Kafka so far; kept for round trips
}

// RecordHeader is one record header. Value is nil for null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Records decodes (and if needed decompresses) all records of one batch.
// b must hold exactly one batch; the CRC is not checked (call Validate for
// untrusted input). Keys and values alias b or the decompression buffer.
func Records(b []byte) ([]Record, error) {
	var recs []Record
	err := Each(b, func(r *Record) error {
		if recs == nil {
			recs = make([]Record, 0, 8)
		}
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Each calls fn for every record of one batch, in order, without
// allocating a slice of records. The *Record is reused between calls, but
// its Key, Value and Headers are not, so they may be retained. An error from
// fn stops the iteration and is returned as is.
func Each(b []byte, fn func(r *Record) error) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Size() != len(b) {
		return fmt.Errorf("%w: batch of %d bytes in a buffer of %d", ErrCorrupt, h.Size(), len(b))
	}
	if err := h.checkCounts(); err != nil {
		return err
	}
	if h.NumRecords == 0 && len(b) == HeaderSize {
		return nil // an empty batch has no compressed payload to decode
	}
	body, err := decompress(h.Codec(), b[HeaderSize:])
	if err != nil {
		return err
	}
	if int64(h.NumRecords)*minRecordSize > int64(len(body)) {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, h.NumRecords, len(body))
	}
	d := decoder{b: body}
	var r Record
	for i := int32(0); i < h.NumRecords; i++ {
		if err := d.record(&r); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, err)
		}
		if r.OffsetDelta < 0 || r.OffsetDelta > h.LastOffsetDelta {
			return fmt.Errorf("%w: record %d: offset delta %d outside [0, %d]", ErrCorrupt, i, r.OffsetDelta, h.LastOffsetDelta)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(d.b))
	}
	return nil
}

// decoder consumes zig-zag varints and length-prefixed bytes from b.
type decoder struct{ b []byte }

type decodeError string

func (e decodeError) Error() string { return string(e) }

const (
	errShort   = decodeError("unexpected end of record")
	errVarint  = decodeError("malformed varint")
	errLength  = decodeError("invalid length")
	errTrailer = decodeError("record length does not match its fields")
)

func (d *decoder) varlong() (int64, error) {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		if n == 0 {
			return 0, errShort
		}
		return 0, errVarint
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) varint() (int32, error) {
	v, err := d.varlong()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, errVarint
	}
	return int32(v), nil
}

// bytes reads a varint length then that many bytes; length -1 is null.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	switch {
	case n == -1:
		return nil, nil
	case n < -1:
		return nil, errLength
	case int(n) > len(d.b):
		return nil, errShort
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v, nil
}

// record decodes one length-prefixed record into r. The fields must use up
// exactly the declared length, as Kafka requires.
func (d *decoder) record(r *Record) error {
	n, err := d.varint()
	if err != nil {
		return err
	}
	if n < minRecordSize-1 || int(n) > len(d.b) {
		return errLength
	}
	rd := decoder{b: d.b[:n]}
	d.b = d.b[n:]
	return rd.fields(r)
}

func (d *decoder) fields(r *Record) error {
	if len(d.b) < 1 {
		return errShort
	}
	r.Attributes = int8(d.b[0])
	d.b = d.b[1:]
	var err error
	if r.TimestampDelta, err = d.varlong(); err != nil {
		return err
	}
	if r.OffsetDelta, err = d.varint(); err != nil {
		return err
	}
	if r.Key, err = d.bytes(); err != nil {
		return err
	}
	if r.Value, err = d.bytes(); err != nil {
		return err
	}
	if r.Headers, err = d.headers(); err != nil {
		return err
	}
	if len(d.b) != 0 {
		return errTrailer
	}
	return nil
}

func (d *decoder) headers() ([]RecordHeader, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	// Each header takes at least two bytes; this bounds the allocation.
	if n < 0 || int(n) > len(d.b)/2 {
		return nil, errLength
	}
	if n == 0 {
		return nil, nil
	}
	hs := make([]RecordHeader, n)
	for i := range hs {
		k, err := d.bytes()
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, errLength // header keys are non-null strings
		}
		hs[i].Key = string(k)
		if hs[i].Value, err = d.bytes(); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

// appendRecord appends the wire form of r, length prefix included.
func appendRecord(dst []byte, r *Record) []byte {
	dst = binary.AppendVarint(dst, int64(recordBodySize(r)))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

func appendBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// recordBodySize is the encoded size of r after its length prefix.
func recordBodySize(r *Record) int {
	n := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return n
}

func bytesLen(v []byte) int {
	if v == nil {
		return 1
	}
	return varintLen(int64(len(v))) + len(v)
}

// varintLen is the size of v as a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
