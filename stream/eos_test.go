package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/serde"
)

// The exactly-once tests run against weir's broker and, as a second
// opinion on the transaction protocol, franz-go's kfake.
var eosBrokers = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"weir", func(t *testing.T) string { return brokertest.Start(t).Addr() }},
	{"kfake", func(t *testing.T) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}},
}

func forEachEOSBroker(t *testing.T, f func(t *testing.T, addr string)) {
	for _, b := range eosBrokers {
		t.Run(b.name, func(t *testing.T) { f(t, b.start(t)) })
	}
}

// eosConfig is testConfig under exactly_once_v2, without the record cache,
// so that every input word yields one count update: exactly one output
// record per input.
func eosConfig(t testing.TB, addr, appID, stateDir string) AppConfig {
	cfg := testConfig(t, addr, appID, stateDir)
	cfg.ProcessingGuarantee = ExactlyOnceV2
	cfg.CacheMaxBytes = -1
	return cfg
}

// readCommitted follows a topic as a read_committed consumer.
func readCommitted(t testing.TB, addr, topic string) *tableReader {
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	return &tableReader{cl: cl, latest: make(map[string][]byte)}
}

// exactlyOnce checks a word count's committed output: each word's counts
// go 1, 2, 3, ... up to its count in the input, every value once.
func exactlyOnce(t testing.TB, recs []*kgo.Record, want map[string]int64) {
	t.Helper()
	last := make(map[string]int64)
	bad := 0
	for _, r := range recs {
		n, err := serde.Int64().Deserialize(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if k := string(r.Key); n != last[k]+1 {
			if bad++; bad <= 10 {
				t.Errorf("%q: count %d after %d: an update was duplicated or lost", k, n, last[k])
			}
		}
		last[string(r.Key)] = n
	}
	if !maps.Equal(last, want) {
		t.Errorf("final counts %v, want %v", last, want)
	}
}

func TestProcessingGuaranteeConfig(t *testing.T) {
	for _, g := range []ProcessingGuarantee{"", AtLeastOnce, ExactlyOnceV2} {
		cfg := AppConfig{ApplicationID: "x", Brokers: []string{"127.0.0.1:1"}, ProcessingGuarantee: g}
		if _, err := NewApp(wordCount("a", "b"), cfg); err != nil {
			t.Errorf("ProcessingGuarantee %q: %v", g, err)
		}
	}
	cfg := AppConfig{ApplicationID: "x", Brokers: []string{"127.0.0.1:1"}, ProcessingGuarantee: "exactly_once"}
	if _, err := NewApp(wordCount("a", "b"), cfg); !errors.Is(err, ErrConfig) {
		t.Errorf("ProcessingGuarantee exactly_once (removed in Kafka 4.0): err = %v, want ErrConfig", err)
	}
	if g, err := ParseProcessingGuarantee("exactly_once_v2"); g != ExactlyOnceV2 || err != nil {
		t.Errorf("Parse = %q, %v", g, err)
	}
}

// keyCount counts input records by key in one sub-topology (no
// repartition topic between input and output, which under exactly-once
// would hold the records until a commit); the value BOOM fails.
func keyCount(in, out string) *Builder {
	b := NewBuilder()
	From(b, in, serde.String(), serde.String()).
		Peek(func(_, v string) error {
			if v == "BOOM" {
				return errors.New("boom")
			}
			return nil
		}).
		GroupByKey(serde.String(), serde.String()).
		Count(Named("counts")).
		ToStream().
		To(out, serde.String(), serde.Int64())
	return b
}

// produceKeys writes one record per key, with value v.
func produceKeys(t testing.TB, addr, topic, v string, keys ...string) {
	t.Helper()
	cl := newClient(t, addr)
	recs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i%7)
	}
	return out
}

// TestEOSFailureIsInvisible fails an exactly-once application with a fatal
// error after it processed records it never committed: a read_uncommitted
// reader sees the updates it produced, a read_committed one does not, and
// after a restart the committed output holds exactly one update per input.
func TestEOSFailureIsInvisible(t *testing.T) {
	forEachEOSBroker(t, func(t *testing.T, addr string) {
		createTopics(t, addr, 2, "in", "counts-out")
		committed := readCommitted(t, addr, "counts-out")
		dir := t.TempDir()

		first := keys("a", 30)
		produceKeys(t, addr, "in", "x", first...)
		r1 := start(t, keyCount("in", "counts-out"), eosConfig(t, addr, "eos", dir))
		waitCounts(t, r1, committed, countWords(first...))
		if err := r1.stop(t); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "eos", "instance.id")); err != nil {
			t.Errorf("no instance id in the state dir: %v", err)
		}

		// The second records are processed, their updates produced in a
		// transaction that does not commit (read uncommitted sees them),
		// and then the application fails.
		cfg := eosConfig(t, addr, "eos", dir)
		cfg.CommitInterval = time.Hour // nothing commits before the failure
		r2 := start(t, keyCount("in", "counts-out"), cfg)
		uncommitted := readTopic(t, addr, "counts-out")
		before := len(committed.records())
		second := keys("b", 30)
		produceKeys(t, addr, "in", "x", second...)
		r2.wait(t, "the second records' updates, read uncommitted", func() bool {
			return len(uncommitted.records()) >= before+len(second)
		})
		produceKeys(t, addr, "in", "BOOM", "b0")
		third := keys("c", 30)
		produceKeys(t, addr, "in", "x", third...)
		select {
		case err := <-r2.done:
			r2.done <- err
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Run = %v, want ErrBadRecord", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Run did not fail on the bad record")
		}
		if got, want := committed.counts(), countWords(first...); !maps.Equal(got, want) {
			t.Fatalf("read_committed counts after the failure %v, want %v", got, want)
		}

		cfg = eosConfig(t, addr, "eos", dir)
		cfg.BadRecords = SkipBadRecords
		r3 := start(t, keyCount("in", "counts-out"), cfg)
		want := countWords(slicesConcat(first, second, third)...)
		waitCounts(t, r3, committed, want)
		exactlyOnce(t, committed.records(), want)
		if err := r3.stop(t); err != nil {
			t.Fatal(err)
		}
		if n := r3.app.Metrics()[MetricRecordsSkipped]; n != 1 {
			t.Errorf("skipped %d records, want 1", n)
		}
		// The failed run's store writes never reached the disk, and its
		// changelog records were aborted: the store and its checkpoint
		// were usable as they were, nothing was restored.
		if n := r3.app.Metrics()[MetricRecordsRestored]; n != 0 {
			t.Errorf("restored %d changelog records after the failure, want 0", n)
		}
	})
}

// TestEOSRebalance moves tasks between two exactly-once instances while
// input streams in: the revoked tasks commit through a transaction, the new
// owner restores their stores from read_committed changelogs, and the
// committed output has exactly one update per input word.
func TestEOSRebalance(t *testing.T) {
	forEachEOSBroker(t, func(t *testing.T, addr string) {
		createTopics(t, addr, 4, "text", "counts-out")
		committed := readCommitted(t, addr, "counts-out")
		prod := startProducing(t, addr, "text")
		a := start(t, wordCount("text", "counts-out"), eosConfig(t, addr, "eos-rb", t.TempDir()))
		a.wait(t, "a commit", func() bool { return a.app.Metrics()[MetricCommits] > 2 })
		b := start(t, wordCount("text", "counts-out"), eosConfig(t, addr, "eos-rb", t.TempDir()))
		b.wait(t, "tasks split 4/4", func() bool { return allRunning(a.app, 4) && allRunning(b.app, 4) })
		b.wait(t, "b commits", func() bool { return b.app.Metrics()[MetricCommits] > 2 })
		if err := a.stop(t); err != nil {
			t.Fatal(err)
		}
		b.wait(t, "b runs all 8 tasks", func() bool { return allRunning(b.app, 8) })
		input := prod.finish()
		want := countWords(input...)
		waitCounts(t, b, committed, want)
		exactlyOnce(t, committed.records(), want)
		t.Logf("%d lines; aborted transactions: a %d, b %d", len(input),
			a.app.Metrics()[MetricTransactionsAborted], b.app.Metrics()[MetricTransactionsAborted])
	})
}

// TestEOSFencedByCopy starts a second instance with a copy of the first's
// instance id (its state directory): the first is fenced and stops with
// ErrFenced, the second finishes the work exactly once.
func TestEOSFencedByCopy(t *testing.T) {
	forEachEOSBroker(t, func(t *testing.T, addr string) {
		createTopics(t, addr, 2, "text", "counts-out")
		committed := readCommitted(t, addr, "counts-out")
		dirA, dirB := t.TempDir(), t.TempDir()
		first := lines("a", 20)
		produce(t, addr, "text", first...)
		a := start(t, wordCount("text", "counts-out"), eosConfig(t, addr, "fence", dirA))
		waitCounts(t, a, committed, countWords(first...))

		id, err := os.ReadFile(filepath.Join(dirA, "fence", "instance.id"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dirB, "fence"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, "fence", "instance.id"), id, 0o644); err != nil {
			t.Fatal(err)
		}
		b := start(t, wordCount("text", "counts-out"), eosConfig(t, addr, "fence", dirB))
		all := first
		var aErr error
		waitFor(t, "the first instance fenced", func() bool {
			select {
			case aErr = <-a.done:
				a.done <- aErr
				return true
			default:
			}
			more := lines("b", 4)
			produce(t, addr, "text", more...)
			all = slicesConcat(all, more)
			return false
		})
		if !errors.Is(aErr, ErrFenced) {
			t.Fatalf("the fenced instance's Run = %v, want ErrFenced", aErr)
		}
		want := countWords(all...)
		waitCounts(t, b, committed, want)
		exactlyOnce(t, committed.records(), want)
	})
}

// TestEOSRollback makes the broker refuse a transaction's offset commit as
// a zombie's (ILLEGAL_GENERATION, as after a rebalance the instance missed):
// the instance aborts the transaction, rolls its tasks back — stores to
// their last commit, inputs to the committed offsets — and processes the
// records again, and the committed output still holds exactly one update
// per input.
func TestEOSRollback(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	createTopics(t, addr, 2, "in", "counts-out")
	committed := readCommitted(t, addr, "counts-out")
	first := keys("a", 30)
	produceKeys(t, addr, "in", "x", first...)
	r := start(t, keyCount("in", "counts-out"), eosConfig(t, addr, "eos-rollback", t.TempDir()))
	waitCounts(t, r, committed, countWords(first...))

	refusals := 3
	c.ControlKey(kmsg.TxnOffsetCommit.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if refusals == 0 {
			return nil, nil, false
		}
		refusals--
		c.KeepControl()
		req := kreq.(*kmsg.TxnOffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.IllegalGeneration.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	second := keys("b", 40)
	produceKeys(t, addr, "in", "x", second...)
	want := countWords(slicesConcat(first, second)...)
	waitCounts(t, r, committed, want)
	exactlyOnce(t, committed.records(), want)
	if n := r.app.Metrics()[MetricTransactionsAborted]; n != 3 {
		t.Errorf("%d transactions aborted, want 3", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestEOSOffsetsOnly processes records that produce nothing: each
// transaction holds input offsets only, which the client alone would not
// end (it sends EndTxn only after producing). The offsets commit, and a
// restart reprocesses nothing.
func TestEOSOffsetsOnly(t *testing.T) {
	forEachEOSBroker(t, func(t *testing.T, addr string) {
		createTopics(t, addr, 2, "in", "out")
		b := NewBuilder()
		From(b, "in", serde.String(), serde.String()).
			Filter(func(_, v string) (bool, error) { return v != "drop", nil }).
			To("out", serde.String(), serde.String())
		out := readCommitted(t, addr, "out")
		adm := kadm.NewClient(newClient(t, addr))
		r := start(t, b, eosConfig(t, addr, "eos-offsets", t.TempDir()))
		produceKeys(t, addr, "in", "drop", keys("d", 50)...)
		r.wait(t, "the dropped records' offsets committed", func() bool { return committedOn(t, adm, "eos-offsets", "in") == 50 })
		produceKeys(t, addr, "in", "keep", keys("k", 5)...)
		r.wait(t, "the kept records", func() bool { return len(out.records()) == 5 })
		r.wait(t, "every offset committed", func() bool { return committedOn(t, adm, "eos-offsets", "in") == 55 })
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		if n := r.app.Metrics()[MetricTransactionsAborted]; n != 0 {
			t.Errorf("%d transactions aborted", n)
		}
	})
}
