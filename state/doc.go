// Package state holds the local state of stream tasks: byte-level sorted
// key-value stores, the write-back record cache in front of them and the
// checkpoint files that make restarts cheap.
//
// # Stores
//
// [Store] is the one interface every store implements: Get, Put, Delete, sorted
// Range scans with an explicit [Iterator], atomic Write batches, DeleteRange,
// Flush and Close. It works on bytes so that the runtime, the changelog and the
// `weir state` tooling share one implementation regardless of the user's types.
// Typed views pair a Store with serdes, so they belong in packages that import
// both (state itself imports no other weir package). Two implementations:
//
//   - [OpenLevelDB], the default: github.com/syndtr/goleveldb under
//     state.dir/<app-id>/<task>/<store>. goleveldb's types never appear in this
//     package's API, so another engine (Pebble) can replace it behind Store.
//   - [NewMemory]: an ordered in-memory store, rebuilt from the changelog on
//     every start.
//
// Get returns (nil, nil) for an absent key rather than an ErrNotFound: absence
// is the common, expected answer for an aggregation reading a key for the
// first time, and v == nil is the cheapest test for it.
//
// Package statetest holds the conformance suite every Store must pass.
//
// # The record cache
//
// [Cache] is Kafka Streams' record cache: a write-back LRU cache that
// collapses repeated updates of a key between commits, so that the changelog
// and downstream operators see one update per key per commit interval instead
// of one per input record. It is itself a Store. Its flushes hand each update
// with the store's previous value to a callback, which is where the runtime
// produces changelog records and forwards old/new change pairs. See [Cache]
// for the flush order and its reasons.
//
// # Durability and recovery
//
// A store is a materialized cache of its changelog topic, and the changelog is
// the source of truth. A commit runs: flush the caches (changelog records go
// out), wait for the changelog acks, Flush the stores (fsync), write the
// [Checkpoint], commit the input offsets. After a crash, the checkpoint says
// where each store's changelog must be replayed from; a store found corrupt
// ([ErrCorrupt]) or without a checkpoint entry is deleted and rebuilt from the
// start of its changelog.
//
// Under exactly-once the runtime puts a [TxnStore] in front of each store: the
// writes of the open Kafka transaction stay in an in-memory overlay (reads see
// them, deletions are tombstones, Range merges overlay and store) until the
// transaction commits, and only then reach LevelDB, in one atomic batch, with
// the checkpoint written after. A crash or an abort drops the overlay, so the
// store on disk never holds an uncommitted write and keeps a usable checkpoint:
// restoration replays only the committed changelog tail (KIP-892's idea).
//
// Checkpoint files use Kafka Streams' text format, so operators who know
// Kafka's .checkpoint files can read ours.
//
// # Metadata files
//
// Stores hold bytes, so a tool reading a stopped application's state
// directory needs to know how to decode them. Next to each store's directory
// the runtime writes a [Meta] as <task dir>/<store>.meta.json ([MetaPath],
// [WriteMeta]): the store's kind, the names of its key and value serdes, a
// window store's window size and the changelog topic. `weir state` reads
// them with [ReadMeta].
package state
