package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-io/weir/bench/harness"
	"github.com/weir-io/weir/stream"
)

// benchWorkloads are the subcommands of weir bench.
var benchWorkloads = []command{
	{"produce", "produce records and measure throughput and acknowledgement latency", benchWorkload("produce")},
	{"consume", "produce records, then measure how fast they are consumed", benchWorkload("consume")},
	{"e2e", "produce at a target rate and measure produce→consume latency", benchWorkload("e2e")},
	{"wordcount", "run the word-count topology (or goka's) through the broker", benchWorkload("wordcount")},
	{"windowed-revenue", "run the windowed-revenue topology (or goka's) through the broker", benchWorkload("windowed-revenue")},
	{"restore", "time rebuilding a word-count store of N keys from its changelog", benchWorkload("restore")},
}

// isStreamWorkload reports whether workload runs a stream processor rather
// than Kafka clients alone.
func isStreamWorkload(workload string) bool {
	switch workload {
	case "wordcount", "windowed-revenue", "restore":
		return true
	}
	return false
}

func (a *app) benchCmd(ctx context.Context, w io.Writer, args []string) error {
	if len(args) > 0 && args[0] == internalBrokerCmd { // not listed: --embedded's child
		return a.benchBrokerCmd(ctx, w, args[1:])
	}
	return a.dispatch(ctx, w, "bench", benchWorkloads, args)
}

// benchOpts are the flags of a workload.
type benchOpts struct {
	workload    string
	embedded    bool
	records     int64
	recordSize  int
	partitions  int
	keys        int
	acks        string
	compression string
	linger      time.Duration
	rate        float64
	client      string
	// txnInterval, when positive, produces in transactions committed
	// this often (kafka-producer-perf-test's --transaction-duration-ms).
	txnInterval time.Duration
	results     string
	cpuprofile  string
	memprofile  string

	brokerImpl     string        // what --embedded runs: weir or kfake
	brokerPID      int           // an external broker's process, for its usage
	engine         string        // stream workloads: weir or goka
	commitInterval time.Duration // stream workloads on weir; 0 is the App's default
	guarantee      string        // weir's processing guarantee: at_least_once or exactly_once_v2
	replication    int           // of the topics a stream workload creates; -1 is the broker's default
}

var benchAbout = map[string]string{
	"produce": "Produces --records records to a new topic and reports throughput and the latency from each\n" +
		"record's send to its acknowledgement.",
	"consume": "Produces --records records to a new topic, then consumes them from the start as fast as\n" +
		"possible and reports the consume throughput.",
	"e2e": "Produces --records records at --rate records/s while a consumer reads them, and reports the\n" +
		"latency from each record's scheduled send time (stamped into its value) to its consumption.",
	"wordcount": "Runs examples/wordcount's topology (--engine weir) or the same word count written for goka\n" +
		"(--engine goka, LevelDB storage) on new topics, produces --records lines of 10 words drawn from\n" +
		"--keys words at --rate lines/s, and reports the lines/s processed and the delay from each\n" +
		"line's production to the output record that first includes its last word's count.",
	"windowed-revenue": "Runs examples/windowed-revenue's topology (--engine weir) or its hand-written goka equivalent\n" +
		"(--engine goka) on new topics, produces --records orders over --keys regions at --rate orders/s,\n" +
		"1 ms of event time apart, and reports the orders/s processed and the delay from each order's\n" +
		"production to its window's final result in the output topic.",
	"restore": "Fills the changelog of a word-count store with --records keys, starts the application\n" +
		"(--engine weir) or goka processor (--engine goka) with empty local state, and reports how long\n" +
		"it takes until the store is rebuilt.",
}

func benchWorkload(workload string) func(a *app, ctx context.Context, w io.Writer, args []string) error {
	return func(a *app, ctx context.Context, w io.Writer, args []string) error {
		o := benchOpts{workload: workload}
		synopsis := " [--brokers ADDR | --embedded] [--records N] [--record-size B] [flags]"
		if isStreamWorkload(workload) {
			synopsis = " [--brokers ADDR | --embedded] [--engine weir|goka] [--records N] [flags]"
		}
		fs := a.newFlags("bench "+workload, "weir bench "+workload+synopsis,
			benchAbout[workload]+"\n\nA progress line is shown on stderr when it is a terminal; the summary goes to stdout.\n"+
				"Broker CPU and memory are reported with --embedded, or with --broker-pid for a local broker.\n"+
				"The topics are deleted afterwards.")
		o.addCommonFlags(fs)
		if isStreamWorkload(workload) {
			o.addStreamFlags(fs)
		} else {
			o.addClientFlags(fs)
		}
		pos, err := fs.parse(w, args)
		if err != nil {
			return err
		}
		if _, err := fs.positional(pos); err != nil {
			return err
		}
		if err := o.validate(); err != nil {
			return fs.usageErr("%v", err)
		}
		return a.bench(ctx, w, o)
	}
}

func (o *benchOpts) addCommonFlags(fs *flagSet) {
	fs.BoolVar(&o.embedded, "embedded", false, "start a broker in a child process for the run, instead of using --brokers")
	fs.StringVar(&o.brokerImpl, "broker-impl", "weir", "the broker --embedded starts: weir, or kfake (franz-go's in-memory fake, a peer)")
	fs.IntVar(&o.brokerPID, "broker-pid", 0, "report the CPU and peak memory of the local broker process `PID` (with --brokers)")
	partitions := 3
	if o.workload == "windowed-revenue" {
		// As in the example: one input partition keeps the orders in
		// event-time order, so none is late for its window (with several,
		// one partition's batch can run more than the grace ahead of another's).
		partitions = 1
	}
	fs.IntVar(&o.partitions, "partitions", partitions, "create the benchmark topics with `P` partitions")
	fs.Float64Var(&o.rate, "rate", 0, "produce `R` records/s (0: as fast as possible)")
	fs.IntVar(&o.replication, "replication-factor", -1, "replication factor `R` of the topics created (-1: the broker's default)")
	fs.StringVar(&o.results, "results", "", "append the run's results as one JSON line to `FILE` (e.g. bench/results/runs.jsonl)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write this process's CPU profile to `F` (and, with --embedded, the broker's to F.broker)")
	fs.StringVar(&o.memprofile, "memprofile", "", "write this process's heap profile at the end to `F` (and, with --embedded, the broker's to F.broker)")
}

func (o *benchOpts) addClientFlags(fs *flagSet) {
	fs.Int64Var(&o.records, "records", 1_000_000, "produce `N` records")
	fs.IntVar(&o.recordSize, "record-size", 100, "record values of `B` random bytes")
	fs.IntVar(&o.keys, "keys", 0, "give records one of `K` distinct keys, partitioned by key hash (0: no keys)")
	fs.StringVar(&o.acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	fs.StringVar(&o.compression, "compression", "none", "batch compression: none, snappy, lz4, zstd or gzip")
	fs.DurationVar(&o.linger, "linger", 10*time.Millisecond, "let the producer wait up to `D` to fill a batch")
	fs.StringVar(&o.client, "client", "franz-go", "Kafka client library: franz-go or sarama")
	fs.DurationVar(&o.txnInterval, "transaction-interval", 0,
		"produce in transactions, committing one every `D` (franz-go, acks all; 0: idempotent, no transactions)")
}

func (o *benchOpts) addStreamFlags(fs *flagSet) {
	defaults := map[string]struct {
		records int64
		keys    int
		about   string
	}{
		"wordcount":        {200_000, 10_000, "draw words from a vocabulary of `K` words"},
		"windowed-revenue": {500_000, 16, "spread orders over `K` regions"},
		"restore":          {200_000, 0, "unused"},
	}[o.workload]
	fs.Int64Var(&o.records, "records", defaults.records, "input records (restore: keys in the store) `N`")
	if o.workload != "restore" {
		fs.IntVar(&o.keys, "keys", defaults.keys, defaults.about)
	}
	fs.StringVar(&o.engine, "engine", "weir", "stream processor: weir, or goka (the peer)")
	fs.DurationVar(&o.commitInterval, "commit-interval", 0, "weir's commit interval `D` (0: the App's default: 1s, 100ms under exactly_once_v2)")
	fs.StringVar(&o.guarantee, "processing-guarantee", string(stream.AtLeastOnce),
		"weir's processing guarantee: at_least_once or exactly_once_v2 (the output is then read read_committed)")
	// The input generator is a franz-go producer with acks=all.
	o.acks, o.compression, o.client = "all", "none", "franz-go"
}

func (o *benchOpts) validate() error {
	switch {
	case o.brokerImpl != "weir" && o.brokerImpl != "kfake":
		return fmt.Errorf("--broker-impl must be weir or kfake, got %q", o.brokerImpl)
	case o.brokerImpl != "weir" && !o.embedded:
		return errors.New("--broker-impl needs --embedded")
	case o.brokerPID != 0 && o.embedded:
		return errors.New("--broker-pid is for --brokers; --embedded measures its own broker")
	case isStreamWorkload(o.workload) && o.engine != "weir" && o.engine != "goka":
		return fmt.Errorf("--engine must be weir or goka, got %q", o.engine)
	case isStreamWorkload(o.workload) && o.workload != "restore" && o.keys < 1:
		return fmt.Errorf("--keys must be at least 1, got %d", o.keys)
	case o.records < 1:
		return fmt.Errorf("--records must be at least 1, got %d", o.records)
	case !isStreamWorkload(o.workload) && (o.recordSize < 1 || o.recordSize > 64<<20):
		return fmt.Errorf("--record-size must be between 1 and %d, got %d", 64<<20, o.recordSize)
	case o.workload == "e2e" && o.recordSize < stampSize:
		return fmt.Errorf("--record-size must be at least %d for e2e (the send time is stamped into the value)", stampSize)
	case o.partitions < 1 || o.partitions > 1<<20:
		return fmt.Errorf("--partitions must be at least 1, got %d", o.partitions)
	case o.keys < 0:
		return fmt.Errorf("--keys must not be negative, got %d", o.keys)
	case o.rate < 0:
		return fmt.Errorf("--rate must not be negative, got %g", o.rate)
	case o.linger < 0:
		return fmt.Errorf("--linger must not be negative, got %v", o.linger)
	case isStreamWorkload(o.workload) && !validGuarantee(o.guarantee):
		return fmt.Errorf("--processing-guarantee must be at_least_once or exactly_once_v2, got %q", o.guarantee)
	case o.engine == "goka" && o.guarantee != string(stream.AtLeastOnce):
		return errors.New("--processing-guarantee is weir's: goka has no exactly-once")
	case o.txnInterval < 0:
		return fmt.Errorf("--transaction-interval must not be negative, got %v", o.txnInterval)
	case o.txnInterval > 0 && (o.client != "franz-go" || o.acks != "all" || o.workload != "produce"):
		return errors.New("--transaction-interval needs the produce workload, --client franz-go and --acks all")
	}
	if _, ok := benchClients[o.client]; !ok {
		return fmt.Errorf("--client must be franz-go or sarama, got %q", o.client)
	}
	switch o.acks {
	case "all", "-1", "1", "0":
	default:
		return fmt.Errorf("--acks must be all, 1 or 0, got %q", o.acks)
	}
	switch o.compression {
	case "none", "snappy", "lz4", "zstd", "gzip":
	default:
		return fmt.Errorf("--compression must be none, snappy, lz4, zstd or gzip, got %q", o.compression)
	}
	return nil
}

// stampSize is the bytes of an e2e record's value that hold its send time.
const stampSize = 8

// benchResult is what a workload measured.
type benchResult struct {
	records int64
	bytes   int64 // of the records' keys and values
	elapsed time.Duration
	latency *harness.Histogram // nil for consume and restore
	client  harness.Usage      // during the measured phase, peak over the process's life
	broker  *harness.Usage     // nil unless the broker's process is known
	stream  *streamStats       // stream workloads only
}

// benchRun is one run of a workload: its options, the broker it uses and
// what is measured while it runs.
type benchRun struct {
	benchOpts
	a      *app
	topic  string
	values [][]byte
	// brokerUsage reads the broker's usage; nil when its process is unknown.
	brokerUsage func() (harness.Usage, error)

	done    atomic.Int64       // records acknowledged or consumed so far
	phase   atomic.Value       // string shown in the progress line
	hist    *harness.Histogram // latencies; nil for consume
	start   time.Time
	client0 harness.Usage
	broker0 harness.Usage
}

func (a *app) bench(ctx context.Context, w io.Writer, o benchOpts) (err error) {
	stopProfiles, err := startProfiles(o.cpuprofile, o.memprofile)
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfiles(); perr != nil && err == nil {
			err = perr
		}
	}()
	r := &benchRun{
		benchOpts: o,
		a:         a,
		topic:     fmt.Sprintf("weir-bench-%s-%d", o.workload, time.Now().UnixNano()),
	}
	if !isStreamWorkload(o.workload) {
		r.values = randomValues(o.recordSize)
	}
	r.phase.Store("starting")
	switch {
	case o.embedded:
		b, err := a.startEmbeddedBroker(ctx, o.brokerImpl, profilePath(o.cpuprofile), profilePath(o.memprofile))
		if err != nil {
			return err
		}
		defer func() {
			if cerr := b.stop(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		r.brokerUsage = b.usage
		a.brokers = b.addr
	case o.brokerPID != 0:
		r.brokerUsage = func() (harness.Usage, error) { return harness.Proc(o.brokerPID) }
	}

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()

	stopProgress := func() {}
	if isTerminal(a.stderr) {
		stopProgress = r.showProgress(a.stderr, time.Second)
	}
	res, err := r.runWorkload(ctx, adm)
	stopProgress() // clears its line before the summary
	if err != nil {
		return err
	}
	r.writeSummary(w, res)
	if o.results != "" {
		if err := harness.AppendJSONL(o.results, r.jsonRecord(res)); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
	}
	return nil
}

// profilePath is where the embedded broker writes its profile: beside
// this process's, with a .broker suffix.
func profilePath(path string) string {
	if path == "" {
		return ""
	}
	return path + ".broker"
}

// startProfiles starts a CPU profile to cpu and arranges a heap profile
// to mem; the returned stop ends the one and writes the other.
func startProfiles(cpu, mem string) (stop func() error, err error) {
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, err
		}
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpuFile.Close())
		}
		if mem != "" {
			errs = append(errs, writeHeapProfile(mem))
		}
		return errors.Join(errs...)
	}, nil
}

// writeHeapProfile writes the heap profile as of the last GC, forced now
// so that it is up to date.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runWorkload creates the workload's topics, runs it and removes them from
// an external broker (an embedded broker's data goes with it).
func (r *benchRun) runWorkload(ctx context.Context, adm *kadm.Client) (benchResult, error) {
	if isStreamWorkload(r.workload) {
		return r.runStream(ctx, adm)
	}
	if err := r.createTopic(ctx, adm, r.topic, nil); err != nil {
		return benchResult{}, err
	}
	if !r.embedded {
		defer r.deleteTopics(ctx, adm, r.topic)
	}
	if r.workload != "consume" {
		r.hist = harness.NewHistogram()
	}
	switch r.workload {
	case "produce":
		return r.produce(ctx)
	case "consume":
		return r.consume(ctx)
	}
	return r.e2e(ctx)
}

func (r *benchRun) createTopic(ctx context.Context, adm *kadm.Client, topic string, configs map[string]*string) error {
	cctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	rf := int16(-1)
	if r.replication > 0 {
		rf = int16(r.replication)
	}
	resp, err := adm.CreateTopic(cctx, int32(r.partitions), rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return topicErr(topic, err, resp.ErrMessage)
	}
	return nil
}

func (r *benchRun) deleteTopics(ctx context.Context, adm *kadm.Client, topics ...string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	resps, err := adm.DeleteTopics(dctx, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		fmt.Fprintf(r.a.stderr, "weir bench: deleting topics %v: %v\n", topics, err)
	}
}

// randomValues returns record values of size bytes to reuse round-robin.
// They are random so that compression measures a realistic worst case
// rather than the compressor's best.
func randomValues(size int) [][]byte {
	n := max(1, min(1024, (64<<20)/size))
	rng := rand.New(rand.NewPCG(1, 2))
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = make([]byte, size)
		for j := range vs[i] {
			vs[i][j] = byte(rng.Uint32())
		}
	}
	return vs
}

func (r *benchRun) key(i int64) []byte {
	if r.keys == 0 {
		return nil
	}
	return []byte("key-" + strconv.FormatInt(i%int64(r.keys), 10))
}

// begin starts the measured phase.
func (r *benchRun) begin(phase string) error {
	var err error
	if r.client0, err = harness.Self(); err != nil {
		return err
	}
	if r.brokerUsage != nil {
		if r.broker0, err = r.brokerUsage(); err != nil {
			return err
		}
	}
	r.done.Store(0)
	r.start = time.Now()
	r.phase.Store(phase)
	return nil
}

// end finishes the measured phase.
func (r *benchRun) end(records int64) (benchResult, error) {
	res := benchResult{records: records, bytes: records * int64(r.recordSize), elapsed: time.Since(r.start), latency: r.hist}
	self, err := harness.Self()
	if err != nil {
		return res, err
	}
	res.client = self.Sub(r.client0)
	if r.brokerUsage != nil {
		u, err := r.brokerUsage()
		if err != nil {
			return res, err
		}
		u = u.Sub(r.broker0)
		res.broker = &u
	}
	return res, nil
}

// produceAll produces n records with p at the target rate and waits for
// their acknowledgements. value returns the value of record i, due at the
// given time.
func (r *benchRun) produceAll(ctx context.Context, p benchProducer, n int64, rate float64,
	value func(i int64, due time.Time) []byte) error {
	pacer := harness.NewPacer(rate)
	var err error
	for i := int64(0); i < n; i++ {
		var due time.Time
		if due, err = pacer.Wait(ctx, i); err != nil {
			break
		}
		p.send(ctx, r.key(i), value(i, due), due)
		if p.failed() != nil {
			break
		}
	}
	fctx := ctx
	if err != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	if ferr := p.flush(fctx); ferr != nil && err == nil {
		err = ferr
	}
	if err == nil && p.failed() != nil {
		err = produceErr(r.topic, p.failed())
	}
	return err
}

func (r *benchRun) poolValue(i int64, _ time.Time) []byte { return r.values[i%int64(len(r.values))] }

// produceWarmup is how many records produce sends, unmeasured, before
// the measurement: enough to open the connections, load the metadata and
// wait out a new partition's leader election.
const produceWarmup = 1000

func (r *benchRun) produce(ctx context.Context) (benchResult, error) {
	var measuring atomic.Bool
	p, err := r.producer(ctx, func(due time.Time) {
		if measuring.Load() {
			r.hist.Record(time.Since(due))
			r.done.Add(1)
		}
	})
	if err != nil {
		return benchResult{}, err
	}
	defer p.close()
	r.phase.Store("warming up")
	if err := r.produceAll(ctx, p, min(produceWarmup, r.records), 0, r.poolValue); err != nil {
		return benchResult{}, err
	}
	measuring.Store(true) // every warm-up record is acknowledged: produceAll flushed
	if err := r.begin("produced"); err != nil {
		return benchResult{}, err
	}
	if err := r.produceAll(ctx, p, r.records, r.rate, r.poolValue); err != nil {
		return benchResult{}, err
	}
	return r.end(r.done.Load())
}

func (r *benchRun) consume(ctx context.Context) (benchResult, error) {
	p, err := r.producer(ctx, func(time.Time) { r.done.Add(1) })
	if err != nil {
		return benchResult{}, err
	}
	r.phase.Store("preparing: produced")
	err = r.produceAll(ctx, p, r.records, r.rate, r.poolValue)
	p.close()
	if err != nil {
		return benchResult{}, err
	}

	c, err := r.consumer(ctx)
	if err != nil {
		return benchResult{}, err
	}
	defer c.close()
	if err := r.begin("consumed"); err != nil {
		return benchResult{}, err
	}
	for r.done.Load() < r.records {
		if err := c.poll(ctx, func([]byte) { r.done.Add(1) }); err != nil {
			return benchResult{}, err
		}
	}
	return r.end(r.done.Load())
}

// slab hands out copies of small values carved from larger allocations, so
// that stamping a value costs no allocation of its own: at the e2e rates
// the allocations and their garbage collection would take CPU from the
// clients and the broker being measured. A slab is for one goroutine.
type slab struct{ free []byte }

const slabSize = 64 << 10

func (s *slab) copy(v []byte) []byte {
	if len(v) > slabSize/8 {
		return append([]byte(nil), v...)
	}
	if len(s.free) < len(v) {
		s.free = make([]byte, slabSize)
	}
	out := s.free[:len(v):len(v)]
	s.free = s.free[len(v):]
	copy(out, v)
	return out
}

// e2e runs a consumer alongside a producer at the target rate. Each value
// starts with its record's due time in nanoseconds since base, plus one;
// warm-up records, which open connections and load metadata before the
// measurement, carry zero there.
func (r *benchRun) e2e(ctx context.Context) (benchResult, error) {
	const warmup = 100
	c, err := r.consumer(ctx)
	if err != nil {
		return benchResult{}, err
	}
	defer c.close()
	p, err := r.producer(ctx, func(time.Time) {}) // acknowledgements are not what e2e measures
	if err != nil {
		return benchResult{}, err
	}
	defer p.close()

	base := time.Now()
	warmed := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		var warm int64
		for r.done.Load() < r.records {
			err := c.poll(cctx, func(v []byte) {
				now := time.Since(base)
				stamp := binary.BigEndian.Uint64(v)
				if stamp == 0 {
					if warm++; warm == warmup {
						close(warmed)
					}
					return
				}
				r.hist.Record(now - time.Duration(stamp-1))
				r.done.Add(1)
			})
			if err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()

	r.phase.Store("warming up")
	var values slab
	warmValue := func(i int64, _ time.Time) []byte {
		v := values.copy(r.poolValue(i, time.Time{}))
		binary.BigEndian.PutUint64(v, 0)
		return v
	}
	if err := r.produceAll(ctx, p, warmup, 0, warmValue); err != nil {
		return benchResult{}, err
	}
	select {
	case <-warmed:
	case err := <-consumed:
		if err == nil {
			err = errors.New("consumer stopped during warm-up")
		}
		return benchResult{}, err
	case <-ctx.Done():
		return benchResult{}, ctx.Err()
	}

	if err := r.begin("consumed"); err != nil {
		return benchResult{}, err
	}
	stamped := func(i int64, due time.Time) []byte {
		v := values.copy(r.poolValue(i, due))
		binary.BigEndian.PutUint64(v, uint64(due.Sub(base))+1)
		return v
	}
	if err := r.produceAll(ctx, p, r.records, r.rate, stamped); err != nil {
		return benchResult{}, err
	}
	if err := <-consumed; err != nil {
		return benchResult{}, err
	}
	return r.end(r.done.Load())
}

func validGuarantee(g string) bool {
	_, err := stream.ParseProcessingGuarantee(g)
	return err == nil
}
