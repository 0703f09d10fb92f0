// Package broker is weir's Kafka-wire-compatible broker.
//
// A Broker accepts Kafka protocol connections, decodes requests with
// franz-go's kmsg after checking each API key and version against the
// advertised table in versions.go, and answers them in order. Each API key
// has its own handler file named after the key (00_produce.go, 01_fetch.go,
// ...), in the style of franz-go's kfake.
//
// Partition data lives on disk in Kafka's own format (package
// internal/partlog): RecordBatch v2 segments exactly as produced, with sparse
// offset and time indexes. A produce is acknowledged only after the batch is
// fsynced; concurrent produces share one fsync (group commit). The high
// watermark is the durable offset, so a consumer never reads a record that a
// crash could take back.
//
// Consumer groups are served by internal/group; their commits are records in
// the ordinary, compacted __consumer_offsets topic in Kafka's key/value
// encoding, replayed at startup.
//
// Metadata has one home on every broker, a single node included: the
// image of the controller quorum (internal/controller), of which a single
// node is the only voter. Handlers ask the broker's cluster for it and
// never branch on the number of nodes. A partition this broker alone holds
// keeps its log without Raft; any other is replicated by its own Raft group
// (internal/replica).
//
// Start embeds a broker in-process; `weir broker` runs one as a process.
package broker
