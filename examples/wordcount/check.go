package main

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/examples/internal/demo"
	"github.com/weir-io/weir/examples/wordcount/wordcount"
)

// check feeds the embedded broker sample lines and follows the counts
// until they equal a plain Go map's.
func check(ctx context.Context, f demo.Flags, brokers string) error {
	want := generate(ctx, brokers, f.Input, f.Records)
	if err := followCounts(ctx, brokers, f.Output, want); err != nil {
		return err
	}
	fmt.Printf("all %d word counts match a plain Go map over the same %d lines\n", len(want), f.Records)
	return nil
}

// sample is the generator's corpus.
var sample = []string{
	"The quick brown fox jumps over the lazy dog",
	"A stream is a table in motion; a table is a stream at rest",
	"Kafka Streams, now in Go: typed, fluent, and with the broker included",
	"Every record counts, and every count is a record",
	"Jackdaws love my big sphinx of quartz",
}

// generate produces n lines and returns the counts a plain Go map computes.
func generate(ctx context.Context, brokers, topic string, n int) map[string]int64 {
	want := make(map[string]int64)
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%s %d", sample[i%len(sample)], i%7)
		for _, w := range wordcount.Words(lines[i]) {
			want[w]++
		}
	}
	go demo.Produce(ctx, brokers, topic, func(i int) *kgo.Record { return kgo.StringRecord(lines[i]) }, n, 0)
	return want
}

// followCounts prints counts as they change and returns once they equal
// want.
func followCounts(ctx context.Context, brokers, topic string, want map[string]int64) error {
	got := make(map[string]int64)
	err := demo.Follow(ctx, brokers, topic, func(r *kgo.Record) bool {
		n, _ := strconv.ParseInt(string(r.Value), 10, 64)
		got[string(r.Key)] = n
		fmt.Printf("%-12s %d\n", r.Key, n)
		return maps.Equal(got, want)
	})
	if err != nil {
		return err
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("stopped before the counts matched")
	}
	return nil
}
