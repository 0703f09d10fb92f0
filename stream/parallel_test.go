package stream

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/serde"
)

// rendezvous lets the first record of each of n partitions wait until
// all n are inside the user function at once: it can only open if that
// many tasks process at the same time.
type rendezvous struct {
	mu      sync.Mutex
	arrived map[string]bool
	all     chan struct{}
	n       int
}

func newRendezvous(n int) *rendezvous {
	return &rendezvous{arrived: make(map[string]bool), all: make(chan struct{}), n: n}
}

// meet blocks the first record of partition p until every partition's
// first record has arrived, or ctx ends.
func (r *rendezvous) meet(ctx context.Context, p string) error {
	r.mu.Lock()
	first := !r.arrived[p]
	r.arrived[p] = true
	if first && len(r.arrived) == r.n {
		close(r.all)
	}
	r.mu.Unlock()
	if !first {
		return nil
	}
	select {
	case <-r.all:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("partition %s: the other tasks never ran at the same time: %w", p, ctx.Err())
	}
}

// TestTasksProcessInParallel runs a word count over several partitions
// with several workers: the tasks must run at the same time (the input
// tasks meet inside the user function), and the counts — aggregated by
// tasks fed through a repartition topic by all input tasks at once — must
// equal a plain map's. Under -race it checks that the tasks share nothing
// unguarded.
func TestTasksProcessInParallel(t *testing.T) {
	const partitions, workers, perPartition = 4, 4, 300
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, partitions, "par-text", "par-counts")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	meet := newRendezvous(partitions)
	b := NewBuilder()
	From(b, "par-text", serde.String(), serde.String()).
		FlatMapValues(func(_ string, line string) ([]string, error) {
			fields := strings.Fields(line)
			if err := meet.meet(ctx, fields[0]); err != nil {
				return nil, err
			}
			return fields[1:], nil
		}).
		GroupBy(func(_ string, w string) (string, error) { return w, nil }, serde.String(), serde.String(), Named("words")).
		Count(Named("counts")).
		ToStream().
		To("par-counts", serde.String(), serde.Int64())

	// Each line names its partition first; the words are shared across
	// partitions, so every count task hears from every input task.
	cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := make(map[string]int64)
	var recs []*kgo.Record
	for p := range partitions {
		for i := range perPartition {
			words := []string{fmt.Sprintf("w%d", i%11), fmt.Sprintf("v%d", (i+p)%5), "all"}
			for _, w := range words {
				want[w]++
			}
			line := fmt.Sprintf("p%d %s", p, strings.Join(words, " "))
			recs = append(recs, &kgo.Record{Topic: "par-text", Partition: int32(p), Value: []byte(line)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t, addr, "par", t.TempDir())
	cfg.Workers = workers
	r := start(t, b, cfg)
	got := readCounts(ctx, t, addr, "par-counts", want)
	err := r.stop(t)
	if !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v (Run: %v)", got, want, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := r.app.Metrics()["records-processed"]; n < int64(len(recs)) {
		t.Fatalf("records-processed %d, want at least %d", n, len(recs))
	}
}

// readCounts follows a topic of int64 counts until the latest count of
// every key equals want, or ctx ends; it returns the latest counts.
func readCounts(ctx context.Context, t *testing.T, addr, topic string, want map[string]int64) map[string]int64 {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := make(map[string]int64)
	for !maps.Equal(got, want) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(rec *kgo.Record) {
			n, err := serde.Int64().Deserialize(rec.Value)
			if err != nil {
				t.Errorf("count of %q: %v", rec.Key, err)
			}
			got[string(rec.Key)] = n
		})
	}
	return got
}
