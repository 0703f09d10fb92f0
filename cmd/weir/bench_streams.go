package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/bench/harness"
	"github.com/weir-io/weir/bench/streams"
	"github.com/weir-io/weir/examples/windowed-revenue/revenue"
	"github.com/weir-io/weir/examples/wordcount/wordcount"
	"github.com/weir-io/weir/stream"
)

// streamStats is what a stream workload measures besides records.
type streamStats struct {
	unitName string // what else is counted, e.g. "words"; "" for nothing
	units    int64
	dropped  int64 // input records that no result includes
}

// streamTracker generates a stream workload's input and follows its
// output. The producer calls record and stamp for record i before sending
// it; the follower calls observe with every output record.
type streamTracker interface {
	// record returns input record i; i counts from 0 to records-1.
	record(i int64) *kgo.Record
	// warmup returns records produced before the measurement, whose
	// results show that the processor runs end to end.
	warmup(partitions int) []*kgo.Record
	// sentinels returns records produced after the measured ones so that
	// every measured record has a result (they close windows).
	sentinels() []*kgo.Record
	// observe takes one output record, seen at now since base, records in
	// hist the delay of every input record it completes, and returns how
	// many it completes.
	observe(key, value []byte, now time.Duration, hist *harness.Histogram) (int64, error)
	// warmedUp reports whether every warm-up result has been seen.
	warmedUp() bool
	stats() streamStats
	// times are the send times of the input records.
	times() sendTimes
}

// sendTimes holds, per input record, its due time in nanoseconds since the
// run's base time plus one (zero: not sent yet). The producer writes and
// the follower reads them concurrently.
type sendTimes []atomic.Int64

func (s sendTimes) stamp(i int64, sinceBase time.Duration) { s[i].Store(int64(sinceBase) + 1) }

// delay is the time from record i's due time to now, both since base.
func (s sendTimes) delay(i int64, now time.Duration) (time.Duration, error) {
	t := s[i].Load()
	if t == 0 {
		return 0, fmt.Errorf("a result includes input record %d before it was sent", i)
	}
	return now - time.Duration(t-1), nil
}

func (r *benchRun) newTracker() streamTracker {
	if r.workload == "wordcount" {
		return newWordCountTracker(r.records, r.keys)
	}
	return newRevenueTracker(r.records, r.keys)
}

// streamEngine is a running stream processor: weir's App or a goka
// processor.
type streamEngine struct {
	done     chan error // receives Run's result
	cancel   context.CancelFunc
	restored func() (n int64, done bool)
}

// stop ends the processor and returns its error, if it failed.
func (e *streamEngine) stop() error {
	e.cancel()
	err := <-e.done
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// streamNames are the topics and ids of one stream run.
type streamNames struct {
	input, output, appID, stateDir string
}

func (r *benchRun) startEngine(ctx context.Context, n streamNames) (*streamEngine, error) {
	if r.engine == "goka" {
		return r.startGoka(ctx, n)
	}
	return r.startWeir(ctx, n)
}

func (r *benchRun) startWeir(ctx context.Context, n streamNames) (*streamEngine, error) {
	topo := wordcount.Topology(n.input, n.output)
	if r.workload == "windowed-revenue" {
		topo = revenue.Topology(n.input, n.output)
	}
	app, err := stream.NewApp(topo, stream.AppConfig{
		ApplicationID: n.appID, Brokers: r.a.seeds(), StateDir: n.stateDir,
		CommitInterval:      r.commitInterval,
		ProcessingGuarantee: stream.ProcessingGuarantee(r.guarantee),
		ReplicationFactor:   int16(r.replication),
		Logger:              slog.New(slog.NewTextHandler(r.a.stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &streamEngine{done: make(chan error, 1), cancel: cancel, restored: func() (int64, bool) { return weirRestored(app) }}
	go func() { e.done <- app.Run(ctx) }()
	return e, nil
}

// weirRestored sums the restoration progress of the app's stores.
func weirRestored(app *stream.App) (n int64, done bool) {
	tasks := app.TaskStatus()
	done = len(tasks) > 0
	for _, ts := range tasks {
		for _, s := range ts.Stores {
			n += s.Restored
			done = done && s.Done
		}
	}
	return n, done
}

func (r *benchRun) startGoka(ctx context.Context, n streamNames) (*streamEngine, error) {
	cfg := streams.GokaConfig{
		Brokers: r.a.seeds(), Group: n.appID, Input: n.input, Output: n.output,
		StorageDir: n.stateDir, Replication: max(r.replication, 1),
	}
	build := streams.GokaWordCount
	if r.workload == "windowed-revenue" {
		build = streams.GokaWindowedRevenue
	}
	p, err := build(cfg)
	if err != nil {
		return nil, fmt.Errorf("goka: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var ready atomic.Bool // goka reports readiness by blocking until it
	e := &streamEngine{done: make(chan error, 1), cancel: cancel, restored: func() (int64, bool) { return 0, ready.Load() }}
	go func() { e.done <- p.Run(ctx) }()
	go func() {
		if p.WaitForReadyContext(ctx) == nil && p.Recovered() {
			ready.Store(true)
		}
	}()
	return e, nil
}

// runStream runs a stream workload: new topics, the engine, and either
// the restore measurement or the generator and result follower.
func (r *benchRun) runStream(ctx context.Context, adm *kadm.Client) (benchResult, error) {
	n := streamNames{input: r.topic + "-in", output: r.topic + "-out", appID: r.topic}
	for _, t := range []string{n.input, n.output} {
		if err := r.createTopic(ctx, adm, t, nil); err != nil {
			return benchResult{}, err
		}
	}
	if !r.embedded {
		defer r.deleteStreamTopics(ctx, adm, n.appID)
	}
	var err error
	if n.stateDir, err = os.MkdirTemp("", "weir-bench-state-"); err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(n.stateDir)
	if r.workload == "restore" {
		return r.restore(ctx, adm, n)
	}
	return r.process(ctx, n)
}

// deleteStreamTopics deletes the run's topics, its application's internal
// topics included, which all start with the application id.
func (r *benchRun) deleteStreamTopics(ctx context.Context, adm *kadm.Client, appID string) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(lctx)
	if err != nil {
		fmt.Fprintf(r.a.stderr, "weir bench: listing topics to delete: %v\n", err)
		return
	}
	var names []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, appID) {
			names = append(names, t)
		}
	}
	r.deleteTopics(ctx, adm, names...)
}

// streamStall is how long a stream workload may go without a result before
// it is declared stuck.
const streamStall = 2 * time.Minute

// process measures a processing workload: the engine runs, a follower
// reads the output, warm-up records prove the path end to end, then the
// measured records are produced at the target rate and the clock stops
// when every one of them is included in a result.
func (r *benchRun) process(ctx context.Context, n streamNames) (benchResult, error) {
	tr := r.newTracker()
	r.hist = harness.NewHistogram()
	eng, err := r.startEngine(ctx, n)
	if err != nil {
		return benchResult{}, err
	}
	defer eng.stop()
	prod, err := r.a.client(ctx, kgo.DefaultProduceTopic(n.input), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return benchResult{}, err
	}
	defer prod.Close()
	f, err := r.follow(ctx, n.output, tr)
	if err != nil {
		return benchResult{}, err
	}
	defer f.stop()

	r.phase.Store("warming up")
	if err := r.produceRecords(ctx, prod, tr.warmup(r.partitions)); err != nil {
		return benchResult{}, err
	}
	if err := f.wait(ctx, eng, tr.warmedUp); err != nil {
		return benchResult{}, fmt.Errorf("warming up: %w", err)
	}

	if err := r.begin("processed"); err != nil {
		return benchResult{}, err
	}
	bytes, err := r.generate(ctx, prod, tr, f.base)
	if err != nil {
		return benchResult{}, err
	}
	if err := f.wait(ctx, eng, func() bool { return r.done.Load()+tr.stats().dropped >= r.records }); err != nil {
		return benchResult{}, err
	}
	res, err := r.end(r.done.Load())
	st := tr.stats()
	res.bytes, res.stream = bytes, &st
	return res, err
}

// generate produces the measured records at the target rate, then the
// sentinels, and returns the bytes of the measured records' keys and
// values.
func (r *benchRun) generate(ctx context.Context, prod *kgo.Client, tr streamTracker, base time.Time) (int64, error) {
	pacer := harness.NewPacer(r.rate)
	var failed firstErr
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.set(err)
		}
	}
	var bytes int64
	times := tr.times()
	for i := range r.records {
		due, err := pacer.Wait(ctx, i)
		if err != nil {
			return 0, err
		}
		rec := tr.record(i)
		rec.Partition = int32(i % int64(r.partitions)) // round robin: the input's keys do not matter
		bytes += int64(len(rec.Key) + len(rec.Value))
		times.stamp(i, due.Sub(base))
		prod.Produce(ctx, rec, promise)
		if err := failed.get(); err != nil {
			return 0, produceErr(rec.Topic, err)
		}
	}
	if err := r.produceRecords(ctx, prod, tr.sentinels()); err != nil {
		return 0, err
	}
	return bytes, nil
}

// produceRecords produces recs and waits for their acknowledgements.
func (r *benchRun) produceRecords(ctx context.Context, prod *kgo.Client, recs []*kgo.Record) error {
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return produceErr(recs[0].Topic, err)
	}
	return nil
}

// follower reads a stream workload's output topic from its start.
type follower struct {
	base     time.Time     // the time origin of sendTimes
	progress chan struct{} // signalled (without blocking) after each fetch with results
	failed   chan error    // receives the follower's error, once
	cancel   context.CancelFunc
	stopped  chan struct{}
}

func (r *benchRun) follow(ctx context.Context, topic string, tr streamTracker) (*follower, error) {
	// Under exactly-once a result counts once its transaction commits.
	iso := kgo.ReadUncommitted()
	if r.guarantee == string(stream.ExactlyOnceV2) {
		iso = kgo.ReadCommitted()
	}
	cl, err := r.a.client(ctx, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &follower{base: time.Now(), progress: make(chan struct{}, 1), failed: make(chan error, 1),
		cancel: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(f.stopped)
		defer cl.Close()
		f.failed <- f.run(fctx, cl, tr, r)
	}()
	return f, nil
}

func (f *follower) run(ctx context.Context, cl *kgo.Client, tr streamTracker, r *benchRun) error {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("following the output: %w", err)
		}
		now := time.Since(f.base)
		var err error
		fs.EachRecord(func(rec *kgo.Record) {
			if err != nil {
				return
			}
			var n int64
			n, err = tr.observe(rec.Key, rec.Value, now, r.hist)
			r.done.Add(n)
		})
		if err != nil {
			return err
		}
		select {
		case f.progress <- struct{}{}:
		default:
		}
	}
}

// wait returns once cond holds, or with an error when the follower or the
// engine fails, ctx ends, or no result arrives for streamStall.
func (f *follower) wait(ctx context.Context, eng *streamEngine, cond func() bool) error {
	stall := time.NewTimer(streamStall)
	defer stall.Stop()
	for !cond() {
		select {
		case <-f.progress:
			stall.Reset(streamStall)
		case err := <-f.failed:
			f.failed <- err // for stop
			return err
		case err := <-eng.done:
			eng.done <- err // for stop
			return fmt.Errorf("the stream processor stopped: %w", err)
		case <-stall.C:
			return fmt.Errorf("no new results for %v", streamStall)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *follower) stop() {
	f.cancel()
	<-f.stopped
}

// restore measures rebuilding a word-count store: its changelog is filled
// with --records keys, then the engine starts with empty local state and
// the clock runs until the store reports itself restored.
func (r *benchRun) restore(ctx context.Context, adm *kadm.Client, n streamNames) (benchResult, error) {
	changelog, encode := restoreChangelog(r.engine, n.appID)
	compact := map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
	if err := r.createTopic(ctx, adm, changelog, compact); err != nil {
		return benchResult{}, err
	}
	r.phase.Store("preparing: changelog")
	bytes, err := r.fillChangelog(ctx, changelog, encode)
	if err != nil {
		return benchResult{}, err
	}
	if err := r.begin("restored"); err != nil {
		return benchResult{}, err
	}
	eng, err := r.startEngine(ctx, n)
	if err != nil {
		return benchResult{}, err
	}
	defer eng.stop()
	if err := r.waitRestored(ctx, eng); err != nil {
		return benchResult{}, err
	}
	res, err := r.end(r.records)
	res.bytes = bytes
	return res, err
}

// restoreChangelog names the engine's changelog of the word-count store
// and returns how it encodes a count.
func restoreChangelog(engine, appID string) (string, func(int64) []byte) {
	if engine == "goka" { // goka's group table, counts as decimal text
		return appID + "-table", func(n int64) []byte { return fmt.Appendf(nil, "%d", n) }
	}
	return appID + "-" + wordcount.Store + "-changelog", func(n int64) []byte { // serde.Int64: big-endian
		return []byte{byte(n >> 56), byte(n >> 48), byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

// fillChangelog writes --records distinct words with their counts,
// partitioned by key as the engines partition them.
func (r *benchRun) fillChangelog(ctx context.Context, topic string, encode func(int64) []byte) (int64, error) {
	cl, err := r.a.client(ctx, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var failed firstErr
	var bytes int64
	for i := range r.records {
		rec := &kgo.Record{Key: fmt.Appendf(nil, "word%d", i), Value: encode(i%1000 + 1)}
		bytes += int64(len(rec.Key) + len(rec.Value))
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.set(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	return bytes, failed.get()
}

// waitRestored polls the engine until its stores are restored; the
// polling interval bounds the error of the measured time.
func (r *benchRun) waitRestored(ctx context.Context, eng *streamEngine) error {
	const poll = 5 * time.Millisecond
	tick := time.NewTicker(poll)
	defer tick.Stop()
	deadline := time.Now().Add(streamStall)
	for {
		n, done := eng.restored()
		r.done.Store(n)
		if done {
			return nil
		}
		select {
		case err := <-eng.done:
			eng.done <- err
			return fmt.Errorf("the stream processor stopped while restoring: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			if now.After(deadline) {
				return fmt.Errorf("stores not restored after %v (%d records restored)", streamStall, n)
			}
		}
	}
}
