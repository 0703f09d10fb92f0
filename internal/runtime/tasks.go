package runtime

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/internal/task"
	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
)

// checkpointFile is the name of a task's checkpoint file in its directory.
const checkpointFile = ".checkpoint"

// taskState is one assigned task: restoring (t is nil, job is set) or
// running. Everything here is guarded by Runtime.mu, except that while a
// batch of the task is in flight its drain goroutine owns t, offsets,
// hwm and dirty (workers.go).
type taskState struct {
	r     *Runtime
	id    task.ID
	sub   *topology.Subtopology
	dir   string
	parts []tp
	t     *task.Task
	job   *restoreJob

	offsets   map[tp]kgo.EpochOffset // next offset to commit per input partition
	committed map[tp]int64           // last committed offsets
	hwm       map[tp]int64           // high watermarks seen, for lag
	dirty     bool                   // processed since the last commit
	unflushed bool                   // processed since its caches were last flushed (prompt.go)

	logs map[string]*logState // changelogs by topic
	// txnStores are the task's stores under exactly-once, committed
	// after each transaction (eos.go).
	txnStores []*state.TxnStore
	out       *taskOutput
	stats     *taskStats
	queue     taskQueue // polled records waiting to be processed
}

// logState tracks one store's changelog partition for the checkpoint.
type logState struct {
	r         *Runtime
	store     string
	topic     string
	partition int32
	restored  int64        // the offset restoration reached; -1 if unknown
	acked     atomic.Int64 // the highest offset this task produced and had acknowledged; -1 if none
}

func (l *logState) onAcked(rec *kgo.Record, err error) {
	if err != nil {
		l.r.produceFailed(fmt.Errorf("%w: changelog %s[%d]: %w", ErrProduce, rec.Topic, rec.Partition, err))
		return
	}
	if l.r.eos != nil {
		l.r.eos.acked.Add(1)
	}
	for {
		cur := l.acked.Load()
		if rec.Offset <= cur || l.acked.CompareAndSwap(cur, rec.Offset) {
			return
		}
	}
}

// next is the changelog offset the store's content reaches: the next
// offset to restore from.
func (l *logState) next() int64 {
	if a := l.acked.Load(); a >= 0 {
		return max(l.restored, a+1)
	}
	return l.restored
}

func checkpointKey(topic string, partition int32) string {
	return state.CheckpointKey(topic, partition)
}

func (r *Runtime) newTaskState(id task.ID, sub *topology.Subtopology) *taskState {
	ts := &taskState{
		r: r, id: id, sub: sub, dir: filepath.Join(r.cfg.StateDir, id.String()),
		offsets: make(map[tp]kgo.EpochOffset), committed: make(map[tp]int64), hwm: make(map[tp]int64),
		logs: make(map[string]*logState),
	}
	for _, name := range sub.Stores {
		spec := r.topo.Stores[name]
		if !spec.Changelog {
			continue
		}
		l := &logState{r: r, store: name, topic: spec.ChangelogTopic(r.cfg.AppID), partition: id.Partition, restored: -1}
		l.acked.Store(-1)
		ts.logs[l.topic] = l
	}
	ts.out = &taskOutput{r: r, ts: ts}
	ts.stats = &taskStats{id: id, streamTime: -1}
	return ts
}

// process runs one record through the task, turning a panic in user code
// into an error with its stack.
func (ts *taskState) process(rec *kgo.Record, origin topology.Origin) (err error) {
	defer recoverPanic(&err)
	var headers []topology.Header
	if len(rec.Headers) > 0 {
		headers = make([]topology.Header, len(rec.Headers))
		for i, h := range rec.Headers {
			headers[i] = topology.Header{Key: h.Key, Value: h.Value}
		}
	}
	return ts.t.Process(rec.Topic, rec.Key, rec.Value, rec.Timestamp.UnixMilli(), headers, origin)
}

// flush empties the task's caches into its stores and outputs.
func (ts *taskState) flush() (err error) {
	defer recoverPanic(&err)
	if err = ts.t.Flush(); err == nil {
		ts.unflushed = false
	}
	return err
}

// checkpoint is the task's current checkpoint: where each changelog's
// content in the local stores ends.
func (ts *taskState) checkpoint() state.Checkpoint {
	cp := make(state.Checkpoint, len(ts.logs))
	for _, l := range ts.logs {
		if n := l.next(); n >= 0 {
			cp[checkpointKey(l.topic, l.partition)] = n
		}
	}
	return cp
}

// writeCheckpoint records the checkpoint after a commit has flushed the
// stores and every changelog record is acknowledged. Under at-least-once
// the file stays while the task runs: a crash leaves a checkpoint at or
// behind the stores' content, and replaying the changelog from there
// rewrites the same values (see restore.go).
func (ts *taskState) writeCheckpoint() error {
	if len(ts.logs) == 0 {
		return nil
	}
	return state.WriteCheckpoint(filepath.Join(ts.dir, checkpointFile), ts.checkpoint())
}

// PanicError is a panic recovered at the task boundary.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

func recoverPanic(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Value: v, Stack: debug.Stack()}
	}
}

// taskOutput is a task's task.Output: records go to the producer, and
// acknowledged changelog offsets to the task's checkpoint.
type taskOutput struct {
	r  *Runtime
	ts *taskState
}

func (o *taskOutput) Send(topic string, partition int32, key, value []byte, headers []topology.Header, timestamp int64) error {
	if err := o.r.fatalErr(); err != nil {
		return err
	}
	rec := &kgo.Record{Topic: topic, Partition: partition, Key: key, Value: value}
	if timestamp >= 0 {
		rec.Timestamp = time.UnixMilli(timestamp)
	}
	if len(headers) > 0 {
		rec.Headers = make([]kgo.RecordHeader, len(headers))
		for i, h := range headers {
			rec.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	promise := o.r.onProduced
	if l := o.ts.logs[topic]; l != nil {
		promise = l.onAcked
	}
	o.r.produce(rec, promise)
	return nil
}

// onAssigned creates the tasks of newly assigned partitions. Tasks with
// stores restore first, with their inputs paused; the others start now.
func (r *Runtime) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.assigned.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return
	}
	var created []*taskState
	for _, topic := range sortedKeys(assigned) {
		sub, ok := r.topo.SubtopologyFor(topic)
		if !ok {
			continue
		}
		for _, p := range assigned[topic] {
			id := task.ID{Subtopology: sub.ID, Partition: p}
			ts := r.tasks[id]
			if ts == nil {
				ts = r.newTaskState(id, sub)
				r.tasks[id] = ts
				created = append(created, ts)
			} else if ts.t == nil {
				r.client.PauseFetchPartitions(map[string][]int32{topic: {p}})
			}
			ts.parts = append(ts.parts, tp{topic, p})
			r.byTP[tp{topic, p}] = ts
		}
	}
	slices.SortFunc(created, func(a, b *taskState) int { return compareTasks(a.id, b.id) })
	var ids []string
	for _, ts := range created {
		ids = append(ids, ts.id.String())
		r.startTask(ts)
	}
	if len(ids) > 0 {
		r.log.Info("tasks assigned", "tasks", ids)
	}
}

// startTask starts a new task: a stateless one runs now, one with stores
// restores them first, its inputs paused. Caller holds mu.
func (r *Runtime) startTask(ts *taskState) {
	r.statsMu.Lock()
	r.stats[ts.id] = ts.stats
	r.statsMu.Unlock()
	r.snapshot(ts)
	if len(ts.sub.Stores) == 0 {
		if err := r.activate(ts, nil); err != nil {
			r.fail(err)
		}
		return
	}
	r.client.PauseFetchPartitions(partitionsOf(ts.parts))
	ts.job = r.restorer.submit(ts)
	r.statsMu.Lock()
	ts.stats.job = ts.job
	r.statsMu.Unlock()
}

// onRevoked commits and closes the tasks of revoked partitions; their
// state stays on disk, so a task coming back restores only the tail.
// Under exactly-once the commit is a transaction, and a failed one rolls
// every task back (eos.go), so the tasks to close are looked up after it.
func (r *Runtime) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.affected(revoked)) == 0 {
		return
	}
	if err := r.commit(ctx); err != nil {
		r.fail(err)
	}
	r.closeTasks(r.affected(revoked), "tasks revoked")
}

// onLost closes the tasks of lost partitions without committing: another
// member may already own them. Under exactly-once the open transaction
// cannot commit its offsets any more (the generation is gone): it is
// aborted, and the tasks that remain roll back to their last commit.
func (r *Runtime) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.eos != nil && r.eos.inTxn && len(r.affected(lost)) > 0 {
		if err := r.abortAndMigrate(ctx); err != nil {
			r.fail(err)
		}
	}
	r.closeTasks(r.affected(lost), "tasks lost")
}

func (r *Runtime) affected(parts map[string][]int32) []*taskState {
	seen := make(map[*taskState]bool)
	var out []*taskState
	for topic, ps := range parts {
		for _, p := range ps {
			if ts := r.byTP[tp{topic, p}]; ts != nil && !seen[ts] {
				seen[ts] = true
				out = append(out, ts)
			}
		}
	}
	slices.SortFunc(out, func(a, b *taskState) int { return compareTasks(a.id, b.id) })
	return out
}

func (r *Runtime) closeTasks(tasks []*taskState, why string) {
	var ids []string
	for _, ts := range tasks {
		ids = append(ids, ts.id.String())
		r.closeTask(ts)
	}
	if len(ids) > 0 {
		r.log.Info(why, "tasks", ids)
	}
}

// closeTask closes a task without committing. Caller holds mu.
func (r *Runtime) closeTask(ts *taskState) {
	if ts.t != nil {
		r.unregisterQuery(ts)
		if err := ts.t.Close(); err != nil {
			r.log.Warn("close task", "task", ts.id.String(), "err", err)
		}
	} else {
		// Restoring, or rolled back and waiting to restart: its inputs
		// are paused.
		if ts.job != nil {
			r.restorer.cancel(ts.job)
		}
		r.client.ResumeFetchPartitions(partitionsOf(ts.parts))
	}
	for _, p := range ts.parts {
		if r.byTP[p] == ts {
			delete(r.byTP, p)
		}
	}
	delete(r.tasks, ts.id)
	r.statsMu.Lock()
	if ts.t != nil {
		for k, v := range ts.t.Metrics() {
			r.closedTotal[k] += v
		}
	}
	delete(r.stats, ts.id)
	r.statsMu.Unlock()
}

// activate starts a restored (or stateless) task and resumes its inputs.
// Caller holds mu.
func (r *Runtime) activate(ts *taskState, stores map[string]state.Store) (err error) {
	// The record cache budget is shared by the instance's tasks.
	cacheBytes := r.cfg.CacheMaxBytes / max(1, len(r.tasks))
	cfg := task.Config{
		ID: ts.id, AppID: r.cfg.AppID, Topo: r.topo, Sub: ts.sub, Output: ts.out,
		Open: func(spec *topology.Store) (state.Store, error) {
			s, ok := stores[spec.Name]
			if !ok {
				return nil, fmt.Errorf("store %s was not restored", spec.Name)
			}
			if r.eos != nil {
				// Writes stay in memory until their transaction
				// commits; queries read the committed store beneath.
				txs := state.NewTxnStore(s)
				ts.txnStores = append(ts.txnStores, txs)
				return txs, nil
			}
			return s, nil
		},
		CacheBytes: cacheBytes, Logger: r.log,
	}
	t, err := newTask(cfg)
	if err != nil {
		return fmt.Errorf("task %s: start: %w", ts.id, err)
	}
	st, err := r.committedStreamTime(ts)
	if err != nil {
		t.Close()
		return fmt.Errorf("task %s: %w", ts.id, err)
	}
	// Resume at the stream time of the last commit; windows it closed
	// emit now if they have not (their emit marks say which did).
	if err := r.beginTxn(); err != nil {
		t.Close()
		return fmt.Errorf("task %s: %w", ts.id, err)
	}
	if err := t.AdvanceStreamTime(st); err != nil {
		t.Close()
		return fmt.Errorf("task %s: resume stream time: %w", ts.id, err)
	}
	ts.t, ts.job = t, nil
	// Punctuation above may have written emit marks: flush them with the
	// next commit.
	ts.dirty = ts.dirty || st >= 0
	for _, l := range ts.logs {
		if j := ts.stats.job; j != nil {
			if sr := j.store(l.store); sr != nil {
				l.restored = sr.next
			}
		}
	}
	r.client.ResumeFetchPartitions(partitionsOf(ts.parts))
	r.registerQuery(ts, stores)
	r.snapshot(ts)
	return nil
}

func newTask(cfg task.Config) (t *task.Task, err error) {
	defer recoverPanic(&err)
	return task.New(cfg)
}

// startReady starts the tasks whose restoration finished. Caller holds mu.
func (r *Runtime) startReady() {
	for _, job := range r.ready.take() {
		ts := r.tasks[job.id]
		if ts == nil || ts.job != job {
			continue // closed meanwhile; cancel closed the stores
		}
		stores, ok := job.claim()
		if !ok {
			continue
		}
		if err := r.activate(ts, stores); err != nil {
			r.fail(err)
			return
		}
		r.log.Debug("task running", "task", ts.id.String())
	}
}

func partitionsOf(parts []tp) map[string][]int32 {
	out := make(map[string][]int32)
	for _, p := range parts {
		out[p.topic] = append(out[p.topic], p.partition)
	}
	return out
}

// taskStats is the snapshot of a task that Metrics and TaskStatus read,
// guarded by Runtime.statsMu.
type taskStats struct {
	id         task.ID
	running    bool
	streamTime int64
	inputs     []InputStatus
	metrics    map[string]int64
	job        *restoreJob // restore progress (atomics)
}

// snapshot publishes a task's progress. Caller holds mu.
func (r *Runtime) snapshot(ts *taskState) {
	inputs := make([]InputStatus, 0, len(ts.parts))
	for _, p := range ts.parts {
		in := InputStatus{Topic: p.topic, Partition: p.partition, Offset: -1, Lag: -1}
		if o, ok := ts.offsets[p]; ok {
			in.Offset = o.Offset
		}
		if h, ok := ts.hwm[p]; ok && in.Offset >= 0 {
			in.Lag = max(0, h-in.Offset)
		}
		inputs = append(inputs, in)
	}
	var metrics map[string]int64
	streamTime := int64(-1)
	if ts.t != nil {
		metrics = maps.Clone(ts.t.Metrics())
		streamTime = ts.t.StreamTime()
	}
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	ts.stats.running = ts.t != nil
	ts.stats.inputs = inputs
	ts.stats.metrics = metrics
	ts.stats.streamTime = streamTime
}
