package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/broker/brokertest"
)

// These tests check the partition side of transactions: the last stable
// offset, markers (also sent raw, as a coordinator would) and what survives
// a restart. The coordinator's are in txn_coordinator_test.go.

func writeMarker(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, pid int64, epoch int16, commit bool) error {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, 0
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leaderOf(t, ctx, cl, topic))))
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Markers[0].Topics[0].Partitions[0].ErrorCode)
}

// endOffset is ListOffsets latest for partition 0 under the given
// isolation level (1: read_committed, the last stable offset).
func endOffset(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leaderOf(t, ctx, cl, topic))))
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return p.Offset
}

// readValues reads topic from the start with the given isolation until
// the plain record until (which the test produces last) and returns the
// values before it.
func readValues(t *testing.T, ctx context.Context, seeds []string, topic string, committed bool, until string) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := client(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	var got []string
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %q before %v", got, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if string(r.Value) == until {
				return got
			}
			got = append(got, string(r.Value))
		}
	}
}

func TestLastStableOffsetAndMarkerFencing(t *testing.T) {
	onEachTopology(t, func(t *testing.T, top topology) {
		ctx := testCtx(t)
		cl := top.client(t)
		mustCreate(t, ctx, cl, "txp", 1)
		p := top.client(t, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("txp"))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"a1", "a2"} { // offsets 0, 1
			produceSyncOne(t, ctx, p, v)
		}
		produceRaw(t, ctx, cl, "txp", rawBatch(-1, -1, -1, "p1")) // 2
		if got := endOffset(t, ctx, cl, "txp", 1); got != 0 {
			t.Fatalf("LSO with a transaction open at 0 = %d", got)
		}
		if got := endOffset(t, ctx, cl, "txp", 0); got != 3 {
			t.Fatalf("high watermark = %d, want 3", got)
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		waitEnd(t, ctx, cl, "txp", 1, 4) // the COMMIT marker is offset 3
		pid, epoch, err := p.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// An older epoch's marker is refused; a newer one fences the
		// producer on this partition.
		if err := writeMarker(t, ctx, cl, "txp", pid, epoch-1, false); err != kerr.InvalidProducerEpoch {
			t.Fatalf("stale marker: %v, want INVALID_PRODUCER_EPOCH", err)
		}
		if err := writeMarker(t, ctx, cl, "txp", pid, epoch+1, false); err != nil {
			t.Fatal(err)
		}
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); !fenced(err) {
			t.Fatalf("produce at the fenced epoch: %v", err)
		}
	})
}

// waitEnd polls ListOffsets (isolation 1: read_committed) until the end
// offset of partition 0 reaches want.
func waitEnd(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, isolation int8, want int64) {
	t.Helper()
	for {
		got := endOffset(t, ctx, cl, topic, isolation)
		if got >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("end offset stuck at %d, want %d", got, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// An open transaction outlives a restart of the only broker as an open
// transaction: its records stay invisible to read_committed until the
// coordinator, replayed from __transaction_state, aborts it on timeout.
func TestOpenTxnAbortedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, brokertest.WithDataDir(dir))
	ctx := testCtx(t)
	cl := client(t, b.Addr())
	mustCreate(t, ctx, cl, "txr", 1)
	p := client(t, b.Addr(), kgo.TransactionalID("tr"), kgo.DefaultProduceTopic("txr"), kgo.TransactionTimeout(2*time.Second))
	produceTxn(t, ctx, p, false, "gone") // 0, ABORT at 1
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSyncOne(t, ctx, p, "open") // 2
	p.Close()
	cl.Close()
	b.Close()

	b = brokertest.Start(t, brokertest.WithDataDir(dir))
	cl = client(t, b.Addr())
	if got := endOffset(t, ctx, cl, "txr", 1); got != 2 {
		t.Fatalf("LSO after restart = %d, want 2 (the open transaction's start)", got)
	}
	waitEnd(t, ctx, cl, "txr", 1, 4) // aborted on timeout: ABORT marker at 3
	produceRaw(t, ctx, cl, "txr", rawBatch(-1, -1, -1, "end"))
	if got := readValues(t, ctx, []string{b.Addr()}, "txr", true, "end"); len(got) != 0 {
		t.Fatalf("read_committed after restart saw %q, want nothing", got)
	}
}
