// Package batch encodes and decodes Kafka RecordBatch v2 (magic 2), the unit
// in which Kafka clients produce records, brokers store them on disk and
// consumers fetch them.
//
// The broker treats batches as opaque bytes on its hot path: a produce
// request is split into batches ([Split]), each is checked with [Validate]
// (bounds, magic and CRC-32C only, no record decoding), stamped with its
// offset and leader epoch in place ([SetBaseOffset], [SetLeaderEpoch]; both
// fields lie outside the CRC, so no checksum is recomputed) and written to the
// log unchanged. Fetch returns the stored bytes as they are.
//
// Decoding individual records ([Records], [Each]) and building new batches
// ([Build]) is needed only off the hot path: log compaction rewrites batches
// without the superseded records, and internal topics (__consumer_offsets,
// changelogs written by the broker itself) are produced by the broker.
// Compressed batches (gzip, snappy with or without xerial framing, lz4 frame,
// zstd) are decompressed with pooled decoders and bounded by
// [MaxUncompressedBytes] so that a hostile batch cannot exhaust memory.
//
// Decoded keys, values and header values alias the batch (uncompressed) or a
// fresh decompression buffer (compressed); callers that keep them past the
// lifetime of the input must copy them.
package batch
