package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions under process faults: a `weir broker` killed with SIGKILL
// in the middle of a transaction, and a coordinator killed between EndTxn
// and its markers.

// txnBrokerFlags keep the coordinator topics small and find timed-out
// transactions quickly.
var txnBrokerFlags = []string{"--offsets-partitions", "2", "--transaction-partitions", "2", "--transaction-abort-interval", "100ms"}

// procBroker is one `weir broker` process on a fixed port and directory,
// so it can be killed and started again where clients expect it.
type procBroker struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProcBroker(t *testing.T) *procBroker {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	b := &procBroker{t: t, addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), dir: t.TempDir()}
	b.start()
	t.Cleanup(b.kill)
	return b
}

func (b *procBroker) start() {
	b.t.Helper()
	b.cmd = exec.Command(os.Args[0], append([]string{"broker", "--listen", b.addr, "--data-dir", filepath.Join(b.dir, "data"), "--log-level", "warn"}, txnBrokerFlags...)...)
	b.cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	b.cmd.Stderr = testLogWriter{b.t, "broker | "}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(b.cmd, b.done)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pollBrokers(ctx, b.addr, 1); err != nil {
		b.t.Fatal(err)
	}
}

func (b *procBroker) kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

func TestProcessTxnBrokerKilledMidTransaction(t *testing.T) {
	b := startProcBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := newTestClient(t, b.addr)
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, nil, "tk"); err != nil {
		t.Fatal(err)
	}
	p := newTestClient(t, b.addr, kgo.TransactionalID("killed"), kgo.DefaultProduceTopic("tk"), kgo.TransactionTimeout(2*time.Second))
	txnProduce(t, ctx, p, "c1", "c2")
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	txnProduce(t, ctx, p, "open1", "open2") // acknowledged, never ended

	b.kill()
	b.start()

	admin = newTestClient(t, b.addr)
	awaitStable(t, ctx, admin, "tk")
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the producer committed a transaction the restarted coordinator aborted")
	}
	plain := newTestClient(t, b.addr, kgo.DefaultProduceTopic("tk"))
	if err := plain.ProduceSync(ctx, kgo.StringRecord("end")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readCommitted(t, ctx, []string{b.addr}, "tk", "end"); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Fatalf("read_committed after the crash saw %q, want only the committed transaction", got)
	}
}

func TestProcessTxnCoordinatorKilledBeforeMarkers(t *testing.T) {
	c := startProcCluster(t, "--transaction-partitions", "1", "--offsets-partitions", "1", "--transaction-abort-interval", "100ms")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newTestClient(t, c.kafka[0], kgo.SeedBrokers(c.kafka...), kgo.TransactionalID("moved"), kgo.DefaultProduceTopic("tm"),
		kgo.TransactionTimeout(time.Minute), kgo.RetryTimeout(time.Minute))
	if _, _, err := p.ProducerID(ctx); err != nil { // creates __transaction_state
		t.Fatal(err)
	}
	admin := newTestClient(t, c.kafka[0], kgo.SeedBrokers(c.kafka...))
	coord := txnCoordinator(t, ctx, admin, "moved")
	data := (coord + 1) % 3 // the data partition's only replica is elsewhere
	createOn(t, ctx, admin, "tm", int32(data+1))
	txnProduce(t, ctx, p, "m1", "m2")

	// With the data partition's leader paused, the commit is decided
	// (PrepareCommit replicated) but no marker can be written.
	c.signal(data, syscall.SIGSTOP)
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if st, err := describeTxn(ctx, admin, int32(coord+1), "moved"); err != nil || st != "PrepareCommit" {
		t.Fatalf("state after EndTxn with the data leader paused = %s (%v), want PrepareCommit", st, err)
	}
	c.kill(coord)
	c.signal(data, syscall.SIGCONT)

	other := 3 - coord - data
	live := []string{c.kafka[data], c.kafka[other]}
	admin = newTestClient(t, live[0], kgo.SeedBrokers(live...))
	waitTxnDescribed(t, ctx, admin, int32(other+1), "moved", "CompleteCommit")
	plain := newTestClient(t, live[0], kgo.SeedBrokers(live...), kgo.DefaultProduceTopic("tm"))
	if err := plain.ProduceSync(ctx, kgo.StringRecord("end")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readCommitted(t, ctx, live, "tm", "end"); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("read_committed saw %q, want the transaction the new coordinator completed", got)
	}
}

func newTestClient(t *testing.T, seed string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func txnProduce(t *testing.T, ctx context.Context, p *kgo.Client, vals ...string) {
	t.Helper()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// awaitStable polls until partition 0's last stable offset reaches its
// high watermark: no transaction is open there any more.
func awaitStable(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) {
	t.Helper()
	for {
		hw, lso := endOffsets(ctx, cl, topic)
		if hw > 0 && hw == lso {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: last stable offset %d never reached the high watermark %d", topic, lso, hw)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// endOffsets lists partition 0's high watermark and last stable offset
// (-1 when the request fails).
func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (hw, lso int64) {
	list := func(isolation int8) int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = isolation
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			return -1
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	return list(0), list(1)
}

// readCommitted reads topic with read_committed until the value until.
func readCommitted(t *testing.T, ctx context.Context, seeds []string, topic, until string) []string {
	t.Helper()
	cl := newTestClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %q before %v", got, ctx.Err())
		}
		for _, r := range fs.Records() {
			if string(r.Value) == until {
				return got
			}
			got = append(got, string(r.Value))
		}
	}
}

// txnCoordinator is the 0-based node coordinating id.
func txnCoordinator(t *testing.T, ctx context.Context, cl *kgo.Client, id string) int {
	t.Helper()
	for {
		rs := kadm.NewClient(cl).FindTxnCoordinators(ctx, id)
		if r, ok := rs[id]; ok && r.Err == nil {
			return int(r.NodeID) - 1
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no coordinator for %s", id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// createOn creates topic with one partition whose only replica is node.
func createOn(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, node int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{node}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s on node %d: %v", topic, node, err)
	}
	for {
		md, err := kadm.NewClient(cl).Metadata(ctx, topic)
		if err == nil {
			if pd, ok := md.Topics[topic].Partitions[0]; ok && pd.Leader == node {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has no leader", topic)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// describeTxn describes id through node (1-based) alone: kgo would send
// FindCoordinator to any broker it knows, paused and killed ones too.
func describeTxn(ctx context.Context, cl *kgo.Client, node int32, id string) (string, error) {
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorType, find.CoordinatorKey, find.CoordinatorKeys = 1, id, []string{id}
	fr, err := find.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		return "", err
	}
	coord, code := fr.NodeID, fr.ErrorCode
	if len(fr.Coordinators) == 1 {
		coord, code = fr.Coordinators[0].NodeID, fr.Coordinators[0].ErrorCode
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return "", fmt.Errorf("find coordinator: %w", err)
	}
	d := kmsg.NewPtrDescribeTransactionsRequest()
	d.TransactionalIDs = []string{id}
	dr, err := d.RequestWith(ctx, cl.Broker(int(coord)))
	if err != nil {
		return "", fmt.Errorf("describe at node %d: %w", coord, err)
	}
	if len(dr.TransactionStates) != 1 {
		return "", fmt.Errorf("describe at node %d: %d states", coord, len(dr.TransactionStates))
	}
	st := dr.TransactionStates[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		return "", fmt.Errorf("describe at node %d: %w", coord, err)
	}
	return st.State, nil
}

// waitTxnDescribed polls describeTxn through node until id is in state.
func waitTxnDescribed(t *testing.T, ctx context.Context, cl *kgo.Client, node int32, id, state string) {
	t.Helper()
	last := ""
	for {
		got, err := describeTxn(ctx, cl, node, id)
		if err != nil {
			last = err.Error()
		} else if last = got; got == state {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %s (last %q)", id, state, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
