// Package runtime runs a built topology against any Kafka-compatible
// broker: it is the machinery behind stream.App.
//
// One Runtime is one application instance. At start it checks the user's
// source topics, resolves partition counts and creates the internal topics
// (repartition and changelog). It then joins the consumer group named by
// the application id with a task balancer (balancer.go): every task — one
// sub-topology on one partition — is assigned whole, so co-partitioned
// inputs meet in one place, balanced by count and sticky across
// rebalances (cooperative, KIP-429).
//
// A newly assigned task first restores its stores from their changelogs
// on a separate client (restore.go) while its input partitions are paused;
// the other tasks keep processing. The processing loop polls records and
// queues each task's share; tasks process in parallel, up to
// Config.Workers at once, each task's records in order on one goroutine
// at a time (workers.go), through internal/task, with the bad-record
// policy applied to failures. Every commit interval the loop waits until
// the tasks are idle and commits, in this order: flush the tasks' caches
// (in parallel: each flush is the task's own), wait until every produced
// record is acknowledged, write each task's checkpoint file, commit the
// input offsets. That order is what makes the guarantee at-least-once:
// nothing is marked consumed before everything it produced is durable.
//
// Under Config.ExactlyOnce (exactly_once_v2, eos.go) the instance has one
// transactional producer and every commit is one transaction holding the
// records produced since the last commit and the input offsets; stores
// keep uncommitted writes in memory (state.TxnStore) until it commits, and
// a failed commit aborts and restarts the tasks from their committed state.
package runtime
