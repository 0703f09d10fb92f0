// Package txn is weir's transaction coordinator: the broker side of
// InitProducerId (with a transactional id), AddPartitionsToTxn (including the
// KIP-890 verify-only form), AddOffsetsToTxn, EndTxn, DescribeTransactions
// and ListTransactions, faithful to Kafka's TransactionCoordinator for
// transaction.version 1 (no epoch bump per transaction, KIP-890 part 2). It
// is a library: the broker decodes requests, calls it, and implements its
// Log (__transaction_state), Markers (WriteTxnMarkers to partition leaders),
// IDs (producer id allocation) and Topics.
//
// # Ownership
//
// A transactional id lives in __transaction_state partition
// abs(hashCode(id)) % Partitions (PartitionFor). When the broker becomes
// leader of such a partition it replays it through Load and then calls
// Elect with the partition's leader epoch; when it stops leading, Resign.
// Requests for ids of a partition not served answer NOT_COORDINATOR, and
// COORDINATOR_LOAD_IN_PROGRESS between the first Load and Elect. Resign
// drops the partition's state whole: marker retries stop, queued writes
// fail, and requests waiting on a write answer NOT_COORDINATOR.
//
// # Write before answer
//
// Every state change is appended to __transaction_state, and made visible
// in memory, before it is answered (see writer.go): a transaction whose
// EndTxn was acknowledged must commit (or abort) even if this broker dies the
// next instant, and an epoch handed to a producer must never be handed out
// again, or two producer instances could both think they own the id. So a
// change is computed from a copy, queued, and applied only once durable; a
// failed append changes nothing. While a change of an id is queued
// (txn.pending, Kafka's pendingState) other requests that would change it
// answer CONCURRENT_TRANSACTIONS, so each id has one write in flight and
// its log order is its state order. Writes of one partition go out in queue
// order, batched while an Append is in flight, as in package group.
//
// # States
//
// Empty → Ongoing (AddPartitions) → PrepareCommit | PrepareAbort (EndTxn) →
// CompleteCommit | CompleteAbort (markers written) → Ongoing (next
// AddPartitions) or Empty (InitProducerId bumps the epoch), and a tombstone
// when an idle id expires. The coordinator itself aborts an Ongoing
// transaction when a new producer instance calls InitProducerId, or when it
// exceeds its timeout; it first bumps the epoch (written with PrepareAbort,
// as Kafka does), so the old instance is fenced: its requests answer
// PRODUCER_FENCED and the abort markers, carrying the new epoch, fence its
// in-flight produce at the partition leaders. An epoch that reaches
// MaxInt16-1 is exhausted: the next InitProducerId hands out a new producer
// id at epoch 0 (KIP-360 retries naming the old id are recognised, in
// memory only, as in Kafka).
//
// # Failover
//
// A Prepare state is the decision; the markers and the Complete record are
// its consequences, written by a background goroutine that retries failed
// partitions with backoff (a partition whose topic is gone is dropped). If
// the coordinator moves before it finishes, the new one finds the Prepare
// state in the log and, at Elect, writes the markers again and then the
// Complete record. A partition that already had its marker gets a second
// one, which its producer state and readers ignore: harmless. Each marker carries the coordinator epoch (the
// __transaction_state partition leader epoch): a leader that has seen
// markers from a newer coordinator rejects those of an older one with
// TRANSACTION_COORDINATOR_FENCED, which stops the old one's retries, so a
// deposed coordinator cannot interfere with its successor.
//
// # Concurrency
//
// Each transactional id has its own mutex; each partition a mutex over its
// map of ids (lock order: id, then partition); the coordinator an RWMutex
// over its partitions. No lock is held while calling Log, Markers or IDs.
//
// # Not covered
//
// transaction.version 2 (epoch bump per EndTxn, implicit AddPartitions on
// Produce), TxnOffsetCommit (a group coordinator concern), ACLs, and
// persisting the KIP-360 previous producer id (Kafka does not either, below
// transaction.version 2).
package txn
