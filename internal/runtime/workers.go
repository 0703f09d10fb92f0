package runtime

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Parallel processing
//
// Tasks process in parallel; each task's records stay in order. The loop
// polls, splits a poll's records by task and appends each task's share to
// the task's queue. A goroutine per task with queued work drains the
// queue, holding one of Config.Workers slots while it processes a batch,
// so at most that many tasks run at once, and the Go scheduler spreads
// them over the cores. The loop meanwhile polls again, up to
// maxPollsInFlight polls that are not fully processed: polling and
// processing overlap, and one poll's skew (franz-go fills a poll
// partition by partition, so it may hold one task's records only) does
// not leave the other workers idle.
//
// What needs the tasks to stand still — a commit, the rebalance
// callbacks, shutdown — first waits until every dispatched poll is
// processed (quiesce). The callbacks cannot run earlier: under
// BlockRebalanceOnPoll the client runs them only after AllowRebalance,
// which the loop calls only when no poll is in flight.

// maxPollsInFlight bounds the polls dispatched and not yet processed, and
// so the records held in task queues (maxPollRecords each) and the time a
// commit or rebalance waits for the queues to drain.
const maxPollsInFlight = 4

// partBatch is one input partition's records of a poll.
type partBatch struct {
	tp   tp
	recs []*kgo.Record // the records not processed yet
	hwm  int64         // the partition's high watermark in the fetch
	last *kgo.Record   // the last record processed
}

// taskBatch is one task's share of a poll.
type taskBatch struct {
	parts []partBatch
	poll  *pollWork
}

// pollWork counts a poll's task batches still to process; the last one
// done releases the poll's in-flight token.
type pollWork struct {
	r    *Runtime
	left atomic.Int32
}

func (p *pollWork) done() {
	if p.left.Add(-1) == 0 {
		<-p.r.inflight
		idle := len(p.r.inflight) == 0
		p.r.busy.Done()
		if idle && p.r.pendingFlush.Load() {
			p.r.wake.wake() // the tasks went idle with results to flush (prompt.go)
		}
	}
}

// taskQueue is a task's batches waiting for its drain goroutine.
type taskQueue struct {
	mu       sync.Mutex
	batches  []taskBatch
	draining bool // a goroutine is draining the queue
}

// push queues b and reports whether the queue needs a drain goroutine.
func (q *taskQueue) push(b taskBatch) (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batches = append(q.batches, b)
	start = !q.draining
	q.draining = true
	return start
}

// pop takes the oldest batch; when there is none the draining goroutine
// ends, which pop records under the same lock push checks.
func (q *taskQueue) pop() (taskBatch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.batches) == 0 {
		q.batches, q.draining = nil, false
		return taskBatch{}, false
	}
	b := q.batches[0]
	q.batches[0] = taskBatch{} // let the records go once processed
	q.batches = q.batches[1:]
	return b, true
}

// dispatch hands a poll's records to their tasks. It blocks while
// maxPollsInFlight polls are in process. Loop goroutine only.
func (r *Runtime) dispatch(batches map[*taskState][]partBatch, order []*taskState) {
	if len(order) == 0 {
		return
	}
	r.inflight <- struct{}{}
	r.busy.Add(1)
	p := &pollWork{r: r}
	p.left.Store(int32(len(order)))
	for _, ts := range order {
		if ts.queue.push(taskBatch{parts: batches[ts], poll: p}) {
			go r.drain(ts)
		}
	}
}

// drain processes a task's queued batches in order until the queue is
// empty.
func (r *Runtime) drain(ts *taskState) {
	for {
		b, ok := ts.queue.pop()
		if !ok {
			return
		}
		r.slots <- struct{}{}
		r.runBatch(ts, b.parts)
		<-r.slots
		b.poll.done()
	}
}

// runBatch runs a task's share of a poll. Records of different partitions
// are interleaved by timestamp (the head with the smallest timestamp goes
// first), as Kafka Streams does, so joins see their inputs in event-time
// order. A failure is fatal: it stops the application, and the records
// left are not processed (their offsets are not committed).
func (r *Runtime) runBatch(ts *taskState, parts []partBatch) {
	var done int64
	for !r.failed.Load() {
		next := -1
		for i, p := range parts {
			if len(p.recs) > 0 && (next < 0 || p.recs[0].Timestamp.Before(parts[next].recs[0].Timestamp)) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		rec := parts[next].recs[0]
		if err := r.process(ts, rec); err != nil {
			r.fail(err)
			break
		}
		parts[next].recs = parts[next].recs[1:]
		parts[next].last = rec
		done++
	}
	r.advance(ts, parts, done)
}

// advance records a batch's progress: the next offset of every partition
// it processed records of, the high watermarks, the count.
func (r *Runtime) advance(ts *taskState, parts []partBatch, done int64) {
	for _, p := range parts {
		ts.hwm[p.tp] = p.hwm
		if p.last != nil {
			ts.offsets[p.tp] = kgo.EpochOffset{Epoch: p.last.LeaderEpoch, Offset: p.last.Offset + 1}
		}
	}
	if done > 0 {
		ts.dirty, ts.unflushed = true, true
		r.pendingFlush.Store(true)
		r.processed.Add(done)
	}
	r.snapshot(ts)
}

// idle reports whether every dispatched poll is processed. Loop goroutine
// only: only the loop dispatches, so the answer holds until it does.
func (r *Runtime) idle() bool { return len(r.inflight) == 0 }

// quiesce waits until every dispatched poll is processed. Loop goroutine
// only.
func (r *Runtime) quiesce() { r.busy.Wait() }

// eachTask runs f for every task in parallel, as many at once as there are
// worker slots, and returns the first error in the tasks' order. The tasks
// must be idle.
func (r *Runtime) eachTask(tasks []*taskState, f func(*taskState) error) error {
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, ts := range tasks {
		r.slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-r.slots }()
			errs[i] = f(ts)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
