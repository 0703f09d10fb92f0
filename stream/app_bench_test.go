package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
)

// BenchmarkWordCount measures the App end to end on an embedded broker:
// benchLines lines of text are produced first; each iteration starts a new
// application on them (fresh id and state) and stops the clock when its
// input and repartition offsets are all committed — every count is then
// in the output topic and the changelog. It reports input records/s and
// words/s.
func BenchmarkWordCount(b *testing.B) {
	const (
		benchLines = 50_000
		partitions = 4
		wordsLine  = 10
		vocabulary = 2_000
	)
	br := brokertest.Start(b)
	addr := br.Addr()
	createTopics(b, addr, partitions, "bench-text", "bench-counts")
	cl := newClient(b, addr, kgo.ProducerBatchMaxBytes(1<<20))
	rng := rand.New(rand.NewPCG(1, 2))
	words := 0
	for i := range benchLines {
		var sb strings.Builder
		for j := range wordsLine {
			if j > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "w%d", rng.IntN(vocabulary))
		}
		words += wordsLine
		cl.Produce(context.Background(), &kgo.Record{Topic: "bench-text", Key: fmt.Appendf(nil, "%d", i), Value: []byte(sb.String())}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)

	b.ResetTimer()
	var elapsed time.Duration
	for i := range b.N {
		appID := fmt.Sprintf("bench-%d", i)
		cfg := testConfig(b, addr, appID, b.TempDir())
		cfg.CommitInterval = 100 * time.Millisecond
		begin := time.Now()
		r := start(b, wordCount("bench-text", "bench-counts"), cfg)
		r.wait(b, "all offsets committed", func() bool { return committed(b, adm, appID, "bench-text", appID+"-words-repartition") })
		elapsed += time.Since(begin)
		b.StopTimer()
		if err := r.stop(b); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	secs := elapsed.Seconds()
	b.ReportMetric(float64(benchLines*b.N)/secs, "records/s")
	b.ReportMetric(float64(words*b.N)/secs, "words/s")
}

// committed reports whether group has committed the end offset of every
// partition of topics.
func committed(tb testing.TB, adm *kadm.Client, group string, topics ...string) bool {
	// Committed offsets first: once the input is committed to its end,
	// every repartition record was produced before, so the end offsets
	// listed after are final.
	ctx := context.Background()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false
	}
	done := true
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			done = false
			return
		}
		c, ok := offs.Lookup(e.Topic, e.Partition)
		if e.Offset > 0 && (!ok || c.At < e.Offset) {
			done = false
		}
	})
	return done && len(ends) == len(topics)
}
