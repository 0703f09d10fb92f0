// Package replica replicates one partition with its own hashicorp/raft
// group (DESIGN.md "Replication", layer 2; the Redpanda model): the Raft
// leader is the partition leader, the Raft term is the Kafka leader epoch,
// and the offset the state machine has applied up to is the high
// watermark. This is the first step: one partition per group, tested with
// raft's in-memory transport and stores; the broker does not use it yet.
//
// # Entries
//
// A Raft command is one produced RecordBatch v2, prefixed by a one-byte
// EntryType tag (EntryBatch) so that later kinds of entries (DeleteRecords
// moving the log start, transaction markers) fit without a format change.
// The leader validates the batch (batch.Validate, CheckProduce) and applies
// broker-side rewrites (LogAppendTime) before proposing; replicas append the
// bytes as they are. Entries are whole batches, never records: the
// measurements in DESIGN.md show Raft keeps up only with large entries and
// many Applies in flight.
//
// # State machine
//
// FSM.Apply is broker/partition.go's append made deterministic: decode, run
// producer.Table.Check (duplicates are answered with the original offset,
// refused batches append nothing), partlog.Log.Append at the log end, then
// Table.Record. The batch's partition leader epoch is stamped with the
// entry's Raft term; the base offset is stamped by partlog. Both fields are
// outside the CRC and the same on every replica, so replicas that apply the
// same committed entries hold byte-identical segment files (the tests
// compare them). Nothing depends on the clock: segment rolls are decided by
// sizes and the batches' own timestamps. Raft's non-command entries
// (configuration, no-op, barrier) do not touch the log. The leader's
// raft.ApplyFuture carries a Result {Base, Duplicate, Err}.
//
// A failed append, or a replayed entry that does not match the stored
// batch, makes the FSM refuse everything after it (ErrDiverged, sticky):
// skipping an entry another replica applied would silently fork the logs.
// Such a replica has to be rebuilt from the leader.
//
// # Durability and restart
//
// The Raft log is the durable copy: an entry is acknowledged once a quorum
// has it in its Raft log store, so the FSM does not fsync the partition
// log per entry. It fsyncs lazily, when raft takes a snapshot and on Close,
// and then writes a checkpoint file (replica.applied: last applied Raft
// index and the log end it left, written atomically after the fsync).
//
// On restart OpenFSM rebuilds the producer table from the batch headers
// below the checkpoint's log end (as broker/partition.go loadProducers
// does) and raft replays its log. Entries up to the checkpoint index are
// skipped. The partition log may hold more than the checkpoint covers
// (appends that reached the disk anyway, a prefix of what was applied since,
// since partlog recovery cuts at the first torn batch). Later entries are
// re-decided exactly as before; where the decision is an append below the
// local log end, the FSM checks that the stored batch is byte-identical
// and moves on instead of appending. So no per-entry index needs fsyncing
// and nothing is appended twice. HighWatermark during replay is the
// re-applied offset, not the local log end.
//
// # Snapshots
//
// The segment files are the state, so a snapshot is only a manifest (Raft
// index, log start, log end) written after the log is fsynced and
// checkpointed up to it; producer state is rebuilt from batch headers on
// Restore rather than serialized. Restore on a replica that already covers
// the snapshot (raft restoring at startup behind the checkpoint) changes
// nothing; on a replica whose local log reaches the manifest's log end it
// adopts the manifest. A follower that is further behind needs the segment
// files streamed from the leader, which is not implemented: Restore returns
// ErrSnapshotStreaming (the InstallSnapshot RPC fails and the leader
// tries again later). Until then, keep
// TrailingLogs large enough that followers catch up from the Raft log.
//
// # Group
//
// Group wraps raft.Raft and the FSM. Propose applies a batch on the leader
// and waits for it to be applied; ErrNotLeader / leadership transfer map to
// a determinate *NotLeaderError, ErrLeadershipLost (and shutdown, restore)
// to an indeterminate one: the entry may still commit under the next
// leader, and retrying is safe for idempotent producers because the retry
// is answered with the original offset. Ready issues a Raft barrier so a
// new leader serves nothing until an entry of its own term is committed and
// applied (its high watermark then covers everything earlier leaders
// acknowledged). LeaderEpoch is raft.CurrentTerm.
//
// # Next
//
//   - raft-wal as the LogStore/StableStore (raft.InmemStore is only for
//     tests), and the raftmux transport, one per broker, for all groups.
//   - Segment streaming for snapshots: Restore fetching the leader's
//     sealed segments (they are immutable) plus the active one up to the
//     manifest's log end.
//   - Retention and compaction as replicated decisions: DeleteBefore is
//     local today and would break replay verification below the
//     checkpoint's log end if it ran ahead of it; a DeleteRecords/log-start
//     entry type fixes both. Producer expiry (Table.Expire) likewise needs
//     to be driven by an entry (or by record time only) to stay
//     deterministic.
//   - Wiring into the broker: produce goes through Propose (acks=all is
//     Raft commit), fetch is served up to HighWatermark with long polls
//     woken on apply, Metadata reports the Raft leader and term as leader
//     and leader epoch, the controller group assigns replica sets.
//   - A ReplicationGroup hosting several partitions per Raft group, if the
//     per-group overhead demands it.
package replica
