package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/task"
	"github.com/weir-io/weir/internal/topology"
)

const (
	// maxPollRecords bounds one poll, and so the time rebalances wait
	// for the processing of a batch (BlockRebalanceOnPoll).
	maxPollRecords = 10_000
	// shutdownTimeout bounds the final commit of a clean shutdown.
	shutdownTimeout = 30 * time.Second
	// defaultPurgeInterval is how often consumed repartition records are
	// deleted (Kafka Streams' repartition.purge.interval.ms).
	defaultPurgeInterval = 30 * time.Second
)

// Runtime is one running instance of an application.
type Runtime struct {
	cfg  Config
	topo *topology.Topology
	log  *slog.Logger

	started atomic.Bool
	counts  map[string]int32 // resolved partition counts by topic
	// storePartitions maps store names to their partition counts, for
	// queries from other goroutines, once setup has resolved them.
	storePartitions atomic.Pointer[map[string]int32]
	changelogs      map[string]bool // changelog topic names

	client   *kgo.Client // group consumer and producer
	admin    *kgo.Client // restoration consumer and admin requests
	adm      *kadm.Client
	restorer *restorer
	wake     waker     // wakes the processing loop's poll
	eos      *eosState // nil under at-least-once (eos.go)
	// instance is <app id>-<instance id>, the id kept in the state
	// directory: the group instance id (static membership) and, under
	// exactly-once, the transactional id.
	instance string
	assigned atomic.Bool // the group assigned partitions at least once

	// mu guards the tasks. The processing loop holds it while it
	// dispatches a poll and commits; rebalance callbacks hold it while
	// they create, commit and close tasks. A task's own fields belong to
	// its drain goroutine while it has a batch in flight (workers.go).
	mu         sync.Mutex
	tasks      map[task.ID]*taskState
	byTP       map[tp]*taskState
	lastCommit time.Time
	lastPurge  time.Time
	lastFlush  time.Time // loop goroutine only (prompt.go)
	// pendingFlush is set when a task processed records since the last
	// idle flush; workers set it, so it is atomic.
	pendingFlush atomic.Bool
	closing      bool      // shutdown closed the tasks: assignments are ignored
	ready        readyList // restored tasks waiting to start

	fatalMu sync.Mutex
	fatal   error
	failed  atomic.Bool // fatal != nil, for the per-record check

	// Parallel processing (workers.go): slots bounds the tasks
	// processing at once, inflight the polls dispatched and not yet
	// processed, which busy counts too, for waiting on them.
	slots    chan struct{}
	inflight chan struct{}
	busy     sync.WaitGroup
	// rebalanceWanted: the client holds a rebalance until the loop
	// allows it, which it does once the tasks are idle.
	rebalanceWanted atomic.Bool

	// Counters, readable at any time.
	processed, skipped, deadLettered, restored, commits atomic.Int64

	// statsMu guards the snapshots Metrics and TaskStatus read, so they
	// never wait for a batch or a commit.
	statsMu     sync.Mutex
	stats       map[task.ID]*taskStats
	closedTotal map[string]int64 // task metrics of closed tasks

	// queryMu guards the stores queries may read: queries hold it for
	// reading, closing a task for writing.
	queryMu sync.RWMutex
	query   map[string]map[int32]queryStore // store name → partition
}

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

// New prepares a runtime for a built topology; Run starts it.
func New(topo *topology.Topology, cfg Config) *Runtime {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = defaultPurgeInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = goruntime.GOMAXPROCS(0)
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = defaultTxnTimeout
	}
	if cfg.ExactlyOnce && cfg.CommitInterval > cfg.TransactionTimeout/2 {
		// A transaction open longer than its timeout is aborted by the
		// coordinator, which fences the producer.
		cfg.Logger.Warn("the commit interval is capped at half the transaction timeout under exactly-once",
			"commit_interval", cfg.CommitInterval, "transaction_timeout", cfg.TransactionTimeout)
		cfg.CommitInterval = cfg.TransactionTimeout / 2
	}
	// Resolve sets partition counts on the sub-topologies; give each
	// runtime its own, since instances in one process may share a built
	// topology. The nodes are not changed after Build and stay shared.
	own := *topo
	own.Subtopologies = make([]*topology.Subtopology, len(topo.Subtopologies))
	for i, s := range topo.Subtopologies {
		c := *s
		own.Subtopologies[i] = &c
	}
	topo = &own
	r := &Runtime{
		cfg: cfg, topo: topo, log: cfg.Logger.With("app", cfg.AppID),
		changelogs: make(map[string]bool),
		tasks:      make(map[task.ID]*taskState), byTP: make(map[tp]*taskState),
		stats: make(map[task.ID]*taskStats), closedTotal: make(map[string]int64),
		query:    make(map[string]map[int32]queryStore),
		slots:    make(chan struct{}, cfg.Workers),
		inflight: make(chan struct{}, maxPollsInFlight),
	}
	for _, st := range topo.Stores {
		if st.Changelog {
			r.changelogs[st.ChangelogTopic(cfg.AppID)] = true
		}
	}
	if cfg.ExactlyOnce {
		r.eos = &eosState{}
	}
	return r
}

// Run runs the instance until ctx is done (clean shutdown: commit, close
// the tasks, leave the group; it returns nil) or a fatal error.
func (r *Runtime) Run(ctx context.Context) (err error) {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("an App runs once; create a new one to run again")
	}
	if err := os.MkdirAll(r.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	adminOpts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID(r.cfg.AppID + "-restore"),
		kgo.WithLogger(kgoLogger{r.log.With("client", "restore")}),
		kgo.FetchMaxWait(time.Second),
	}
	id, err := instanceID(r.cfg.StateDir)
	if err != nil {
		return err
	}
	r.instance = r.cfg.AppID + "-" + id
	if r.eos != nil {
		r.eos.txnID = r.instance
		// Restoration reads committed changelog records only, and sees
		// the transaction markers, so that it knows when it reached the
		// end offset even if the last records before it were aborted.
		adminOpts = append(adminOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	}
	r.admin, err = kgo.NewClient(adminOpts...)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer r.admin.Close()
	r.adm = kadm.NewClient(r.admin)
	if err := r.setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	var sources []string
	for _, s := range r.topo.Subtopologies {
		sources = append(sources, s.SourceTopics()...)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID(r.cfg.AppID),
		kgo.WithLogger(kgoLogger{r.log}),
		kgo.ConsumerGroup(r.cfg.AppID),
		// Static membership (KIP-345): an instance restarted on its state
		// directory (after kill -9, say) rejoins as itself and gets its
		// tasks back at once, instead of waiting out its old member's
		// session; a clean stop leaves explicitly (leaveGroup).
		kgo.InstanceID(r.instance),
		kgo.ConsumeTopics(sources...),
		kgo.Balancers(&balancer{topo: r.topo, local: r.localTasks, log: r.log}),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			r.rebalanceWanted.Store(true)
			r.wake.wake()
		}),
		// A new application reads its inputs from the start, as Kafka
		// Streams (auto.offset.reset=earliest).
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(newPartitioner()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if d := r.cfg.SessionTimeout; d > 0 {
		opts = append(opts, kgo.SessionTimeout(d))
	}
	if d := r.cfg.HeartbeatInterval; d > 0 {
		opts = append(opts, kgo.HeartbeatInterval(d))
	}
	if d := r.cfg.RebalanceTimeout; d > 0 {
		opts = append(opts, kgo.RebalanceTimeout(d))
	}
	if r.eos != nil {
		opts = append(opts,
			kgo.TransactionalID(r.eos.txnID),
			kgo.TransactionTimeout(r.cfg.TransactionTimeout),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.MaxVersions(txnMaxVersions()),
		)
	}
	// The restorer takes jobs as soon as the group assigns tasks; its
	// goroutine starts below.
	r.restorer = newRestorer(r)
	// The group callbacks, which start in the client's goroutines as soon
	// as it joins, use r.client under mu: they wait until it is set.
	r.mu.Lock()
	r.client, err = kgo.NewClient(opts...)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if r.eos != nil {
		// Initializing the transactional id now aborts what a previous
		// life of this instance left open, before restoration waits for
		// the changelogs' open transactions to end.
		if _, _, err := r.client.ProducerID(ctx); err != nil {
			r.client.Close()
			if ctx.Err() != nil {
				return nil
			}
			if fenced(err) {
				err = fmt.Errorf("%w: %w", ErrFenced, err)
			}
			return fmt.Errorf("init transactional producer %s: %w", r.eos.txnID, err)
		}
		r.log.Info("exactly-once processing", "transactional_id", r.eos.txnID)
	}
	restoreDone := make(chan struct{})
	restoreCtx, stopRestore := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(restoreDone)
		r.restorer.run(restoreCtx)
	}()
	r.lastCommit, r.lastPurge = time.Now(), time.Now()
	r.log.Info("application started", "tasks", taskTotal(r.topo), "state_dir", r.cfg.StateDir, "instance", r.instance)
	stopWaitLog := r.logWhileUnassigned()
	defer stopWaitLog()

	err = r.loop(ctx)
	err = r.shutdown(err)
	stopRestore()
	<-restoreDone
	r.restorer.closeAll()
	r.client.Close() // the tasks are already closed
	if err == nil {
		r.leaveGroup()
	}
	if err != nil {
		r.log.Error("application stopped", "err", err)
	} else {
		r.log.Info("application stopped")
	}
	return err
}

// unassignedLog is how long an instance waits for its first assignment
// before saying what it waits for.
const unassignedLog = 5 * time.Second

// logWhileUnassigned says, once, what the instance waits for when the
// group has not assigned it anything after unassignedLog: a silent wait
// looks like a hang.
func (r *Runtime) logWhileUnassigned() (stop func()) {
	session := r.cfg.SessionTimeout
	if session == 0 {
		session = 45 * time.Second // kgo's default
	}
	t := time.AfterFunc(unassignedLog, func() {
		if !r.assigned.Load() {
			r.log.Info("no tasks assigned yet: waiting for the group to rebalance; an instance that crashed "+
				"without its state directory holds its tasks until its session times out",
				"group", r.cfg.AppID, "session_timeout", session)
		}
	})
	return func() { t.Stop() }
}

// leaveGroup takes this instance out of the group after a clean stop, so
// the others take over its tasks now rather than after its session
// timeout: a static member's client does not leave on Close.
func (r *Runtime) leaveGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = r.cfg.AppID
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID = &r.instance
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, r.admin)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		if err == nil && len(resp.Members) == 1 {
			err = kerr.ErrorForCode(resp.Members[0].ErrorCode)
		}
	}
	if err != nil {
		r.log.Warn("leaving the group failed; the other instances take over this one's tasks after its session timeout", "err", err)
	}
}

// loop polls and hands the records to the tasks until ctx is done or a
// fatal error.
func (r *Runtime) loop(ctx context.Context) error {
	for {
		if err := r.fatalErr(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := r.betweenPolls(ctx); err != nil {
			return err
		}

		pollCtx, release := r.wake.context(ctx, r.pollDeadline())
		fetches := r.client.PollRecords(pollCtx, maxPollRecords)
		release()
		closed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			switch {
			case errors.Is(err, kgo.ErrClientClosed):
				closed = true
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			case fenced(err):
				// The group gave this static member's identity to a newer
				// instance (a copy of the state directory): stop.
				r.fail(fmt.Errorf("%w: %w", ErrFenced, err))
			default:
				r.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		if fetches.NumRecords() > 0 {
			r.mu.Lock()
			r.dispatchFetches(fetches)
			r.mu.Unlock()
		}
		if closed {
			return errors.New("client closed")
		}
	}
}

// betweenPolls starts restored tasks, commits when the interval has passed
// and lets a rebalance proceed. Committing and rebalancing need idle
// tasks, so it waits for the polls in flight first; otherwise it lets the
// tasks work on while the loop polls.
func (r *Runtime) betweenPolls(ctx context.Context) error {
	// A failed transaction is aborted at once rather than at the interval.
	due := time.Since(r.lastCommitTime()) >= r.cfg.CommitInterval || r.eos != nil && r.eos.failed.Load()
	if due || r.rebalanceWanted.Load() {
		r.quiesce()
	}
	r.mu.Lock()
	r.startReady()
	err := r.restartMigrated(ctx)
	if due && err == nil {
		err = r.commitDue(ctx)
	}
	r.mu.Unlock()
	if r.idle() {
		// Returns at once (at most it waits for the last batch's
		// bookkeeping); it orders the tasks' last writes before the
		// rebalance callbacks' reads, which the channel length does not.
		r.quiesce()
		if err == nil {
			err = r.flushIdle()
		}
		r.rebalanceWanted.Store(false)
		r.client.AllowRebalance()
	}
	return err
}

func (r *Runtime) lastCommitTime() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastCommit
}

// commitDue commits, the interval having passed, and purges consumed
// repartition records when their interval has passed too. Caller holds mu;
// the tasks are idle.
func (r *Runtime) commitDue(ctx context.Context) error {
	if r.eos != nil {
		// A transaction is not left half done when shutdown begins: it
		// commits (or aborts) on its own deadline.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := r.commit(cctx); err != nil {
			return err
		}
		ctx = cctx
	} else if err := r.commit(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // shutting down: the final commit retries
		}
		return err
	}
	if time.Since(r.lastPurge) >= r.cfg.PurgeInterval {
		r.purgeRepartition(ctx)
		r.lastPurge = time.Now()
	}
	return nil
}

// dispatchFetches splits a poll's records by task and queues them for
// processing (workers.go). Caller holds mu.
func (r *Runtime) dispatchFetches(fetches kgo.Fetches) {
	batches := make(map[*taskState][]partBatch)
	var order []*taskState
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		ts := r.byTP[tp{p.Topic, p.Partition}]
		if ts == nil {
			// Not ours any more (revoked while buffered) or not a task
			// input: skip; the offset is not committed, so whoever
			// owns it processes it.
			r.log.Debug("records for a partition without a task", "topic", p.Topic, "partition", p.Partition)
			return
		}
		if ts.t == nil {
			// A restoring task's partitions are paused before their
			// first fetch; should records arrive anyway, rewind so
			// they are fetched again after the restore.
			r.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.Topic: {p.Partition: {Epoch: -1, Offset: p.Records[0].Offset}}})
			r.client.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
			return
		}
		if _, ok := batches[ts]; !ok {
			order = append(order, ts)
		}
		batches[ts] = append(batches[ts], partBatch{tp: tp{p.Topic, p.Partition}, recs: p.Records, hwm: p.HighWatermark})
	})
	if len(order) > 0 {
		// Processing produces: under exactly-once into a transaction.
		if err := r.beginTxn(); err != nil {
			r.fail(err)
			return
		}
	}
	r.dispatch(batches, order)
}

// process runs one record and applies the bad-record policy; an error is
// fatal. The task's drain goroutine calls it.
func (r *Runtime) process(ts *taskState, rec *kgo.Record) error {
	origin := topology.Origin{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	err := ts.process(rec, origin)
	if err != nil {
		if !isBadRecord(err) {
			return fmt.Errorf("task %s: record %s: %w", ts.id, originString(origin), err)
		}
		if err := r.badRecord(ts, rec, origin, err); err != nil {
			return err
		}
	}
	return nil
}

// isBadRecord tells the failures the bad-record policy handles: undecodable
// input, a failing user function, a panic in user code.
func isBadRecord(err error) bool {
	var pe *task.ProcessError
	var pa *PanicError
	return errors.Is(err, task.ErrDecode) || errors.As(err, &pe) || errors.As(err, &pa)
}

func (r *Runtime) badRecord(ts *taskState, rec *kgo.Record, origin topology.Origin, cause error) error {
	switch r.cfg.BadRecords.Kind {
	case PolicySkip:
		r.skipped.Add(1)
		r.log.Warn("skipping bad record", "task", ts.id.String(), "topic", origin.Topic,
			"partition", origin.Partition, "offset", origin.Offset, "err", cause)
		return nil
	case PolicyDeadLetter:
		dl := &kgo.Record{
			Topic: r.cfg.BadRecords.Topic, Partition: -1,
			Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp,
			Headers: append(slices.Clip(rec.Headers),
				kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
				kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(origin.Topic)},
				kgo.RecordHeader{Key: HeaderSourcePartition, Value: fmt.Appendf(nil, "%d", origin.Partition)},
				kgo.RecordHeader{Key: HeaderSourceOffset, Value: fmt.Appendf(nil, "%d", origin.Offset)},
			),
		}
		r.produce(dl, r.onProduced)
		r.deadLettered.Add(1)
		r.log.Warn("sent bad record to the dead-letter topic", "task", ts.id.String(), "topic", origin.Topic,
			"partition", origin.Partition, "offset", origin.Offset, "dead_letter_topic", dl.Topic, "err", cause)
		return nil
	default:
		return fmt.Errorf("%w: task %s: record %s: %w", ErrBadRecord, ts.id, originString(origin), cause)
	}
}

func originString(o topology.Origin) string {
	return fmt.Sprintf("%s[%d]@%d", o.Topic, o.Partition, o.Offset)
}

// produce hands a record to the client. Records wait in the client's
// buffer; commit waits for all of them.
func (r *Runtime) produce(rec *kgo.Record, promise func(*kgo.Record, error)) {
	if r.eos != nil {
		r.eos.produced.Add(1)
	}
	// The context only bounds the wait for buffer space; shutdown
	// flushes on its own deadline.
	r.client.Produce(context.Background(), rec, promise)
}

// onProduced is the promise of records whose offset does not matter.
func (r *Runtime) onProduced(rec *kgo.Record, err error) {
	if err != nil {
		r.produceFailed(fmt.Errorf("%w: topic %s: %w", ErrProduce, rec.Topic, err))
	} else if r.eos != nil {
		r.eos.acked.Add(1)
	}
}

// fail records the first fatal error and wakes the loop to act on it.
func (r *Runtime) fail(err error) {
	r.fatalMu.Lock()
	if r.fatal == nil {
		r.fatal = err
		r.failed.Store(true)
	}
	r.fatalMu.Unlock()
	r.wake.wake()
}

func (r *Runtime) fatalErr() error {
	if !r.failed.Load() {
		return nil
	}
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	return r.fatal
}

// commit makes everything the tasks processed durable and then marks their
// input consumed: flush caches (changelog and downstream records go out),
// wait for every produced record's acknowledgement, write checkpoints,
// commit input offsets. Under exactly-once it commits a transaction
// instead (commitEOS). Caller holds mu; the tasks are idle.
func (r *Runtime) commit(ctx context.Context) error {
	if r.eos != nil {
		return r.commitEOS(ctx)
	}
	var dirty []*taskState
	for _, ts := range r.sortedTasks() {
		if ts.t != nil && ts.dirty {
			dirty = append(dirty, ts)
		}
	}
	r.lastCommit = time.Now()
	if len(dirty) == 0 {
		return r.fatalErr()
	}
	if err := r.flushTasks(dirty); err != nil {
		return err
	}
	if err := r.client.Flush(ctx); err != nil {
		return fmt.Errorf("commit: wait for produced records: %w", err)
	}
	if err := r.fatalErr(); err != nil {
		return err
	}
	if err := r.writeCheckpoints(dirty); err != nil {
		return err
	}
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for _, ts := range dirty {
		for p, o := range ts.offsets {
			if offsets[p.topic] == nil {
				offsets[p.topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[p.topic][p.partition] = o
		}
	}
	var cerr error
	r.client.CommitOffsetsSync(kgo.PreCommitFnContext(ctx, r.stampStreamTime), offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil && ctx.Err() != nil {
		// Shutting down: the final commit, on a fresh context, retries.
		return nil
	}
	if cerr != nil {
		if fenced(cerr) {
			return fmt.Errorf("%w: %w", ErrFenced, cerr)
		}
		if rebalancing(cerr) {
			// The group moved on: the next owner reprocesses from the
			// last committed offsets (at-least-once).
			r.log.Warn("offset commit failed; records since the last commit may be processed again", "err", cerr)
			return nil
		}
		return fmt.Errorf("commit offsets: %w", cerr)
	}
	r.markCommitted(dirty)
	return nil
}

// flushTasks flushes the tasks' caches (records go out to the changelogs
// and downstream). Tasks flush in parallel: each flush is the task's own
// (its caches, stores and changelog partitions), and all of them end
// before the acknowledgements are awaited.
func (r *Runtime) flushTasks(tasks []*taskState) error {
	return r.eachTask(tasks, func(ts *taskState) error {
		err := ts.flush()
		r.snapshot(ts)
		return err
	})
}

// writeCheckpoints writes the tasks' checkpoints once what they flushed
// is durable.
func (r *Runtime) writeCheckpoints(tasks []*taskState) error {
	return r.eachTask(tasks, func(ts *taskState) error {
		if err := ts.writeCheckpoint(); err != nil {
			return fmt.Errorf("task %s: write checkpoint: %w", ts.id, err)
		}
		return nil
	})
}

// markCommitted records a successful commit of the tasks' offsets.
func (r *Runtime) markCommitted(tasks []*taskState) {
	for _, ts := range tasks {
		ts.dirty = false
		for p, o := range ts.offsets {
			ts.committed[p] = o.Offset
		}
	}
	r.commits.Add(1)
}

func rebalancing(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.StaleMemberEpoch)
}

// purgeRepartition deletes repartition records below the committed
// offsets: they were consumed and their results are durable. Caller holds mu.
func (r *Runtime) purgeRepartition(ctx context.Context) {
	var offs kadm.Offsets
	for _, ts := range r.tasks {
		if ts.t == nil {
			continue
		}
		for p, o := range ts.committed {
			if r.isInternal(p.topic) {
				offs.AddOffset(p.topic, p.partition, o, -1)
			}
		}
	}
	if len(offs) == 0 {
		return
	}
	if _, err := r.adm.DeleteRecords(ctx, offs); err != nil {
		r.log.Debug("purge repartition topics", "err", err)
	}
}

func (r *Runtime) isInternal(topic string) bool {
	s, ok := r.topo.SubtopologyFor(topic)
	if !ok {
		return false
	}
	for _, n := range s.Sources() {
		if n.Internal && slices.Contains(n.Topics, topic) {
			return true
		}
	}
	return false
}

// shutdown commits (on a clean stop) and closes every task.
func (r *Runtime) shutdown(runErr error) error {
	r.quiesce()
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if runErr == nil {
		runErr = r.commit(ctx)
	} else {
		// Under exactly-once nothing since the last commit becomes
		// visible; aborting now spares read-committed consumers the
		// wait for the transaction timeout.
		r.abortQuietly(ctx)
	}
	for _, ts := range r.sortedTasks() {
		r.closeTask(ts)
	}
	r.closing = true
	// The tasks are closed and nothing is in flight: leaving the group
	// (Close) waits for the rebalances the last polls blocked.
	r.client.AllowRebalance()
	return runErr
}

func (r *Runtime) sortedTasks() []*taskState {
	out := make([]*taskState, 0, len(r.tasks))
	for _, ts := range r.tasks {
		out = append(out, ts)
	}
	slices.SortFunc(out, func(a, b *taskState) int { return compareTasks(a.id, b.id) })
	return out
}

// localTasks lists the tasks with a checkpoint in the state dir, for the
// balancer's stickiness.
func (r *Runtime) localTasks() []task.ID {
	entries, err := os.ReadDir(r.cfg.StateDir)
	if err != nil {
		return nil
	}
	var out []task.ID
	for _, e := range entries {
		var id task.ID
		if _, err := fmt.Sscanf(e.Name(), "%d_%d", &id.Subtopology, &id.Partition); err != nil || id.String() != e.Name() {
			continue
		}
		if _, err := os.Stat(filepath.Join(r.cfg.StateDir, e.Name(), checkpointFile)); err == nil {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, compareTasks)
	return out
}

func taskTotal(t *topology.Topology) int {
	n := 0
	for _, s := range t.Subtopologies {
		n += int(s.Partitions)
	}
	return n
}

// waker interrupts a blocking poll from another goroutine.
type waker struct {
	mu      sync.Mutex
	pending bool
	cancel  context.CancelFunc
}

// wake cancels the current wait, or the next one if none is under way.
func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = true
	if w.cancel != nil {
		w.cancel()
	}
}

// context returns the context for one wait, ending at deadline or at a
// wake; release it when the wait is over.
func (w *waker) context(parent context.Context, deadline time.Time) (context.Context, func()) {
	ctx, cancel := context.WithDeadline(parent, deadline)
	w.mu.Lock()
	if w.pending {
		w.pending = false
		cancel()
	} else {
		w.cancel = cancel
	}
	w.mu.Unlock()
	return ctx, func() {
		w.mu.Lock()
		w.cancel = nil
		w.pending = false
		w.mu.Unlock()
		cancel()
	}
}

// Logger is the logger the runtime writes to.
func (r *Runtime) Logger() *slog.Logger { return r.log }
