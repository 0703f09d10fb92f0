package main

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/examples/internal/demo"
	"github.com/weir-io/weir/examples/wordcount/wordcount"
	"github.com/weir-io/weir/stream"
)

// TestWordCountSurvivesBrokerDeath runs the word count on a three-node
// cluster, every topic (input, output, changelog, repartition) with
// replication factor 3, and stops a broker halfway: the counts must still
// come out exactly as a plain map computes them.
func TestWordCountSurvivesBrokerDeath(t *testing.T) {
	c := brokertest.StartCluster(t, 3)
	seeds := strings.Join(c.Seeds(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := demo.CreateTopics(ctx, seeds, map[string]int32{wordcount.Input: 3, wordcount.Output: 3}); err != nil {
		t.Fatal(err)
	}
	app, err := stream.NewApp(wordcount.Topology(wordcount.Input, wordcount.Output), stream.AppConfig{
		ApplicationID: "wordcount", Brokers: c.Seeds(), StateDir: t.TempDir(), ReplicationFactor: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := app.Run(ctx)
		if ctx.Err() == nil {
			t.Errorf("the app stopped early: %v", err)
			cancel() // ends the wait for counts
		}
		done <- err
	}()

	lines := make([]string, 2000)
	want := map[string]int64{}
	for i := range lines {
		lines[i] = sample[i%len(sample)] + " " + strconv.Itoa(i%7)
	}
	feed := func(from, to int) {
		for _, l := range lines[from:to] {
			for _, w := range wordcount.Words(l) {
				want[w]++
			}
		}
		err := demo.Produce(ctx, seeds, wordcount.Input, func(i int) *kgo.Record { return kgo.StringRecord(lines[from+i]) }, to-from, 0)
		if err != nil {
			t.Fatal(err)
		}
		awaitCounts(t, ctx, seeds, maps.Clone(want))
	}
	feed(0, 1000)
	c.Stop(0)
	feed(1000, 2000)
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatalf("app: %v", err)
	}
}

// awaitCounts reads the output topic until the latest count of every word
// equals want; a count above want (a record counted twice) fails at once.
func awaitCounts(t *testing.T, ctx context.Context, seeds string, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	err := demo.Follow(ctx, seeds, wordcount.Output, func(r *kgo.Record) bool {
		n, _ := strconv.ParseInt(string(r.Value), 10, 64)
		if n > want[string(r.Key)] {
			t.Errorf("%q counted %d times, only %d in the input", r.Key, n, want[string(r.Key)])
			return true
		}
		got[string(r.Key)] = n
		return maps.Equal(got, want)
	})
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v (err %v)", got, want, err)
	}
}
