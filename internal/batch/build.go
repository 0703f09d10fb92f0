package batch

import (
	"fmt"
	"math"
	"sync"
)

// BuildOptions describe the header of a batch to Build. The zero value is
// not a sensible producer identity: use DefaultBuildOptions (ProducerID,
// ProducerEpoch and BaseSequence -1) for batches without one.
type BuildOptions struct {
	BaseOffset  int64
	LeaderEpoch int32
	// Codec compresses the records.
	Codec Codec
	// Attributes carries the non-codec attribute bits: AttrLogAppendTime,
	// AttrTransactional, AttrControl, AttrDeleteHorizon. Codec bits here
	// are ignored.
	Attributes int16
	// BaseTimestamp is what every record's TimestampDelta is relative to
	// (the delete horizon when AttrDeleteHorizon is set).
	BaseTimestamp int64
	// MaxTimestamp is used as is when AttrLogAppendTime is set or there
	// are no records; otherwise it is computed from the records.
	MaxTimestamp int64
	// LastOffsetDelta is a floor for the batch's offset range. Compaction
	// passes the original value so a batch keeps its last offset (and so
	// its producer's last sequence) even when its last record is removed.
	LastOffsetDelta int32
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
}

// DefaultBuildOptions returns options for an uncompressed batch at offset
// 0 with no producer identity.
func DefaultBuildOptions() BuildOptions {
	return BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
}

// rawPool recycles the buffers compressed batches are encoded into before
// compression.
var rawPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// Build encodes recs into a new batch with a correct length and CRC.
// Records must be in offset order with OffsetDelta >= 0.
func Build(opts BuildOptions, recs []Record) ([]byte, error) {
	if opts.Codec < CodecNone || opts.Codec > CodecZstd {
		return nil, fmt.Errorf("%w %d", ErrUnsupportedCodec, opts.Codec)
	}
	if len(recs) > math.MaxInt32 {
		return nil, fmt.Errorf("batch: %d records do not fit in one batch", len(recs))
	}
	if len(recs) == 0 {
		// An empty batch (what compaction leaves of an idempotent
		// producer's batch) is a bare header, so it must not name a codec:
		// clients would try to decompress zero bytes and fail. Kafka writes
		// these uncompressed too.
		opts.Codec = CodecNone
	}
	h := Header{
		BaseOffset:      opts.BaseOffset,
		LeaderEpoch:     opts.LeaderEpoch,
		Magic:           Magic,
		Attributes:      opts.Attributes&^AttrCodecMask | int16(opts.Codec),
		LastOffsetDelta: opts.LastOffsetDelta,
		BaseTimestamp:   opts.BaseTimestamp,
		MaxTimestamp:    opts.MaxTimestamp,
		ProducerID:      opts.ProducerID,
		ProducerEpoch:   opts.ProducerEpoch,
		BaseSequence:    opts.BaseSequence,
		NumRecords:      int32(len(recs)),
	}
	if err := fillFromRecords(&h, recs); err != nil {
		return nil, err
	}

	out := make([]byte, HeaderSize, HeaderSize+estimateSize(recs))
	var err error
	switch {
	case opts.Codec == CodecNone:
		for i := range recs {
			out = appendRecord(out, &recs[i])
		}
	default:
		bp := rawPool.Get().(*[]byte)
		raw := (*bp)[:0]
		for i := range recs {
			raw = appendRecord(raw, &recs[i])
		}
		out, err = compress(out, opts.Codec, raw)
		*bp = raw
		rawPool.Put(bp)
		if err != nil {
			return nil, fmt.Errorf("batch: compress %s: %w", opts.Codec, err)
		}
	}
	if len(out)-lengthFieldEnd > math.MaxInt32 {
		return nil, fmt.Errorf("batch: encoded batch of %d bytes too large", len(out))
	}
	h.Length = int32(len(out) - lengthFieldEnd)
	encodeHeader(out, h)
	UpdateCRC(out)
	return out, nil
}

// fillFromRecords derives LastOffsetDelta and MaxTimestamp from the
// records and rejects records out of order.
func fillFromRecords(h *Header, recs []Record) error {
	prev := int32(-1)
	maxTS := int64(math.MinInt64)
	for i := range recs {
		r := &recs[i]
		if r.OffsetDelta <= prev {
			return fmt.Errorf("batch: record %d has offset delta %d after %d", i, r.OffsetDelta, prev)
		}
		prev = r.OffsetDelta
		maxTS = max(maxTS, h.BaseTimestamp+r.TimestampDelta)
	}
	h.LastOffsetDelta = max(h.LastOffsetDelta, prev, 0)
	if len(recs) > 0 && !h.LogAppendTime() {
		h.MaxTimestamp = maxTS
	}
	return nil
}

// estimateSize is the uncompressed encoded size of recs, used to size the
// output buffer once.
func estimateSize(recs []Record) int {
	n := 0
	for i := range recs {
		s := recordBodySize(&recs[i])
		n += s + varintLen(int64(s))
	}
	return n
}
