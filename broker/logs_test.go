package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// fastCleaner runs retention and compaction every few milliseconds.
var fastCleaner = brokertest.WithConfig(func(c *broker.Config) { c.RetentionCheckInterval = 10 * time.Millisecond })

func TestRetentionDeletesOldSegments(t *testing.T) {
	b := brokertest.Start(t, fastCleaner)
	ctx := testCtx(t)
	cl := client(t, b.Addr())
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("16384"),
		"retention.ms":  kadm.StringPtr("60000"),
	}, "old"); err != nil {
		t.Fatal(err)
	}
	// Records stamped two minutes ago are past retention once their
	// segment rolls.
	old := time.Now().Add(-2 * time.Minute)
	for i := range 300 {
		r := &kgo.Record{Topic: "old", Value: make([]byte, 200), Timestamp: old}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(i, err)
		}
	}
	waitFor(t, ctx, func() bool {
		starts, err := adm.ListStartOffsets(ctx, "old")
		if err != nil {
			return false
		}
		o, _ := starts.Lookup("old", 0)
		return o.Offset > 0
	})
}

func TestCompactionKeepsLatestValuePerKey(t *testing.T) {
	b := brokertest.Start(t, fastCleaner)
	ctx := testCtx(t)
	cl := client(t, b.Addr())
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes":  kadm.StringPtr("16384"),
		"cleanup.policy": kadm.StringPtr("compact"),
	}, "table"); err != nil {
		t.Fatal(err)
	}
	const keys, rounds = 10, 60
	for round := range rounds {
		for k := range keys {
			r := &kgo.Record{Topic: "table", Key: []byte(fmt.Sprint("k", k)), Value: fmt.Appendf(nil, "%d-%0200d", round, k)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	total := keys * rounds
	var recs []*kgo.Record
	waitFor(t, ctx, func() bool {
		recs = consumeAll(t, ctx, b.Addr(), "table")
		return len(recs) < total/2
	})
	latest := make(map[string]string)
	prev := int64(-1)
	for _, r := range recs {
		if r.Offset <= prev {
			t.Fatalf("offsets out of order after compaction: %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		latest[string(r.Key)] = string(r.Value)
	}
	for k := range keys {
		want := fmt.Sprintf("%d-%0200d", rounds-1, k)
		if got := latest[fmt.Sprint("k", k)]; got != want {
			t.Fatalf("key k%d: latest value %.10q, want %.10q", k, got, want)
		}
	}
	if prev != int64(total-1) {
		t.Fatalf("last offset %d, want %d: compaction must not renumber", prev, total-1)
	}
}

func TestDeleteRecordsAndListOffsetsByTime(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	cl := client(t, b.Addr())
	adm := kadm.NewClient(cl)
	mustCreate(t, ctx, cl, "timed", 1)
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 100 {
		r := &kgo.Record{Topic: "timed", Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(42*time.Second).UnixMilli(), "timed")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("timed", 0); o.Offset != 42 {
		t.Fatalf("offset for time +42s = %d, want 42", o.Offset)
	}
	after, _ = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "timed")
	if o, _ := after.Lookup("timed", 0); o.Offset != 100 {
		t.Fatalf("offset for a time past the end = %d, want the end offset 100", o.Offset)
	}
	req := make(kadm.Offsets)
	req.Add(kadm.Offset{Topic: "timed", Partition: 0, At: 50})
	if resp, err := adm.DeleteRecords(ctx, req); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	starts, _ := adm.ListStartOffsets(ctx, "timed")
	if o, _ := starts.Lookup("timed", 0); o.Offset != 50 {
		t.Fatalf("log start after DeleteRecords = %d, want 50", o.Offset)
	}
	recs := consumeAll(t, ctx, b.Addr(), "timed")
	if len(recs) != 50 || recs[0].Offset != 50 {
		t.Fatalf("after DeleteRecords read %d records from offset %d, want 50 from 50", len(recs), recs[0].Offset)
	}
}

func TestTopicFormatConfigs(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	cl := client(t, b.Addr(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"compression.type":       kadm.StringPtr("zstd"),
		"message.timestamp.type": kadm.StringPtr("LogAppendTime"),
	}, "fmt"); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	r := &kgo.Record{Topic: "fmt", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, ctx, b.Addr(), "fmt")
	if len(got) != 1 || string(got[0].Value) != "v" {
		t.Fatalf("read back %d records", len(got))
	}
	if got[0].Timestamp.Before(before) {
		t.Fatalf("timestamp %v is the producer's; LogAppendTime wants the broker's", got[0].Timestamp)
	}
	if got[0].Attrs.CompressionType() != 4 {
		t.Fatalf("stored batch compression %d, want zstd (4) from compression.type", got[0].Attrs.CompressionType())
	}
}
