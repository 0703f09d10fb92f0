package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/internal/task"
	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
)

// Restoration
//
// A newly assigned task opens its stores and brings each changelogged one
// up to date before it processes anything: it reads the store's changelog
// partition from the checkpoint offset up to the partition's end offset as
// of the assignment, applying records in batches (a tombstone deletes).
// Without a usable checkpoint — none, unreadable, outside the log, or a
// store directory that is missing — the store is wiped and restored from
// the start of the log.
//
// Under exactly-once the restore consumer reads committed records only,
// up to the end offset (the high watermark, so restoration waits for the
// transactions open on the changelog to end rather than miss a committed
// one's records), and sees the transaction markers, which advance it past
// aborted records to the end. The stores never hold uncommitted writes
// (state.TxnStore), so the checkpoint stays usable after a crash as under
// at-least-once, and a crashed task restores only the tail.
//
// Under at-least-once the checkpoint file is not deleted while the task
// runs (Kafka Streams deletes it only under exactly-once): it is rewritten
// after every commit, and it never claims more than the store holds,
// because it is written after the stores are flushed and names offsets
// whose records are acknowledged. After a crash the store may hold writes
// beyond the checkpoint; replaying the changelog from the checkpoint
// rewrites the same keys with the values they had at those offsets and
// ends at the latest, so the result is the changelog's state — what
// at-least-once asks. (Input records processed after the last commit are
// processed again, as always under at-least-once.)
//
// One goroutine with its own client (no group) restores every store of
// every restoring task, so restoration never blocks the group's rebalance
// callbacks nor the processing of the tasks that are already running.

const restoreLogInterval = 5 * time.Second

type jobState int

const (
	jobPending   jobState = iota // restoring
	jobDone                      // restored, waiting for the loop to start the task
	jobClaimed                   // the task runs with the stores
	jobCancelled                 // the task was closed
)

// restoreJob restores the stores of one task.
type restoreJob struct {
	id     task.ID
	dir    string
	sub    *topology.Subtopology
	stores []*storeRestore

	mu     sync.Mutex
	state  jobState
	opened map[string]state.Store

	pending int // stores still restoring (restorer goroutine only)
}

// storeRestore is one store of a restoring task.
type storeRestore struct {
	spec      *topology.Store
	topic     string // changelog; "" when the store has none
	partition int32
	store     state.Store

	next     int64 // next changelog offset to apply
	end      int64
	restored atomic.Int64
	total    atomic.Int64
	done     atomic.Bool
	batch    []state.Mutation
}

func (j *restoreJob) store(name string) *storeRestore {
	for _, s := range j.stores {
		if s.spec.Name == name {
			return s
		}
	}
	return nil
}

// claim hands the restored stores to the task, once.
func (j *restoreJob) claim() (map[string]state.Store, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != jobDone {
		return nil, false
	}
	j.state = jobClaimed
	return j.opened, true
}

type restoreCmd struct {
	job    *restoreJob
	cancel bool
}

// restorer runs restore jobs on the admin client.
type restorer struct {
	r    *Runtime
	cl   *kgo.Client
	adm  *kadm.Client
	wake waker

	mu   sync.Mutex
	cmds []restoreCmd

	// Owned by the run goroutine.
	active  map[tp]*storeRestore
	owner   map[*storeRestore]*restoreJob
	jobs    map[*restoreJob]bool
	lastLog time.Time
}

func newRestorer(r *Runtime) *restorer {
	return &restorer{r: r, cl: r.admin, adm: r.adm, active: make(map[tp]*storeRestore),
		owner: make(map[*storeRestore]*restoreJob), jobs: make(map[*restoreJob]bool)}
}

// submit queues the restoration of a task's stores.
func (rs *restorer) submit(ts *taskState) *restoreJob {
	job := &restoreJob{id: ts.id, dir: ts.dir, sub: ts.sub}
	for _, name := range ts.sub.Stores {
		spec := rs.r.topo.Stores[name]
		sr := &storeRestore{spec: spec, partition: ts.id.Partition}
		if spec.Changelog {
			sr.topic = spec.ChangelogTopic(rs.r.cfg.AppID)
		}
		job.stores = append(job.stores, sr)
	}
	rs.push(restoreCmd{job: job})
	return job
}

// cancel stops a job. A finished job's stores are closed here; a running
// one's by the restorer.
func (rs *restorer) cancel(job *restoreJob) {
	job.mu.Lock()
	defer job.mu.Unlock()
	switch job.state {
	case jobPending:
		job.state = jobCancelled
		rs.push(restoreCmd{job: job, cancel: true})
	case jobDone:
		job.state = jobCancelled
		closeStores(job.opened)
	}
}

func (rs *restorer) push(c restoreCmd) {
	rs.mu.Lock()
	rs.cmds = append(rs.cmds, c)
	rs.mu.Unlock()
	rs.wake.wake()
}

func (rs *restorer) takeCmds() []restoreCmd {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	c := rs.cmds
	rs.cmds = nil
	return c
}

func (rs *restorer) run(ctx context.Context) {
	for ctx.Err() == nil {
		for _, c := range rs.takeCmds() {
			if c.cancel {
				rs.stop(c.job)
			} else if err := rs.start(ctx, c.job); err != nil {
				rs.stop(c.job)
				if ctx.Err() == nil {
					rs.r.fail(fmt.Errorf("task %s: restore: %w", c.job.id, err))
				}
			}
		}
		if len(rs.active) == 0 {
			wait, release := rs.wake.context(ctx, time.Now().Add(time.Hour))
			<-wait.Done()
			release()
			continue
		}
		pollCtx, release := rs.wake.context(ctx, time.Now().Add(time.Second))
		fetches := rs.cl.PollFetches(pollCtx)
		release()
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
				rs.r.log.Warn("restore fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		touched := make(map[*storeRestore]bool)
		fetches.EachRecord(func(rec *kgo.Record) {
			sr := rs.active[tp{rec.Topic, rec.Partition}]
			if sr == nil || rec.Offset < sr.next {
				return
			}
			// Under exactly-once the client returns transaction markers
			// (and no aborted record): they only move the position.
			if !rec.Attrs.IsControl() {
				sr.batch = append(sr.batch, state.Mutation{Key: rec.Key, Value: rec.Value, Delete: rec.Value == nil})
			}
			sr.next = rec.Offset + 1
			touched[sr] = true
		})
		for sr := range touched {
			if err := rs.apply(sr); err != nil {
				job := rs.owner[sr]
				rs.stop(job)
				rs.r.fail(fmt.Errorf("task %s: restore store %s: %w", job.id, sr.spec.Name, err))
			}
		}
		rs.logProgress(false)
	}
}

// start opens a job's stores and begins consuming their changelogs.
func (rs *restorer) start(ctx context.Context, job *restoreJob) error {
	job.mu.Lock()
	cancelled := job.state == jobCancelled
	job.mu.Unlock()
	if cancelled {
		return nil
	}
	rs.jobs[job] = true
	if err := os.MkdirAll(job.dir, 0o755); err != nil {
		return err
	}
	cpPath := filepath.Join(job.dir, checkpointFile)
	cp, err := state.ReadCheckpoint(cpPath)
	if err != nil {
		rs.r.log.Warn("unreadable checkpoint; restoring every store from its changelog's start", "task", job.id.String(), "err", err)
	}
	if cp == nil {
		cp = make(state.Checkpoint)
	}
	var topics []string
	for _, sr := range job.stores {
		if sr.topic != "" {
			topics = append(topics, sr.topic)
		}
	}
	var starts, ends kadm.ListedOffsets
	if len(topics) > 0 {
		if starts, ends, err = rs.listOffsets(ctx, topics, job.id.Partition); err != nil {
			return err
		}
	}

	// Decide every store's starting point first: a wiped store's entry
	// must leave the checkpoint before the store is rebuilt, or a crash
	// mid-restore would later trust a partial store.
	from := make(map[*storeRestore]int64)
	wipe := make(map[*storeRestore]bool)
	cpChanged := false
	for _, sr := range job.stores {
		dir := filepath.Join(job.dir, sr.spec.Name)
		if sr.topic == "" {
			continue // kept as it is on disk
		}
		start, err := listed(starts, sr.topic, sr.partition)
		if err != nil {
			return err
		}
		end, err := listed(ends, sr.topic, sr.partition)
		if err != nil {
			return err
		}
		sr.end = end
		key := checkpointKey(sr.topic, sr.partition)
		off, ok := cp[key]
		_, statErr := os.Stat(dir)
		switch {
		case ok && statErr == nil && off >= start && off <= end:
			from[sr] = off
		default:
			if ok {
				rs.r.log.Info("checkpoint not usable; restoring store from the changelog's start", "task", job.id.String(),
					"store", sr.spec.Name, "checkpoint", off, "log_start", start, "log_end", end, "dir_exists", statErr == nil)
				delete(cp, key)
				cpChanged = true
			}
			from[sr], wipe[sr] = start, true
		}
	}
	if cpChanged {
		if err := state.WriteCheckpoint(cpPath, cp); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
	}

	job.opened = make(map[string]state.Store)
	add := make(map[string]map[int32]kgo.Offset)
	for _, sr := range job.stores {
		dir := filepath.Join(job.dir, sr.spec.Name)
		if wipe[sr] {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
		s, err := state.OpenLevelDB(dir)
		if errors.Is(err, state.ErrCorrupt) && sr.topic != "" && !wipe[sr] {
			rs.r.log.Warn("corrupt store; restoring it from the changelog's start", "task", job.id.String(), "store", sr.spec.Name, "err", err)
			delete(cp, checkpointKey(sr.topic, sr.partition))
			if err := state.WriteCheckpoint(cpPath, cp); err != nil {
				return fmt.Errorf("write checkpoint: %w", err)
			}
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			start, _ := listed(starts, sr.topic, sr.partition)
			from[sr] = start
			s, err = state.OpenLevelDB(dir)
		}
		if err != nil {
			return fmt.Errorf("open store %s: %w", sr.spec.Name, err)
		}
		sr.store = s
		if err := writeMeta(job.dir, sr.spec, rs.r.cfg.AppID); err != nil {
			s.Close()
			return fmt.Errorf("store %s: %w", sr.spec.Name, err)
		}
		job.opened[sr.spec.Name] = s
		if sr.topic == "" {
			sr.done.Store(true)
			continue
		}
		sr.next = from[sr]
		sr.total.Store(max(0, sr.end-sr.next))
		if sr.next >= sr.end {
			sr.done.Store(true)
			continue
		}
		if len(rs.active) == 0 {
			rs.lastLog = time.Now() // progress is logged after restoreLogInterval
		}
		job.pending++
		rs.active[tp{sr.topic, sr.partition}] = sr
		rs.owner[sr] = job
		if add[sr.topic] == nil {
			add[sr.topic] = make(map[int32]kgo.Offset)
		}
		add[sr.topic][sr.partition] = kgo.NewOffset().At(sr.next)
		rs.r.log.Info("restoring store", "task", job.id.String(), "store", sr.spec.Name,
			"changelog", sr.topic, "from", sr.next, "to", sr.end)
	}
	rs.cl.AddConsumePartitions(add)
	if job.pending == 0 {
		return rs.finish(job)
	}
	return nil
}

// listOffsets lists the start and end offsets of a task's changelog
// partitions, retrying while the cluster is not ready to answer (a topic
// just created, a leader moving).
func (rs *restorer) listOffsets(ctx context.Context, topics []string, partition int32) (starts, ends kadm.ListedOffsets, err error) {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		starts, err = rs.adm.ListStartOffsets(ctx, topics...)
		if err == nil {
			ends, err = rs.adm.ListEndOffsets(ctx, topics...)
		}
		if err == nil {
			for _, t := range topics {
				if _, lerr := listed(starts, t, partition); lerr != nil {
					err = lerr
				}
				if _, lerr := listed(ends, t, partition); lerr != nil {
					err = lerr
				}
			}
		}
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) || !retriable(err) {
			if err != nil {
				err = fmt.Errorf("list changelog offsets: %w", err)
			}
			return starts, ends, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, time.Second)
	}
}

func retriable(err error) bool {
	return kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, errNotListed)
}

var errNotListed = errors.New("not listed")

// listed is one partition's listed offset.
func listed(offs kadm.ListedOffsets, topic string, partition int32) (int64, error) {
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		if t, ok := offs.Lookup(topic, -1); ok && t.Err != nil {
			return 0, fmt.Errorf("changelog %s: %w", topic, t.Err)
		}
		return 0, fmt.Errorf("changelog %s[%d]: %w", topic, partition, errNotListed)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("changelog %s[%d]: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// apply writes a store's batch and finishes it at the end offset.
func (rs *restorer) apply(sr *storeRestore) error {
	if err := sr.store.Write(sr.batch); err != nil {
		return err
	}
	n := int64(len(sr.batch))
	sr.batch = sr.batch[:0]
	sr.restored.Add(n)
	rs.r.restored.Add(n)
	if sr.next < sr.end {
		return nil
	}
	delete(rs.active, tp{sr.topic, sr.partition})
	rs.cl.RemoveConsumePartitions(map[string][]int32{sr.topic: {sr.partition}})
	sr.batch = nil
	sr.done.Store(true)
	job := rs.owner[sr]
	delete(rs.owner, sr)
	job.pending--
	if job.pending == 0 {
		return rs.finish(job)
	}
	return nil
}

// finish makes the restored stores durable, checkpoints them and hands
// the job to the processing loop.
func (rs *restorer) finish(job *restoreJob) error {
	cp := make(state.Checkpoint)
	for _, sr := range job.stores {
		if err := sr.store.Flush(); err != nil {
			return fmt.Errorf("flush store %s: %w", sr.spec.Name, err)
		}
		if sr.topic != "" {
			cp[checkpointKey(sr.topic, sr.partition)] = sr.next
		}
	}
	if len(cp) > 0 {
		if err := state.WriteCheckpoint(filepath.Join(job.dir, checkpointFile), cp); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
	}
	for _, sr := range job.stores {
		if sr.topic != "" && sr.restored.Load() > 0 {
			rs.r.log.Info("store restored", "task", job.id.String(), "store", sr.spec.Name, "records", sr.restored.Load())
		}
	}
	delete(rs.jobs, job)
	job.mu.Lock()
	if job.state == jobCancelled {
		job.mu.Unlock()
		closeStores(job.opened)
		return nil
	}
	job.state = jobDone
	job.mu.Unlock()
	rs.r.ready.push(job)
	rs.r.wake.wake()
	return nil
}

// stop abandons a job and closes its stores.
func (rs *restorer) stop(job *restoreJob) {
	if !rs.jobs[job] {
		return
	}
	delete(rs.jobs, job)
	remove := make(map[string][]int32)
	for _, sr := range job.stores {
		if rs.owner[sr] == job {
			delete(rs.active, tp{sr.topic, sr.partition})
			delete(rs.owner, sr)
			remove[sr.topic] = append(remove[sr.topic], sr.partition)
		}
	}
	rs.cl.RemoveConsumePartitions(remove)
	job.mu.Lock()
	job.state = jobCancelled
	job.mu.Unlock()
	closeStores(job.opened)
}

// closeAll closes what is left when the restorer has stopped.
func (rs *restorer) closeAll() {
	for _, c := range rs.takeCmds() {
		if c.cancel {
			rs.stop(c.job)
		}
	}
	for job := range rs.jobs {
		rs.stop(job)
	}
}

func (rs *restorer) logProgress(force bool) {
	if !force && time.Since(rs.lastLog) < restoreLogInterval {
		return
	}
	rs.lastLog = time.Now()
	for _, sr := range rs.active {
		rs.r.log.Info("restoring", "task", rs.owner[sr].id.String(), "store", sr.spec.Name,
			"restored", sr.restored.Load(), "total", sr.total.Load())
	}
}

func closeStores(stores map[string]state.Store) {
	for _, s := range stores {
		_ = s.Close()
	}
}

// readyList hands restored jobs to the processing loop.
type readyList struct {
	mu   sync.Mutex
	jobs []*restoreJob
}

func (l *readyList) push(j *restoreJob) {
	l.mu.Lock()
	l.jobs = append(l.jobs, j)
	l.mu.Unlock()
}

func (l *readyList) take() []*restoreJob {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.jobs
	l.jobs = nil
	return j
}

// writeMeta records how to decode the store beside it, for `weir state`;
// it rewrites the file (and its fsyncs) only when the content changed.
func writeMeta(taskDir string, spec *topology.Store, appID string) error {
	path := state.MetaPath(taskDir, spec.Name)
	m := spec.Meta(appID)
	if old, err := state.ReadMeta(path); err == nil && old == m {
		return nil
	}
	return state.WriteMeta(path, m)
}
