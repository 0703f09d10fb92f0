package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
)

func produceStrings(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsumerGroupSharesWorkAndResumesAfterRestart runs two members of one
// group over four partitions: every record is consumed exactly once, each
// partition by one member, and after a broker restart the committed
// offsets are still there and a new member resumes after them.
func TestConsumerGroupSharesWorkAndResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, brokertest.WithDataDir(dir))
	ctx := testCtx(t)
	admin := client(t, b.Addr())
	mustCreate(t, ctx, admin, "work", 4)
	produceStrings(t, ctx, admin, "work", 0, 200)

	var (
		mu   sync.Mutex
		seen = make(map[string]int)
	)
	members := []*kgo.Client{}
	for i := range 2 {
		members = append(members, client(t, b.Addr(), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("work"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.ClientID(fmt.Sprint("m", i))))
	}
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() {
			for ctx.Err() == nil {
				fs := m.PollFetches(ctx)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					seen[string(r.Value)]++
				})
				done := len(seen) == 200
				mu.Unlock()
				if err := m.CommitUncommittedOffsets(ctx); err != nil {
					t.Errorf("commit: %v", err)
				}
				if done {
					return
				}
			}
		})
	}
	waitFor(t, ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 200 })
	for _, m := range members {
		m.CommitUncommittedOffsets(ctx)
	}
	mu.Lock()
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s consumed %d times", v, n)
		}
	}
	mu.Unlock()
	for _, m := range members {
		m.Close()
	}
	wg.Wait()

	admin.Close()
	b.Close()
	b2 := brokertest.Start(t, brokertest.WithDataDir(dir))
	adm := kadm.NewClient(client(t, b2.Addr()))
	offsets, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 200 {
		t.Fatalf("committed offsets sum to %d after restart, want 200", committed)
	}
	prod := client(t, b2.Addr())
	produceStrings(t, ctx, prod, "work", 200, 1)
	next := client(t, b2.Addr(), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("work"))
	fs := next.PollFetches(ctx)
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "200" {
		t.Fatalf("resumed member read %d records (first %q), want only the new one", len(recs), firstValue(recs))
	}
}

func firstValue(recs []*kgo.Record) string {
	if len(recs) == 0 {
		return ""
	}
	return string(recs[0].Value)
}

// TestUnknownGroupOffsetFetch answers -1 without an error, as Kafka does.
func TestUnknownGroupOffsetFetch(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	cl := client(t, b.Addr())
	mustCreate(t, ctx, cl, "t", 1)
	resp, err := kadm.NewClient(cl).FetchOffsetsForTopics(ctx, "never-existed", "t")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := resp.Lookup("t", 0)
	if !ok || o.Err != nil || o.At != -1 {
		t.Fatalf("offset for unknown group: %+v ok=%v, want -1 without error", o, ok)
	}
}
