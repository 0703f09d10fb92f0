package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the fixed size of a v2 batch header, from baseOffset through
// recordCount.
const HeaderSize = 61

// Byte offsets of the header fields. Length counts the bytes after the
// length field itself, so a batch occupies lengthFieldEnd+Length bytes.
const (
	offBaseOffset      = 0
	offLength          = 8
	lengthFieldEnd     = 12
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21 // the CRC covers everything from here to the end
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57
)

// Magic is the only message format version this package supports; Kafka 4
// removed v0 and v1.
const Magic = 2

// Attribute bits of a v2 batch.
const (
	AttrCodecMask     int16 = 0x07
	AttrLogAppendTime int16 = 1 << 3 // timestampType: maxTimestamp was set by the broker
	AttrTransactional int16 = 1 << 4
	AttrControl       int16 = 1 << 5 // commit/abort markers, never delivered to applications
	AttrDeleteHorizon int16 = 1 << 6 // baseTimestamp holds the tombstone delete horizon (KIP-534)
)

// minRecordSize is the smallest encoding of one record: length, attributes,
// timestampDelta, offsetDelta, keyLength, valueLength and headerCount each
// take at least one byte. It bounds how many records an uncompressed body
// can hold.
const minRecordSize = 7

var (
	// ErrCorrupt reports a batch that fails a structural or checksum check.
	ErrCorrupt = errors.New("batch: corrupt record batch")
	// ErrTruncated reports input that ends inside a batch. Errors wrapping
	// it also wrap ErrCorrupt.
	ErrTruncated = errors.New("batch: truncated record batch")
	// ErrUnsupportedMagic reports a message format other than v2.
	ErrUnsupportedMagic = errors.New("batch: unsupported message format version")
	// ErrUnsupportedCodec reports a compression codec id above zstd.
	ErrUnsupportedCodec = errors.New("batch: unsupported compression codec")
	// ErrTooLarge reports a batch whose records would decompress to more
	// than MaxUncompressedBytes.
	ErrTooLarge = errors.New("batch: uncompressed records too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed-size header of a v2 batch.
type Header struct {
	BaseOffset      int64
	Length          int32 // bytes after the Length field
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Codec returns the compression codec of the records.
func (h Header) Codec() Codec { return Codec(h.Attributes & AttrCodecMask) }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports whether the batch holds transaction markers.
func (h Header) Control() bool { return h.Attributes&AttrControl != 0 }

// LogAppendTime reports whether MaxTimestamp is the broker's append time,
// which then applies to every record in the batch.
func (h Header) LogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// HasDeleteHorizon reports whether the cleaner stamped a tombstone delete
// horizon into BaseTimestamp (KIP-534).
func (h Header) HasDeleteHorizon() bool { return h.Attributes&AttrDeleteHorizon != 0 }

// DeleteHorizon returns the delete horizon in milliseconds, if set.
func (h Header) DeleteHorizon() (int64, bool) {
	return h.BaseTimestamp, h.HasDeleteHorizon()
}

// HasProducerID reports whether the batch was written by an idempotent or
// transactional producer.
func (h Header) HasProducerID() bool { return h.ProducerID >= 0 }

// LastOffset is the offset of the last record the batch was created with.
// After compaction the record itself may be gone but the offset stays.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset following the batch.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// LastSequence is the producer sequence number of the last record, wrapping
// like Kafka's at MaxInt32.
func (h Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// Size is the number of bytes the batch occupies on the wire and on disk.
func (h Header) Size() int { return lengthFieldEnd + int(h.Length) }

// ParseHeader decodes the header of the batch at the start of b. It checks
// that the header is present, that the length field is plausible and that the
// format is v2; it does not require the whole batch to be present (compare
// Size with len(b)) and does not check the CRC (see Validate).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < offMagic+1 {
		return Header{}, fmt.Errorf("%w: %w: %d bytes, need %d for the header", ErrCorrupt, ErrTruncated, len(b), HeaderSize)
	}
	if m := int8(b[offMagic]); m != Magic {
		return Header{}, fmt.Errorf("%w %d", ErrUnsupportedMagic, m)
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %w: %d bytes, need %d for the header", ErrCorrupt, ErrTruncated, len(b), HeaderSize)
	}
	h := decodeHeader(b)
	if h.Length < HeaderSize-lengthFieldEnd {
		return h, fmt.Errorf("%w: batch length %d shorter than the header", ErrCorrupt, h.Length)
	}
	return h, nil
}

// decodeHeader reads the fields of a header known to be at least HeaderSize
// bytes long.
func decodeHeader(b []byte) Header {
	be := binary.BigEndian
	return Header{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		Length:          int32(be.Uint32(b[offLength:])),
		LeaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:      int32(be.Uint32(b[offNumRecords:])),
	}
}

// encodeHeader writes h into the first HeaderSize bytes of b, CRC included
// as given.
func encodeHeader(b []byte, h Header) {
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(b[offLength:], uint32(h.Length))
	be.PutUint32(b[offLeaderEpoch:], uint32(h.LeaderEpoch))
	b[offMagic] = byte(h.Magic)
	be.PutUint32(b[offCRC:], h.CRC)
	be.PutUint16(b[offAttributes:], uint16(h.Attributes))
	be.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(b[offBaseTimestamp:], uint64(h.BaseTimestamp))
	be.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(b[offNumRecords:], uint32(h.NumRecords))
}

// Validate fully checks one batch: b must hold exactly one v2 batch whose
// CRC-32C matches and whose counts are consistent. It does not decompress or
// decode records. Every error wraps ErrCorrupt except an unsupported magic,
// which wraps ErrUnsupportedMagic.
//
// Validate accepts what compaction may leave behind (fewer records than the
// offset range, even none); use [Header.CheckProduce] for the stricter rules
// a producer's batch must obey.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		if h.Size() > len(b) {
			return h, fmt.Errorf("%w: %w: batch of %d bytes in %d", ErrCorrupt, ErrTruncated, h.Size(), len(b))
		}
		return h, fmt.Errorf("%w: batch of %d bytes followed by %d more", ErrCorrupt, h.Size(), len(b)-h.Size())
	}
	if crc := crc32.Checksum(b[offAttributes:], castagnoli); crc != h.CRC {
		return h, fmt.Errorf("%w: CRC mismatch: header %08x, computed %08x", ErrCorrupt, h.CRC, crc)
	}
	return h, h.checkCounts()
}

// checkCounts rejects headers whose counts contradict each other or the
// body size.
func (h Header) checkCounts() error {
	switch {
	case h.Codec() > CodecZstd:
		return fmt.Errorf("%w: %w %d", ErrCorrupt, ErrUnsupportedCodec, h.Codec())
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorrupt, h.LastOffsetDelta)
	case h.NumRecords < 0:
		return fmt.Errorf("%w: negative record count %d", ErrCorrupt, h.NumRecords)
	case int64(h.NumRecords) > int64(h.LastOffsetDelta)+1:
		return fmt.Errorf("%w: %d records in an offset range of %d", ErrCorrupt, h.NumRecords, int64(h.LastOffsetDelta)+1)
	case h.Codec() == CodecNone && int64(h.NumRecords)*minRecordSize > int64(h.Size()-HeaderSize):
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, h.NumRecords, h.Size()-HeaderSize)
	}
	return nil
}

// CheckProduce applies the rules Kafka enforces on batches arriving from
// producers, beyond Validate: at least one record, one record per offset,
// and no control batches (only the transaction coordinator writes those).
func (h Header) CheckProduce() error {
	switch {
	case h.NumRecords <= 0:
		return fmt.Errorf("%w: produced batch has %d records", ErrCorrupt, h.NumRecords)
	case int64(h.NumRecords) != int64(h.LastOffsetDelta)+1:
		return fmt.Errorf("%w: %d records but lastOffsetDelta %d", ErrCorrupt, h.NumRecords, h.LastOffsetDelta)
	case h.Control():
		return fmt.Errorf("%w: producers may not write control batches", ErrCorrupt)
	}
	return nil
}

// Split cuts a produce request's records blob into batches without copying;
// each returned slice has its capacity clipped to the batch. Only headers are
// checked; validate each batch before use. Trailing bytes that do not form a
// whole batch are an error wrapping ErrCorrupt (and ErrTruncated); the
// batches before the bad bytes are returned along with the error.
func Split(records []byte) ([][]byte, error) {
	var out [][]byte
	for len(records) > 0 {
		h, err := ParseHeader(records)
		if err != nil {
			return out, err
		}
		n := h.Size()
		if n > len(records) {
			return out, fmt.Errorf("%w: %w: batch of %d bytes, %d left", ErrCorrupt, ErrTruncated, n, len(records))
		}
		out = append(out, records[:n:n])
		records = records[n:]
	}
	return out, nil
}

// SetBaseOffset stamps the batch's base offset in place. The field is not
// covered by the CRC, so the batch stays valid.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetLeaderEpoch stamps the partition leader epoch in place; not covered by
// the CRC.
func SetLeaderEpoch(b []byte, e int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e))
}

// SetLogAppendTime marks the batch as LogAppendTime, sets its maxTimestamp to
// ts and recomputes the CRC, as a broker does for topics with
// message.timestamp.type=LogAppendTime.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := int16(be.Uint16(b[offAttributes:])) | AttrLogAppendTime
	be.PutUint16(b[offAttributes:], uint16(attrs))
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	UpdateCRC(b)
}

// UpdateCRC recomputes the CRC of a whole batch after its covered fields
// changed.
func UpdateCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}
