package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

const waitTimeout = 30 * time.Second

// testLogger discards logs unless the test runs verbose.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(t testing.TB, addr, appID, stateDir string) AppConfig {
	return AppConfig{
		ApplicationID:     appID,
		Brokers:           []string{addr},
		StateDir:          stateDir,
		CommitInterval:    100 * time.Millisecond,
		Logger:            testLogger(t),
		sessionTimeout:    6 * time.Second,
		heartbeatInterval: 100 * time.Millisecond,
		rebalanceTimeout:  10 * time.Second,
	}
}

func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t testing.TB, addr string, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	resp, err := adm.CreateTopics(context.Background(), partitions, -1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}
}

// produce writes values (keyed by their index plus offset) with the Kafka
// default partitioner.
func produce(t testing.TB, addr, topic string, values ...string) {
	t.Helper()
	cl := newClient(t, addr)
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(v)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// running is an App running in the background.
type running struct {
	app    *App
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, b *Builder, cfg AppConfig) *running {
	t.Helper()
	app, err := NewApp(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{app: app, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// stop shuts the app down cleanly and returns Run's result.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// wait fails the test when Run returns before cond holds or the deadline
// passes; it polls cond.
func (r *running) wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run returned while waiting for %s: %v", what, err)
		default:
		}
		return cond()
	})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an effect
	}
}

// tableReader follows a topic from the start and keeps the latest value of
// every key.
type tableReader struct {
	cl     *kgo.Client
	mu     sync.Mutex
	latest map[string][]byte
	recs   []*kgo.Record
}

func readTopic(t testing.TB, addr, topic string) *tableReader {
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	return &tableReader{cl: cl, latest: make(map[string][]byte)}
}

func (tr *tableReader) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	fs := tr.cl.PollFetches(ctx)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	fs.EachRecord(func(r *kgo.Record) {
		tr.latest[string(r.Key)] = r.Value
		tr.recs = append(tr.recs, r)
	})
}

func (tr *tableReader) counts() map[string]int64 {
	tr.poll()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make(map[string]int64, len(tr.latest))
	for k, v := range tr.latest {
		n, err := serde.Int64().Deserialize(v)
		if err != nil {
			panic(err)
		}
		out[k] = n
	}
	return out
}

func (tr *tableReader) records() []*kgo.Record {
	tr.poll()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*kgo.Record(nil), tr.recs...)
}

// wordCount builds the canonical topology: lines → words → counts.
func wordCount(in, out string) *Builder {
	b := NewBuilder()
	From(b, in, serde.String(), serde.String()).
		FlatMapValues(func(_ string, line string) ([]string, error) {
			if line == "BOOM" {
				return nil, errors.New("boom")
			}
			return strings.Fields(line), nil
		}).
		GroupBy(func(_ string, w string) (string, error) { return w, nil }, serde.String(), serde.String(), Named("words")).
		Count(Named("counts")).
		ToStream().
		To(out, serde.String(), serde.Int64())
	return b
}

func countWords(lines ...string) map[string]int64 {
	out := make(map[string]int64)
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			out[w]++
		}
	}
	return out
}

func lines(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s w%d w%d common", prefix, i%7, i%3)
	}
	return out
}

func waitCounts(t testing.TB, r *running, tr *tableReader, want map[string]int64) {
	t.Helper()
	var got map[string]int64
	r.wait(t, "word counts", func() bool {
		got = tr.counts()
		return maps.Equal(got, want)
	})
}

func allRunning(a *App, n int) bool {
	st := a.TaskStatus()
	if n >= 0 && len(st) != n {
		return false
	}
	for _, s := range st {
		if !s.Running {
			return false
		}
	}
	return true
}

func TestAppWordCount(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 3, "text", "counts-out")
	input := lines("a", 50)
	produce(t, addr, "text", input...)

	dir := t.TempDir()
	cfg := testConfig(t, addr, "wc", dir)
	cfg.purgeInterval = 50 * time.Millisecond
	r := start(t, wordCount("text", "counts-out"), cfg)
	tr := readTopic(t, addr, "counts-out")
	waitCounts(t, r, tr, countWords(input...))

	// Consumed repartition records are deleted.
	adm := kadm.NewClient(newClient(t, addr))
	r.wait(t, "repartition purge", func() bool {
		starts, err := adm.ListStartOffsets(context.Background(), "wc-words-repartition")
		if err != nil {
			t.Fatal(err)
		}
		var purged int64
		starts.Each(func(o kadm.ListedOffset) { purged += o.Offset })
		return purged > 0
	})

	m := r.app.Metrics()
	if m[MetricRecordsProcessed] < int64(len(input)) {
		t.Errorf("processed = %d, want >= %d (metrics %v)", m[MetricRecordsProcessed], len(input), m)
	}
	// Two sub-topologies (split at the repartition topic), 3 partitions.
	r.wait(t, "6 running tasks", func() bool { return allRunning(r.app, 6) })
	for _, st := range r.app.TaskStatus() {
		for _, in := range st.Inputs {
			if in.Offset >= 0 && in.Lag != 0 {
				t.Errorf("task %s input %s[%d]: lag %d after all counts arrived", st.ID, in.Topic, in.Partition, in.Lag)
			}
		}
	}

	// Interactive query: the committed count of "common".
	var got []StoreEntry
	r.wait(t, "query of common", func() bool {
		var err error
		got, err = r.app.QueryStore(StoreQuery{Store: "counts", Key: []byte("common")})
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 1
	})
	if n, _ := serde.Int64().Deserialize(got[0].Value); n != int64(len(input)) {
		t.Errorf("query common = %d, want %d", n, len(input))
	}
	all, err := r.app.QueryStore(StoreQuery{Store: "counts"})
	if err != nil || len(all) != len(countWords(input...)) {
		t.Errorf("range query: %d entries, err %v; want %d", len(all), err, len(countWords(input...)))
	}
	if _, err := r.app.QueryStore(StoreQuery{Store: "nope", Key: []byte("x")}); !errors.Is(err, ErrStoreNotFound) {
		t.Errorf("unknown store: err = %v", err)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Every task of the counting sub-topology checkpointed its store.
	for p := range 3 {
		cp, err := state.ReadCheckpoint(filepath.Join(dir, "wc", fmt.Sprintf("1_%d", p), ".checkpoint"))
		if err != nil || len(cp) != 1 {
			t.Errorf("task 1_%d checkpoint = %v, %v", p, cp, err)
		}
	}
	if d := r.app.Describe(); !strings.Contains(d, "wc-words-repartition") || !strings.Contains(d, "wc-counts-changelog") {
		t.Errorf("Describe lacks internal topics:\n%s", d)
	}
}

// TestAppRestart stops an application and starts it again on the same state
// dir: the stores come back from the checkpoint with nothing to restore, and
// counting continues. A fresh state dir restores everything from the
// changelogs, with the same result.
func TestAppRestart(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 2, "text", "counts-out")
	tr := readTopic(t, addr, "counts-out")
	dir := t.TempDir()

	first := lines("a", 40)
	produce(t, addr, "text", first...)
	r1 := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "wc", dir))
	waitCounts(t, r1, tr, countWords(first...))
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}

	second := lines("b", 30)
	produce(t, addr, "text", second...)
	r2 := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "wc", dir))
	waitCounts(t, r2, tr, countWords(slicesConcat(first, second)...))
	if n := r2.app.Metrics()[MetricRecordsRestored]; n != 0 {
		t.Errorf("restart on the same state dir restored %d records, want 0 (checkpoint at the changelog's end)", n)
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}

	// Move a checkpoint back: only the tail after it is restored.
	cpPath := filepath.Join(dir, "wc", "1_0", ".checkpoint")
	cp, err := state.ReadCheckpoint(cpPath)
	if err != nil || len(cp) != 1 {
		t.Fatalf("checkpoint %v, %v", cp, err)
	}
	var key string
	for k := range cp {
		key = k
	}
	if cp[key] < 3 {
		t.Fatalf("checkpoint %v: changelog too short for the test", cp)
	}
	cp[key] -= 3
	if err := state.WriteCheckpoint(cpPath, cp); err != nil {
		t.Fatal(err)
	}
	r3 := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "wc", dir))
	r3.wait(t, "restore of 3 records", func() bool {
		return allRunning(r3.app, 4) && r3.app.Metrics()[MetricRecordsRestored] == 3
	})
	third := lines("c", 10)
	produce(t, addr, "text", third...)
	waitCounts(t, r3, tr, countWords(slicesConcat(first, second, third)...))
	if err := r3.stop(t); err != nil {
		t.Fatal(err)
	}

	// A new state dir: everything comes from the changelogs.
	fourth := lines("d", 10)
	produce(t, addr, "text", fourth...)
	r4 := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "wc", t.TempDir()))
	waitCounts(t, r4, tr, countWords(slicesConcat(first, second, third, fourth)...))
	if n := r4.app.Metrics()[MetricRecordsRestored]; n == 0 {
		t.Error("a fresh state dir restored nothing")
	}
	for _, st := range r4.app.TaskStatus() {
		for _, s := range st.Stores {
			if !s.Done || s.Restored > s.Total {
				t.Errorf("task %s store %s: %+v", st.ID, s.Store, s)
			}
		}
	}
}

func slicesConcat(ss ...[]string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// TestAppTwoInstances runs two instances of one application: they split the
// tasks, and when one stops, the other takes its tasks over with their state.
func TestAppTwoInstances(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 4, "text", "counts-out")
	tr := readTopic(t, addr, "counts-out")

	first := lines("a", 40)
	produce(t, addr, "text", first...)
	a := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "wc2", t.TempDir()))
	waitCounts(t, a, tr, countWords(first...))

	b := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "wc2", t.TempDir()))
	a.wait(t, "tasks split 4/4", func() bool { return allRunning(a.app, 4) && allRunning(b.app, 4) })
	seen := make(map[string]bool)
	for _, r := range []*running{a, b} {
		for _, st := range r.app.TaskStatus() {
			if seen[st.ID] {
				t.Fatalf("task %s runs on both instances", st.ID)
			}
			seen[st.ID] = true
			// A task's inputs all belong to its partition.
			for _, in := range st.Inputs {
				if !strings.HasSuffix(st.ID, "_"+strconv.Itoa(int(in.Partition))) {
					t.Errorf("task %s reads %s[%d]", st.ID, in.Topic, in.Partition)
				}
			}
		}
	}

	second := lines("b", 40)
	produce(t, addr, "text", second...)
	waitCounts(t, b, tr, countWords(slicesConcat(first, second)...))
	if b.app.Metrics()[MetricRecordsProcessed] == 0 {
		t.Error("the second instance processed nothing")
	}

	restoredBefore := a.app.Metrics()[MetricRecordsRestored]
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	a.wait(t, "instance a runs all 8 tasks", func() bool { return allRunning(a.app, 8) })
	if a.app.Metrics()[MetricRecordsRestored] == restoredBefore {
		t.Error("taking over restored nothing from the changelogs")
	}
	third := lines("c", 40)
	produce(t, addr, "text", third...)
	waitCounts(t, a, tr, countWords(slicesConcat(first, second, third)...))
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
}

// badRecords is a topology whose input values are int64s (an undecodable
// value is a decode error); -1 makes the user function fail and -2 panic.
func badRecords(in, out string) *Builder {
	b := NewBuilder()
	From(b, in, serde.String(), serde.Int64()).
		MapValues(func(_ string, v int64) (int64, error) {
			switch v {
			case -1:
				return 0, errors.New("negative")
			case -2:
				panic("very negative")
			}
			return v * 10, nil
		}).
		To(out, serde.String(), serde.Int64())
	return b
}

func produceBad(t testing.TB, addr, topic string) {
	t.Helper()
	enc := func(n int64) []byte { b, _ := serde.Int64().Serialize(n); return b }
	cl := newClient(t, addr)
	recs := []*kgo.Record{
		{Topic: topic, Key: []byte("ok1"), Value: enc(1)},
		{Topic: topic, Key: []byte("undecodable"), Value: []byte("xyz")},
		{Topic: topic, Key: []byte("fails"), Value: enc(-1)},
		{Topic: topic, Key: []byte("panics"), Value: enc(-2), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}},
		{Topic: topic, Key: []byte("ok2"), Value: enc(2)},
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestAppBadRecords(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 1, "in", "out")
	produceBad(t, addr, "in")
	tr := readTopic(t, addr, "out")
	wantOut := map[string]int64{"ok1": 10, "ok2": 20}

	t.Run("skip", func(t *testing.T) {
		cfg := testConfig(t, addr, "skip", t.TempDir())
		cfg.BadRecords = SkipBadRecords
		r := start(t, badRecords("in", "out"), cfg)
		waitCounts(t, r, tr, wantOut)
		r.wait(t, "3 skipped", func() bool { return r.app.Metrics()[MetricRecordsSkipped] == 3 })
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("dead-letter", func(t *testing.T) {
		cfg := testConfig(t, addr, "dlq", t.TempDir())
		cfg.BadRecords = DeadLetter("in-dlq")
		r := start(t, badRecords("in", "out"), cfg)
		dlq := readTopic(t, addr, "in-dlq")
		var recs []*kgo.Record
		r.wait(t, "3 dead letters", func() bool { recs = dlq.records(); return len(recs) >= 3 })
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		if m := r.app.Metrics(); m[MetricRecordsDeadLettered] != 3 {
			t.Errorf("dead-lettered = %d, want 3", m[MetricRecordsDeadLettered])
		}
		want := []struct {
			key, errPart string
			offset       int
		}{{"undecodable", "decode", 1}, {"fails", "negative", 2}, {"panics", "very negative", 3}}
		for i, w := range want {
			rec := recs[i]
			h := headers(rec)
			if string(rec.Key) != w.key || h["weir.source.topic"] != "in" || h["weir.source.partition"] != "0" ||
				h["weir.source.offset"] != strconv.Itoa(w.offset) || !strings.Contains(h["weir.error"], w.errPart) {
				t.Errorf("dead letter %d: key %q headers %v", i, rec.Key, h)
			}
		}
		if string(recs[1].Value) != string(mustInt64(-1)) || string(recs[0].Value) != "xyz" {
			t.Errorf("dead letters do not carry the original values: %q %q", recs[0].Value, recs[1].Value)
		}
		if h := headers(recs[2]); h["h"] != "v" || !strings.Contains(h["weir.error"], "goroutine") {
			t.Errorf("panic dead letter: original header or stack missing: %v", h)
		}
	})

	t.Run("fail", func(t *testing.T) {
		r := start(t, badRecords("in", "out"), testConfig(t, addr, "fail", t.TempDir()))
		var err error
		select {
		case err = <-r.done:
			r.done <- err
		case <-time.After(waitTimeout):
			t.Fatal("Run did not fail")
		}
		if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), "decode") || !strings.Contains(err.Error(), "task 0_0") ||
			!strings.Contains(err.Error(), "in[0]@1") {
			t.Fatalf("Run = %v; want a bad-record error naming task 0_0 and in[0]@1", err)
		}
	})
}

func mustInt64(n int64) []byte { b, _ := serde.Int64().Serialize(n); return b }

func headers(r *kgo.Record) map[string]string {
	out := make(map[string]string)
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func TestAppTopicErrors(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 2, "two", "out")
	createTopics(t, addr, 3, "three")

	run := func(b *Builder, appID string) error {
		app, err := NewApp(b, testConfig(t, addr, appID, t.TempDir()))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		return app.Run(ctx)
	}

	t.Run("missing source", func(t *testing.T) {
		err := run(wordCount("absent", "out"), "missing")
		if !errors.Is(err, ErrMissingTopic) || !strings.Contains(err.Error(), `"absent"`) {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("missing sink", func(t *testing.T) {
		err := run(wordCount("two", "nowhere"), "nosink")
		if !errors.Is(err, ErrMissingTopic) || !strings.Contains(err.Error(), `"nowhere"`) {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("co-partitioning", func(t *testing.T) {
		b := NewBuilder()
		tbl := Table(b, "three", serde.String(), serde.String())
		From(b, "two", serde.String(), serde.String()).
			Join(tbl, func(_ string, v, tv string) (string, error) { return v + tv, nil }, serde.String(), serde.String()).
			To("out", serde.String(), serde.String())
		err := run(b, "join")
		if !errors.Is(err, ErrInvalidTopology) || !strings.Contains(err.Error(), "co-partitioned") {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("internal topic mismatch", func(t *testing.T) {
		createTopics(t, addr, 5, "mismatch-counts-changelog")
		err := run(wordCount("two", "out"), "mismatch")
		if !errors.Is(err, ErrTopicMismatch) || !strings.Contains(err.Error(), "mismatch-counts-changelog") {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, cfg := range []AppConfig{{Brokers: []string{addr}}, {ApplicationID: "x"}, {ApplicationID: "a b", Brokers: []string{addr}},
			{ApplicationID: "x", Brokers: []string{addr}, BadRecords: DeadLetter("")},
			{ApplicationID: "x", Brokers: []string{addr}, Workers: -1}} {
			if _, err := NewApp(wordCount("two", "out"), cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("NewApp(%+v) = %v, want ErrConfig", cfg, err)
			}
		}
	})
}

// TestAppWindowed counts per key and minute: a record for a closed window is
// dropped and counted, and a window store can be queried by key.
func TestAppWindowed(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 1, "clicks", "clicks-per-minute")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	cl := newClient(t, addr)
	var recs []*kgo.Record
	for _, c := range []struct {
		key string
		at  time.Duration
	}{{"u1", 0}, {"u1", 10 * time.Second}, {"u1", 70 * time.Second}, {"u2", 75 * time.Second}, {"u1", 5 * time.Second}} {
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(c.key), Value: []byte("click"), Timestamp: t0.Add(c.at)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	build := func() *Builder {
		b := NewBuilder()
		g := From(b, "clicks", serde.String(), serde.String()).GroupByKey(serde.String(), serde.String())
		WindowedBy(g, window.Tumbling(time.Minute)).
			Count(Named("per-minute")).
			ToStream().
			Map(func(k window.Windowed[string], n int64) (string, int64, error) {
				return fmt.Sprintf("%s@%d", k.Key, k.Window.Start.Sub(t0)/time.Minute), n, nil
			}).
			To("clicks-per-minute", serde.String(), serde.Int64())
		return b
	}
	tr := readTopic(t, addr, "clicks-per-minute")
	want := map[string]int64{"u1@0": 2, "u1@1": 1, "u2@1": 1}
	r := start(t, build(), testConfig(t, addr, "win", t.TempDir()))
	waitCounts(t, r, tr, want)
	r.wait(t, "a dropped late record", func() bool { return r.app.Metrics()["dropped-late-records"] == 1 })

	var got []StoreEntry
	r.wait(t, "two windows of u1", func() bool {
		var err error
		if got, err = r.app.QueryStore(StoreQuery{Store: "per-minute", Key: []byte("u1")}); err != nil {
			t.Fatal(err)
		}
		return len(got) == 2
	})
	for i, e := range got {
		k, start, err := window.DecodeKey(e.Key)
		n, _ := serde.Int64().Deserialize(e.Value)
		if err != nil || string(k) != "u1" || !start.Equal(t0.Add(time.Duration(i)*time.Minute)) || n != want[fmt.Sprintf("u1@%d", i)] {
			t.Errorf("window %d: key %q start %v count %d err %v", i, k, start, n, err)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// A new instance restores the window store from its changelog.
	r2 := start(t, build(), testConfig(t, addr, "win", t.TempDir()))
	r2.wait(t, "restored windows", func() bool {
		got, err := r2.app.QueryStore(StoreQuery{Store: "per-minute", Key: []byte("u1")})
		return err == nil && len(got) == 2
	})

	// Stream time comes back from the commit metadata: a record for the
	// window that closed before the restart is still late.
	late := &kgo.Record{Topic: "clicks", Key: []byte("u1"), Value: []byte("click"), Timestamp: t0.Add(20 * time.Second)}
	if err := cl.ProduceSync(context.Background(), late).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r2.wait(t, "the late record dropped after the restart", func() bool { return r2.app.Metrics()["dropped-late-records"] == 1 })
	got, err := r2.app.QueryStore(StoreQuery{Store: "per-minute", Key: []byte("u1")})
	if err != nil || len(got) != 2 {
		t.Fatalf("windows after the late record: %v %v", got, err)
	}
	if n, _ := serde.Int64().Deserialize(got[0].Value); n != 2 {
		t.Fatalf("u1's first window counts %d after the restart, want 2: the late record was aggregated", n)
	}
}

// TestAppFailureLosesNothing stops an application with a fatal error after
// it processed records it never committed; a restart processes them again
// (at-least-once: counts may exceed, never fall short of, the input).
func TestAppFailureLosesNothing(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 1, "text", "counts-out")
	tr := readTopic(t, addr, "counts-out")
	dir := t.TempDir()

	first := lines("a", 20)
	produce(t, addr, "text", first...)
	r1 := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "crash", dir))
	waitCounts(t, r1, tr, countWords(first...))
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}

	// Then lines, a line the topology fails on, more lines.
	second := lines("b", 20)
	produce(t, addr, "text", second...)
	produce(t, addr, "text", "BOOM")
	third := lines("c", 20)
	produce(t, addr, "text", third...)

	cfg := testConfig(t, addr, "crash", dir)
	cfg.CommitInterval = time.Hour // nothing is committed before the failure
	r2 := start(t, wordCount("text", "counts-out"), cfg)
	select {
	case err := <-r2.done:
		r2.done <- err
		if !errors.Is(err, ErrBadRecord) {
			t.Fatalf("Run = %v, want ErrBadRecord", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not fail on the bad record")
	}

	cfg = testConfig(t, addr, "crash", dir)
	cfg.BadRecords = SkipBadRecords
	r3 := start(t, wordCount("text", "counts-out"), cfg)
	want := countWords(slicesConcat(first, second, third)...)
	r3.wait(t, "every word counted at least once", func() bool {
		got := tr.counts()
		for w, n := range want {
			if got[w] < n {
				return false
			}
		}
		return true
	})
	if n := r3.app.Metrics()[MetricRecordsSkipped]; n != 1 {
		t.Errorf("skipped %d records, want 1", n)
	}
}
