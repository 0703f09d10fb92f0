// Package replica replicates one partition with its own hashicorp/raft
// group (DESIGN.md "Replication", layer 2; the Redpanda model): the Raft
// leader is the partition leader, the Raft term is the Kafka leader epoch,
// and the offset the state machine has applied up to is the high
// watermark. One partition per group; tested with raft's in-memory
// transport, and with both in-memory and durable (raft-wal) stores.
//
// # Entries
//
// A Raft command is one byte of EntryType followed by its payload.
// EntryBatch carries one produced RecordBatch v2: the leader validates it
// (batch.Validate, CheckProduce) and applies broker-side rewrites
// (LogAppendTime) before proposing; replicas append the bytes as they are.
// Entries are whole batches, never records: the measurements in DESIGN.md
// show Raft keeps up only with large entries and many Applies in flight.
// EntryDeleteRecords carries Kafka's DeleteRecords offset (-1: the high
// watermark at the entry), so every replica raises its log start at the
// same point of the log (Group.DeleteRecords).
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
// compare them). Nothing depends on the local clock: segment rolls are
// decided by sizes and the batches' own timestamps, and idempotent
// producers expire by record time (the largest batch timestamp applied,
// swept each time it crosses a minute, Config.ProducerIDExpiration,
// default 24h, the same on every replica). Raft's non-command entries
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
// has it in its Raft log store (raft-wal in Config.RaftDir, behind a
// raft.LogCache), so the FSM does not fsync the partition log per entry.
// It fsyncs lazily (raft snapshots, Maintain, Close) and then writes a
// checkpoint file, replica.applied, atomically: the applied Raft index,
// log start and end, the record clock, and the idempotent producers'
// windows (state.go; CRC-checked, fuzzed). Producer state is persisted,
// not rebuilt from batch headers, because DeleteRecords, retention and
// compaction remove batches independently of the entries that wrote them:
// a replica that rebuilt its table from what its log still holds would
// answer a retry differently from the others, and the logs would fork.
// (producer.Table has no encoding of its own, so the FSM mirrors the
// windows it records; that belongs in package producer eventually.)
//
// On restart OpenFSM loads the checkpoint and raft replays its log;
// entries up to the checkpoint index are skipped. The partition log may
// hold more than the checkpoint covers (appends that reached the disk
// anyway). Later entries are re-decided exactly as before; where the
// decision is an append below the local log end, the FSM checks the stored
// batch instead of appending: byte-identical, or (local compaction ran
// since) a batch with the same identity holding a subset of its records,
// or nothing where compaction may drop a batch whole; below the local log
// start (DeleteRecords, retention) there is nothing left to check. So no
// per-entry index needs fsyncing and nothing is appended twice. Raft is
// told not to restore its latest snapshot at startup when the checkpoint
// covers it (it always does, except after an interrupted install).
//
// # Retention and compaction
//
// As in Kafka, every replica runs retention and compaction on its own
// schedule (Group.Maintain: checkpoint, then partlog's EnforceRetention
// and Compact). They are not replicated: they never change an offset, and
// the replay rules above accept what they leave. Replicas' segment files
// can then differ; their records at every offset still held do not.
//
// # Snapshots: catch-up by segment streaming
//
// The segment files are the state, so a local snapshot stores only the
// head of a snapshot stream: the state as in the checkpoint, written after
// the log is fsynced and checkpointed up to it. Nothing is copied on each
// snapshot. A follower that falls behind the leader's compacted Raft log
// gets an InstallSnapshot whose stream the snapshot store (snapstore.go,
// RaftDir/snapshots) builds when raft opens it to send: the head, then the
// partition's segment files as they are on disk at that moment, up to the
// snapshot's log end (sealed segments whole, the segment holding the log
// end cut at the batch that reaches it, never reading bytes an append may
// be writing). Files are opened before the size is computed, so retention
// and compaction (which unlink or rename over files) cannot change what is
// sent; if they changed segments since the snapshot, the follower gets the
// leader's current, equivalent, copy, and the later of the two log starts.
//
// The follower's sink decodes the stream as it arrives (bounded and
// validated: segment order, batch size and CRC, offsets within segments
// and below the log end; fuzzed) into the stage directory .install inside
// the partition directory, opens it once with partlog (indexes rebuilt),
// cuts it to the log start and writes its checkpoint. Restore then swaps
// it in: close the log, write a marker listing the staged files, remove
// the old files, rename the staged ones in, remove the marker; OpenFSM
// finishes a swap a crash interrupted. The partition log object changes,
// so Group.Log must be fetched again after partlog.ErrClosed. Raft's own
// snapshot stores work too but carry no data: a follower that needs the
// data then fails with ErrSnapshotStreaming and raft retries.
//
// # Adoption
//
// A partition with a single replica is kept by the broker in a bare
// partlog, without Raft (measured 2.1 M rec/s against 1.3 M through a
// one-voter group). When it is reassigned, Adopt turns that log into a
// new group (adopt.go): it writes a checkpoint covering the whole log at
// Raft index 1 (the producers' windows rebuilt from the batch headers
// still in the log, as the broker rebuilds them) and a head-only snapshot
// at index 1, term 1, carrying the group's configuration, and no Raft log
// entry. NewGroup then starts without Bootstrap: raft takes the
// configuration from the snapshot and, the checkpoint covering it, does
// not restore it; the adopting voter elects itself and appends from index
// 2. A member added later finds the leader's Raft log starting after the
// data, so it is sent an InstallSnapshot, which streams the segment
// files: bootstrapping instead would replay an empty Raft log and leave
// the newcomer without the data, placing later batches at the wrong
// offsets. The snapshot is written before the checkpoint; a crash between
// the two is repaired by NewGroup restoring the snapshot from the local
// log.
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
// acknowledged). LeaderEpoch is raft.CurrentTerm. Close shuts raft down
// and closes the FSM and every store NewGroup opened, so the directories
// can be reopened or removed.
//
// # Next
//
//   - The raftmux transport, one per broker, for all groups.
//   - Wiring into the broker: produce goes through Propose (acks=all is
//     Raft commit), fetch is served up to HighWatermark with long polls
//     woken on apply, Metadata reports the Raft leader and term as leader
//     and leader epoch, the controller group assigns replica sets, a timer
//     calls Maintain.
//   - Transaction markers as an entry type.
//   - A ReplicationGroup hosting several partitions per Raft group, if the
//     per-group overhead demands it.
package replica
