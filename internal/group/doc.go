// Package group is weir's classic consumer-group coordinator: the broker side
// of JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
// TxnOffsetCommit, DescribeGroups, ListGroups, DeleteGroups and OffsetDelete,
// faithful to Kafka's GroupCoordinator (the pre-KIP-848 "classic" protocol).
//
// # Shape
//
// The broker owns one *Coordinator and calls it from thin request handlers
// with decoded kmsg requests (Version set); it sends back the response it is
// given. Handlers may be called concurrently from any number of connections.
// The broker routes a group to this coordinator by PartitionFor (Kafka's
// abs(groupId.hashCode) % partitions) and, at startup, replays every record
// of the __consumer_offsets partitions it serves through Load before serving
// (records of transactional batches through LoadTxn, end-transaction markers
// through LoadMarker), and calls CompleteTxn once a marker is durable on a
// partition it serves.
// WithClientInfo puts a request's client id and host on its context for
// member ids and DescribeGroups. Unload drops the groups of a partition the
// broker no longer leads. A Topics that also implements TopicIDs enables the
// topic-id forms of OffsetCommit and OffsetFetch (v10).
//
// # Concurrency
//
// Every group is a struct guarded by its own mutex; the coordinator's map of
// groups has a separate short-held mutex (lock order: group, then map). A
// request locks its group, runs the state machine and unlocks; nothing blocks
// while a lock is held except channel sends to buffered channels. So one busy
// or slow group never blocks another.
//
// JoinGroup and SyncGroup block: the handler parks a waiter (a buffered
// channel) on its member and waits, after unlocking, for the state machine
// to answer it, for its context to end, or for Close. A waiter abandoned
// because its context ended (the connection closed) is detached, but the
// member stays "awaiting join/sync" exactly as in Kafka, where the request
// was received: it counts as rejoined, and if its client is really gone its
// session timeout removes it after the phase completes.
//
// Timers are time.AfterFunc callbacks that lock the group; each timer kind
// carries a token so that a timer that fires after being replaced or stopped
// does nothing. Timers: a member's session timeout (re-armed by heartbeats,
// commits, join and sync completion; a member waiting in join or sync is
// kept alive), the pending v4+ member's session timeout, the join-phase
// timer (the initial rebalance delay from Empty, extended while new members
// arrive up to the rebalance timeout, else the rebalance timeout), and the
// pending-sync timer (members that do not send SyncGroup within the
// rebalance timeout after the join phase are removed).
//
// # State machine
//
// Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead for a
// deleted group (a Dead group is out of the map; a request that raced with
// the deletion looks the group up again). As in Kafka:
//
//   - A group rebalances (PreparingRebalance) when a member joins, a member
//     rejoins with changed metadata or is the leader of a Stable group, a
//     member leaves or its session expires, or members fail to sync.
//   - The join phase completes when every member has rejoined and no v4+
//     member is still pending its member-id round trip, or at the rebalance
//     timeout; dynamic members that did not rejoin are removed (static ones
//     stay until their session expires). The generation increments, the
//     protocol is chosen by vote among those all members support, and the
//     leader receives every member's metadata.
//   - The leader's SyncGroup assignment is written (GroupMetadataValue v3
//     with every assignment) before the group turns Stable and the followers
//     get their assignments; a failed write fails the sync with a retriable
//     error and rebalances.
//   - Static membership (KIP-345): a JoinGroup without member id for a known
//     group.instance.id fences the old member id and continues under a new
//     one, keeping the assignment and, in a Stable group whose protocol would
//     not change, without a rebalance (JoinGroup v9+ leaders get
//     SkipAssignment, KIP-814).
//
// # Persistence
//
// Every write goes through a per-partition writer that appends queued
// records in order, one Log.Append for whatever queued up meanwhile (group
// commit), and then runs completion callbacks in order under each group's
// lock. For any one group, log order therefore equals the order of its state
// changes, which is what makes Load's replay reproduce the in-memory state.
//
// Records use Kafka's encoding (OffsetCommitKey v1 with OffsetCommitValue v3,
// or v1 when a v2-v4 commit sets a retention time; GroupMetadataKey v2 with
// GroupMetadataValue v3), so Kafka tooling can read __consumer_offsets.
// Commits respond only after their records are durable and change the
// in-memory offsets only then. Group metadata is written on each completed
// rebalance (the leader's sync), when a group becomes Empty, and when a static
// member is replaced. DeleteGroups and OffsetDelete write tombstones, and so
// does offset expiry: every 10 minutes offsets past offsets.retention are
// dropped (all offsets of a group Empty for the retention period, by commit
// time for simple groups, and for topics a Stable "consumer" group no longer
// subscribes to), and Empty groups left without offsets are deleted.
//
// Transactional offset commits (TxnOffsetCommit) are written the same way but
// in a transactional batch of the producer (Log.AppendTxn, one batch per
// producer even in a group commit); they stay pending per group and producer
// until the producer's COMMIT or ABORT marker on the partition settles them
// (see txn.go). Log order decides between a committed transaction's offset
// and a plain commit of the same partition.
//
// Load restores offsets and group metadata: a group with members comes back
// Stable with its generation, protocol, leader, members and assignments, so
// that consumers carry on after a coordinator restart without rebalancing;
// their session timers start at the first request after loading.
//
// # Not covered
//
// KIP-848 (ConsumerGroupHeartbeat) groups, checking that a TxnOffsetCommit's
// transaction includes the group (the broker's job), group.max.size, ACLs
// (DescribeGroups AuthorizedOperations is left unset), and
// COORDINATOR_LOAD_IN_PROGRESS (the broker answers it while replaying).
package group
