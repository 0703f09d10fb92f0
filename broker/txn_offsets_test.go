package broker

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests drive transactional offset commits end to end on a real
// broker with raw requests, as a transactional producer and its
// transaction coordinator would: TxnOffsetCommit, then WriteTxnMarkers on
// the group's __consumer_offsets partition, checking what OffsetFetch
// returns before and after, and across restarts (replay).

const txnOffsetsGroup = "txn-offsets"

type txnOffsetsBroker struct {
	b      *Broker
	cl     *kgo.Client
	closed sync.Once
}

func startTxnOffsetsBroker(t *testing.T, ctx context.Context, dir string) *txnOffsetsBroker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.OffsetsPartitions = "127.0.0.1:0", dir, 2
	cfg.GroupInitialRebalanceDelay = 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tb := &txnOffsetsBroker{b: b, cl: cl}
	t.Cleanup(tb.close)
	return tb
}

func (tb *txnOffsetsBroker) close() {
	tb.closed.Do(func() {
		tb.cl.Close()
		tb.b.Close()
	})
}

// awaitCoordinator polls until the broker coordinates the group (its
// __consumer_offsets partition led and loaded).
func (tb *txnOffsetsBroker) awaitCoordinator(t *testing.T, ctx context.Context) {
	t.Helper()
	// FindCoordinator creates __consumer_offsets if need be.
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = txnOffsetsGroup
	if _, err := req.RequestWith(ctx, tb.cl); err != nil {
		t.Fatal(err)
	}
	txnOffsetsPoll(t, ctx, "the group's coordinator", func() bool { return tb.b.coordinatorError(txnOffsetsGroup) == 0 })
}

// txnOffsetsPoll polls cond until it holds or ctx ends.
func txnOffsetsPoll(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// txnCommit sends a TxnOffsetCommit v3 (no member: a producer outside the
// group) for partitions of topic "in" and returns each partition's error.
// Over the wire when the broker advertises TxnOffsetCommit, else through the
// handler's method.
func (tb *txnOffsetsBroker) txnCommit(t *testing.T, ctx context.Context, pid int64, epoch int16, offsets map[int32]int64) map[int32]error {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID = "txn-offsets-producer"
	req.Group = txnOffsetsGroup
	req.ProducerID, req.ProducerEpoch = pid, epoch
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "in"
	for p, o := range offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	var resp *kmsg.TxnOffsetCommitResponse
	if _, ok := lookupAPI(kmsg.TxnOffsetCommit.Int16()); ok {
		var err error
		if resp, err = req.RequestWith(ctx, tb.cl); err != nil {
			t.Fatalf("TxnOffsetCommit: %v", err)
		}
	} else {
		resp = tb.b.txnOffsetCommit(ctx, req).(*kmsg.TxnOffsetCommitResponse)
	}
	out := make(map[int32]error)
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			out[sp.Partition] = kerr.ErrorForCode(sp.ErrorCode)
		}
	}
	if len(out) != len(offsets) {
		t.Fatalf("TxnOffsetCommit answered %d partitions, want %d: %+v", len(out), len(offsets), resp)
	}
	return out
}

func (tb *txnOffsetsBroker) mustTxnCommit(t *testing.T, ctx context.Context, pid int64, epoch int16, offsets map[int32]int64) {
	t.Helper()
	for p, err := range tb.txnCommit(t, ctx, pid, epoch, offsets) {
		if err != nil {
			t.Fatalf("TxnOffsetCommit in/%d: %v", p, err)
		}
	}
}

type fetched struct {
	offset int64
	err    error
}

// fetch is OffsetFetch v7 of partitions 0 and 1 of "in", with or without
// RequireStable.
func (tb *txnOffsetsBroker) fetch(t *testing.T, ctx context.Context, stable bool) map[int32]fetched {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = txnOffsetsGroup
	req.RequireStable = stable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "in", []int32{0, 1}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, tb.cl)
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	out := make(map[int32]fetched)
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			out[sp.Partition] = fetched{sp.Offset, kerr.ErrorForCode(sp.ErrorCode)}
		}
	}
	return out
}

// want checks the committed offsets of in/0 and in/1 (-1: none) and which
// of them are unstable (have pending transactional offsets).
func (tb *txnOffsetsBroker) want(t *testing.T, ctx context.Context, what string, committed [2]int64, unstable [2]bool) {
	t.Helper()
	plain, stable := tb.fetch(t, ctx, false), tb.fetch(t, ctx, true)
	for p := range int32(2) {
		if got := plain[p]; got.err != nil || got.offset != committed[p] {
			t.Fatalf("%s: in/%d fetched %d (%v), want %d", what, p, got.offset, got.err, committed[p])
		}
		got := stable[p]
		switch {
		case unstable[p] && (got.err != kerr.UnstableOffsetCommit || got.offset != -1):
			t.Fatalf("%s: in/%d stable fetch %d (%v), want UNSTABLE_OFFSET_COMMIT", what, p, got.offset, got.err)
		case !unstable[p] && (got.err != nil || got.offset != committed[p]):
			t.Fatalf("%s: in/%d stable fetch %d (%v), want %d", what, p, got.offset, got.err, committed[p])
		}
	}
}

// marker sends WriteTxnMarkers for pid on the group's __consumer_offsets
// partition, as the transaction coordinator does when the transaction
// ends.
func (tb *txnOffsetsBroker) marker(t *testing.T, ctx context.Context, pid int64, epoch int16, commit bool) {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = pid, epoch, commit
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = offsetsTopic, []int32{tb.b.groups.PartitionFor(txnOffsetsGroup)}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, tb.cl)
	if err != nil {
		t.Fatalf("WriteTxnMarkers: %v", err)
	}
	if err := kerr.ErrorForCode(resp.Markers[0].Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("WriteTxnMarkers: %v", err)
	}
}

// initProducerID starts the test's transaction with the coordinator:
// InitProducerID for its transactional id, then AddOffsetsToTxn for the
// group, so TxnOffsetCommit passes the coordinator's verification. The
// markers are then sent raw, leaving the coordinator's transaction open
// (its long timeout keeps it so).
func (tb *txnOffsetsBroker) initProducerID(t *testing.T, ctx context.Context) (int64, int16) {
	t.Helper()
	id := "txn-offsets-producer"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 600000
	resp, err := init.RequestWith(ctx, tb.cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = id, resp.ProducerID, resp.ProducerEpoch, txnOffsetsGroup
	aresp, err := add.RequestWith(ctx, tb.cl)
	if err != nil || aresp.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %v", err, kerr.ErrorForCode(aresp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func TestTxnOffsetCommitEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	tb := startTxnOffsetsBroker(t, ctx, dir)
	if _, err := kadm.NewClient(tb.cl).CreateTopic(ctx, 2, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	tb.awaitCoordinator(t, ctx)
	adm := kadm.NewClient(tb.cl)
	if err := adm.CommitAllOffsets(ctx, txnOffsetsGroup, kadm.OffsetsFromRecords(kgo.Record{Topic: "in", Partition: 0, Offset: 2})); err != nil {
		t.Fatal(err)
	}
	tb.want(t, ctx, "plain commit", [2]int64{3, -1}, [2]bool{})
	pid, epoch := tb.initProducerID(t, ctx)

	// Pending until the COMMIT marker.
	tb.mustTxnCommit(t, ctx, pid, epoch, map[int32]int64{0: 10, 1: 11})
	tb.want(t, ctx, "pending", [2]int64{3, -1}, [2]bool{true, true})
	tb.marker(t, ctx, pid, epoch, true)
	tb.want(t, ctx, "committed", [2]int64{10, 11}, [2]bool{})

	// Dropped by the ABORT marker.
	tb.mustTxnCommit(t, ctx, pid, epoch, map[int32]int64{0: 20})
	tb.want(t, ctx, "pending again", [2]int64{10, 11}, [2]bool{true, false})
	tb.marker(t, ctx, pid, epoch, false)
	tb.want(t, ctx, "aborted", [2]int64{10, 11}, [2]bool{})

	// A stale epoch is refused by the coordinator's verification.
	for p, err := range tb.txnCommit(t, ctx, pid, epoch-1, map[int32]int64{1: 6}) {
		if err != kerr.InvalidProducerEpoch {
			t.Fatalf("fenced TxnOffsetCommit in/%d: %v, want INVALID_PRODUCER_EPOCH", p, err)
		}
	}
	tb.want(t, ctx, "fenced commit refused", [2]int64{10, 11}, [2]bool{})

	// Pending across a restart: replay keeps it pending, the marker then
	// commits it.
	tb.mustTxnCommit(t, ctx, pid, epoch, map[int32]int64{0: 30})
	tb.close()
	tb = startTxnOffsetsBroker(t, ctx, dir)
	tb.awaitCoordinator(t, ctx)
	tb.want(t, ctx, "pending after restart", [2]int64{10, 11}, [2]bool{true, false})
	tb.marker(t, ctx, pid, epoch, true)
	tb.want(t, ctx, "committed after restart", [2]int64{30, 11}, [2]bool{})

	// Settled before a restart: replay commits what the marker committed
	// and drops what it aborted.
	tb.mustTxnCommit(t, ctx, pid, epoch, map[int32]int64{1: 40})
	tb.marker(t, ctx, pid, epoch, false)
	tb.mustTxnCommit(t, ctx, pid, epoch, map[int32]int64{1: 41})
	tb.marker(t, ctx, pid, epoch, true)
	tb.mustTxnCommit(t, ctx, pid, epoch, map[int32]int64{0: 50}) // open at the restart
	tb.close()
	tb = startTxnOffsetsBroker(t, ctx, dir)
	tb.awaitCoordinator(t, ctx)
	tb.want(t, ctx, "replayed", [2]int64{30, 41}, [2]bool{true, false})
	tb.marker(t, ctx, pid, epoch, false)
	tb.want(t, ctx, "aborted after replay", [2]int64{30, 41}, [2]bool{})
}
