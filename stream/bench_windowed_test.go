package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/window"
)

type benchOrder struct {
	Region string  `json:"region"`
	Amount float64 `json:"amount"`
	TS     int64   `json:"ts"`
}

type benchTotals struct {
	Orders  int64   `json:"orders"`
	Revenue float64 `json:"revenue"`
}

// windowedRevenue is the windowed-revenue example's topology.
func windowedRevenue(in, out string) *Builder {
	b := NewBuilder()
	byRegion := From(b, in, serde.String(), serde.JSON[benchOrder](),
		WithTimestamp(func(_ string, o benchOrder, _ time.Time) (time.Time, error) { return time.UnixMilli(o.TS), nil })).
		GroupBy(func(_ string, o benchOrder) (string, error) { return o.Region, nil }, serde.String(), serde.JSON[benchOrder](), Named("by-region"))
	WindowedBy(byRegion, window.Tumbling(time.Minute).Grace(10*time.Second), EmitFinal()).
		Aggregate(func() (benchTotals, error) { return benchTotals{}, nil },
			func(_ string, o benchOrder, t benchTotals) (benchTotals, error) {
				return benchTotals{t.Orders + 1, t.Revenue + o.Amount}, nil
			}, serde.JSON[benchTotals](), Named("revenue")).
		ToStream().
		To(out, window.WindowedSerde(serde.String(), time.Minute), serde.JSON[benchTotals]())
	return b
}

// BenchmarkWindowedRevenue runs the windowed-revenue topology end to end:
// orders over 16 regions, 20 per second of event time, pre-produced; the
// clock stops when every input and repartition offset is committed.
func BenchmarkWindowedRevenue(b *testing.B) {
	const orders, partitions = 100_000, 4
	br := brokertest.Start(b)
	addr := br.Addr()
	createTopics(b, addr, partitions, "bench-orders", "bench-revenue")
	cl := newClient(b, addr, kgo.ProducerBatchMaxBytes(1<<20))
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range orders {
		v, _ := json.Marshal(benchOrder{Region: fmt.Sprint("r", rng.IntN(16)), Amount: float64(rng.IntN(10000)) / 100, TS: t0 + int64(i)*50})
		cl.Produce(context.Background(), &kgo.Record{Topic: "bench-orders", Key: fmt.Appendf(nil, "o%d", i), Value: v}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	b.ResetTimer()
	var elapsed time.Duration
	for i := range b.N {
		appID := fmt.Sprintf("bench-wr-%d", i)
		cfg := testConfig(b, addr, appID, b.TempDir())
		begin := time.Now()
		r := start(b, windowedRevenue("bench-orders", "bench-revenue"), cfg)
		r.wait(b, "all offsets committed", func() bool {
			return committed(b, adm, appID, "bench-orders", appID+"-by-region-repartition")
		})
		elapsed += time.Since(begin)
		b.StopTimer()
		if err := r.stop(b); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(orders*b.N)/elapsed.Seconds(), "records/s")
}

// BenchmarkRestore measures rebuilding a word-count store of 200k keys
// from its changelog into a fresh state directory.
func BenchmarkRestore(b *testing.B) {
	const keys, partitions = 200_000, 4
	br := brokertest.Start(b)
	addr := br.Addr()
	createTopics(b, addr, partitions, "restore-text", "restore-counts")
	cl := newClient(b, addr, kgo.ProducerBatchMaxBytes(1<<20))
	adm := kadm.NewClient(cl)
	b.ResetTimer()
	var elapsed time.Duration
	for i := range b.N {
		b.StopTimer()
		appID := fmt.Sprintf("bench-restore-%d", i)
		changelog := appID + "-counts-changelog"
		if _, err := adm.CreateTopic(context.Background(), partitions, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, changelog); err != nil {
			b.Fatal(err)
		}
		for k := range keys {
			v, _ := serde.Int64().Serialize(int64(k))
			cl.Produce(context.Background(), &kgo.Record{Topic: changelog, Partition: -1, Key: fmt.Appendf(nil, "word-%d", k), Value: v}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		cfg := testConfig(b, addr, appID, b.TempDir())
		b.StartTimer()
		begin := time.Now()
		r := start(b, wordCount("restore-text", "restore-counts"), cfg)
		r.wait(b, "stores restored", func() bool { return restoredAll(r.app, keys) })
		elapsed += time.Since(begin)
		b.StopTimer()
		if err := r.stop(b); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(keys*b.N)/elapsed.Seconds(), "records/s")
}

// restoredAll reports whether every store of the app finished restoring
// n records in total.
func restoredAll(a *App, n int64) bool {
	var restored int64
	tasks := a.TaskStatus()
	if len(tasks) == 0 {
		return false
	}
	for _, ts := range tasks {
		for _, s := range ts.Stores {
			if !s.Done {
				return false
			}
			restored += s.Restored
		}
	}
	return restored == n
}
