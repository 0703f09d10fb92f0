package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/internal/batch"
)

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// topology is what a behaviour test runs against: the seeds of brokers
// forming one cluster, and how many there are.
type topology struct {
	seeds []string
	size  int
}

// onEachTopology runs f against one broker and against three. A single
// node is a controller quorum of one and keeps its metadata as a cluster
// does, so what these tests check must hold on both, through the same
// code.
func onEachTopology(t *testing.T, f func(t *testing.T, top topology), opts ...brokertest.Option) {
	t.Run("one", func(t *testing.T) {
		b := brokertest.Start(t, opts...)
		f(t, topology{seeds: []string{b.Addr()}, size: 1})
	})
	t.Run("three", func(t *testing.T) {
		c := brokertest.StartCluster(t, 3, opts...)
		f(t, topology{seeds: c.Seeds(), size: 3})
	})
}

// client connects to the topology's brokers; retries ride out a new
// partition's first election.
func (top topology) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return client(t, top.seeds[0], append([]kgo.Opt{kgo.SeedBrokers(top.seeds...), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
}

// consumeN reads n records from the start of topic.
func consumeN(t *testing.T, ctx context.Context, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	return consumeFrom(t, ctx, []string{addr}, topic, n)
}

// consumeFrom reads n records from the start of topic through seeds.
func consumeFrom(t *testing.T, ctx context.Context, seeds []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := client(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

func TestProduceConsumeRoundTrip(t *testing.T) { onEachTopology(t, testProduceConsumeRoundTrip) }

func testProduceConsumeRoundTrip(t *testing.T, top topology) {
	ctx := testCtx(t)
	cl := top.client(t, kgo.DefaultProduceTopic("orders"))
	const n = 1000
	for i := range n {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("v%d", i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := consumeFrom(t, ctx, top.seeds, "orders", n)
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if want := fmt.Sprintf("v%d", i); string(r.Value) != want || r.Offset != int64(i) {
			t.Fatalf("record %d: value %q offset %d, want %q offset %d", i, r.Value, r.Offset, want, i)
		}
		if len(r.Headers) != 1 || string(r.Headers[0].Value) != "x" {
			t.Fatalf("record %d headers %v", i, r.Headers)
		}
	}
}

// TestConcurrentProducersKeepTheirRecords produces from several clients at
// once in many small requests, whose frames the broker reads into reused
// buffers, and checks that every record arrives intact and in order.
func TestConcurrentProducersKeepTheirRecords(t *testing.T) {
	onEachTopology(t, testConcurrentProducersKeepTheirRecords)
}

func testConcurrentProducersKeepTheirRecords(t *testing.T, top topology) {
	ctx := testCtx(t)
	const producers, n = 3, 3000
	errs := make(chan error, producers)
	for p := range producers {
		cl := top.client(t, kgo.DefaultProduceTopic("many"), kgo.ProducerLinger(0))
		go func() {
			for i := range n {
				// Values of varying length, so reused frames differ in size.
				v := fmt.Sprintf("p%d-%d-%s", p, i, strings.Repeat("x", i%97*13))
				cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			errs <- cl.Flush(ctx)
		}()
	}
	for range producers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	next := make([]int, producers)
	for _, r := range consumeFrom(t, ctx, top.seeds, "many", producers*n) {
		var p, i int
		if _, err := fmt.Sscanf(string(r.Value), "p%d-%d-", &p, &i); err != nil || p < 0 || p >= producers {
			t.Fatalf("offset %d: value %.40q", r.Offset, r.Value)
		}
		want := fmt.Sprintf("p%d-%d-%s", p, next[p], strings.Repeat("x", next[p]%97*13))
		if string(r.Value) != want {
			t.Fatalf("offset %d: value %.40q, want %.40q", r.Offset, r.Value, want)
		}
		next[p]++
	}
}

func TestRecordsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, brokertest.WithDataDir(dir))
	ctx := testCtx(t)
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("durable"))
	for i := range 100 {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := brokertest.Start(t, brokertest.WithDataDir(dir))
	got := consumeN(t, ctx, b2.Addr(), "durable", 100)
	for i, r := range got {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d = %q after restart", i, r.Value)
		}
	}
	if b.ClusterID() != b2.ClusterID() {
		t.Fatalf("cluster id changed across restart: %s -> %s", b.ClusterID(), b2.ClusterID())
	}
}

func TestCreateDescribeDeleteTopics(t *testing.T) { onEachTopology(t, testCreateDescribeDeleteTopics) }

func testCreateDescribeDeleteTopics(t *testing.T, top topology) {
	ctx := testCtx(t)
	adm := kadm.NewClient(top.client(t))
	resp, err := adm.CreateTopic(ctx, 3, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "t1")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t1"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("second create: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, int16(top.size+1), nil, "t2"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf %d on %d brokers: %v, want INVALID_REPLICATION_FACTOR", top.size+1, top.size, err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "bad name!"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "t3"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v, want INVALID_CONFIG", err)
	}
	md, err := adm.Metadata(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics["t1"]; len(td.Partitions) != 3 || td.ID == [16]byte{} {
		t.Fatalf("metadata for t1: %+v", td)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfgs.On("t1", nil); err != nil || !hasConfig(v.Configs, "cleanup.policy", "compact") {
		t.Fatalf("describe configs: %+v %v", v, err)
	}
	if _, err := adm.UpdatePartitions(ctx, 5, "t1"); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1000")}}
	if r, err := adm.AlterTopicConfigs(ctx, alter, "t1"); err != nil || r[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, r)
	}
	cfgs, _ = adm.DescribeTopicConfigs(ctx, "t1")
	if v, _ := cfgs.On("t1", nil); !hasConfig(v.Configs, "retention.ms", "1000") || !hasConfig(v.Configs, "cleanup.policy", "compact") {
		t.Fatalf("after incremental alter: %+v", v.Configs)
	}
	if r, err := adm.DeleteTopics(ctx, "t1"); err != nil || r["t1"].Err != nil {
		t.Fatalf("delete: %v %+v", err, r)
	}
	// The broker that deleted t1 no longer lists it; another broker's copy
	// of the metadata may lag a moment behind (as in Kafka).
	for {
		md, _ = adm.Metadata(ctx)
		if _, ok := md.Topics["t1"]; !ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("t1 still listed after delete")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

func TestIdempotentProducerDeduplicates(t *testing.T) {
	onEachTopology(t, testIdempotentProducerDeduplicates)
}

func testIdempotentProducerDeduplicates(t *testing.T, top topology) {
	ctx := testCtx(t)
	cl := top.client(t)
	pid := initProducerID(t, ctx, cl)
	topic := "idem"
	mustCreate(t, ctx, cl, topic, 1)
	send := func(seq int32, vals ...string) *kmsg.ProduceResponseTopicPartition {
		return produceRaw(t, ctx, cl, topic, rawBatch(pid, 0, seq, vals...))
	}
	first := send(0, "a", "b")
	if first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first batch: code %d base %d", first.ErrorCode, first.BaseOffset)
	}
	if r := send(2, "c"); r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("second batch: code %d base %d", r.ErrorCode, r.BaseOffset)
	}
	if r := send(0, "a", "b"); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("retried batch must be answered with its original offset: code %d base %d", r.ErrorCode, r.BaseOffset)
	}
	if r := send(7, "z"); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap in sequence: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", r.ErrorCode)
	}
	got := consumeFrom(t, ctx, top.seeds, topic, 3)
	if len(got) != 3 {
		t.Fatalf("log holds %d records, want 3 (a duplicate was appended)", len(got))
	}
}

func initProducerID(t *testing.T, ctx context.Context, cl *kgo.Client) int64 {
	req := kmsg.NewPtrInitProducerIDRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %d", err, resp.ErrorCode)
	}
	return resp.ProducerID
}

// mustCreate creates topic with the default replication factor and waits
// for its leaders: raw requests (produceRaw) are not retried.
func mustCreate(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	mustCreateWith(t, ctx, cl, topic, partitions, nil)
}

func mustCreateWith(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, configs, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	awaitLeaders(t, cl, topic)
}

// rawBatch builds a v2 batch with explicit producer fields.
func rawBatch(pid int64, epoch int16, seq int32, vals ...string) []byte {
	recs := make([]batch.Record, len(vals))
	for i, v := range vals {
		recs[i] = batch.Record{OffsetDelta: int32(i), Value: []byte(v)}
	}
	opts := batch.DefaultBuildOptions()
	opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = pid, epoch, seq
	opts.BaseTimestamp = time.Now().UnixMilli()
	raw, err := batch.Build(opts, recs)
	if err != nil {
		panic(err)
	}
	return raw
}

func produceRaw(t *testing.T, ctx context.Context, cl kmsg.Requestor, topic string, records []byte) *kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if kc, ok := cl.(*kgo.Client); ok {
		cl = kc.Broker(int(leaderOf(t, ctx, kc, topic)))
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return &resp.Topics[0].Partitions[0]
}

// leaderOf is the leader of partition 0 of topic, or, for a topic that
// does not exist, any broker (which answers for it as a leader would).
func leaderOf(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) int32 {
	t.Helper()
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) > 0 {
		return td.Partitions[0].Leader
	}
	return md.Brokers[0].NodeID
}

func TestProduceRejectsBadInput(t *testing.T) {
	onEachTopology(t, testProduceRejectsBadInput, brokertest.WithConfig(func(c *broker.Config) { c.MaxMessageBytes = 4096 }))
}

func testProduceRejectsBadInput(t *testing.T, top topology) {
	ctx := testCtx(t)
	cl := top.client(t)
	mustCreate(t, ctx, cl, "in", 1)

	corrupt := rawBatch(-1, -1, -1, "hello")
	corrupt[len(corrupt)-1] ^= 0xff
	if r := produceRaw(t, ctx, cl, "in", corrupt); r.ErrorCode != kerr.CorruptMessage.Code {
		t.Errorf("bad CRC: code %d, want CORRUPT_MESSAGE", r.ErrorCode)
	}
	big := rawBatch(-1, -1, -1, strings.Repeat("x", 5000))
	if r := produceRaw(t, ctx, cl, "in", big); r.ErrorCode != kerr.MessageTooLarge.Code {
		t.Errorf("oversized batch: code %d, want MESSAGE_TOO_LARGE", r.ErrorCode)
	}
	if r := produceRaw(t, ctx, cl, "bad/name", rawBatch(-1, -1, -1, "x")); r.ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("invalid topic: code %d, want INVALID_TOPIC_EXCEPTION", r.ErrorCode)
	}
	// Nothing bad reached the log, and a good batch still lands at 0.
	if r := produceRaw(t, ctx, cl, "in", rawBatch(-1, -1, -1, "ok")); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Errorf("good batch after bad ones: code %d base %d", r.ErrorCode, r.BaseOffset)
	}
}

func listEnds(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// Deleting a topic and creating it again at once must give an empty
// topic: the new topic's partitions open only after the old ones' files
// are removed (the reconcile loop applies the image's changes in order).
func TestDeleteThenRecreateStartsEmpty(t *testing.T) {
	onEachTopology(t, testDeleteThenRecreateStartsEmpty)
}

func testDeleteThenRecreateStartsEmpty(t *testing.T, top topology) {
	ctx := testCtx(t)
	cl := top.client(t)
	adm := kadm.NewClient(cl)
	for round := range 3 {
		mustCreate(t, ctx, cl, "again", 2)
		for i := range 10 {
			r := &kgo.Record{Topic: "again", Value: []byte(fmt.Sprint(round, "-", i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		ends := listEnds(t, ctx, cl, "again")
		if ends[0]+ends[1] != 10 {
			t.Fatalf("round %d: %v records in the recreated topic, want 10", round, ends)
		}
		deleteTopic(t, ctx, adm, "again")
		// franz-go refuses a topic id it did not start with (the topic was
		// recreated) until the topic is purged from the client.
		cl.PurgeTopicsFromClient("again")
	}
}

// deleteTopic deletes topic. kadm names it by the id its metadata gives,
// and a broker's copy of the metadata may lag a moment behind another's
// (as in Kafka): an id of a topic just deleted and recreated elsewhere is
// refused with UNKNOWN_TOPIC_ID, and the next attempt asks again.
func deleteTopic(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) {
	t.Helper()
	for {
		r, err := adm.DeleteTopics(ctx, topic)
		if err == nil {
			err = r[topic].Err
		}
		switch {
		case err == nil:
			return
		case !errors.Is(err, kerr.UnknownTopicID) || ctx.Err() != nil:
			t.Fatalf("delete %s: %v", topic, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMinInsyncReplicas checks min.insync.replicas is enforced, not just
// stored: a partition has at most as many replicas in sync as it has
// replicas, so acks=all to a topic asking for one more is refused
// (retriable) and acks=1 is not.
func TestMinInsyncReplicas(t *testing.T) { onEachTopology(t, testMinInsyncReplicas) }

func testMinInsyncReplicas(t *testing.T, top topology) {
	cl := top.client(t)
	ctx := testCtx(t)
	more := fmt.Sprint(top.size + 1)
	mustCreateWith(t, ctx, cl, "strict", 1, map[string]*string{"min.insync.replicas": &more})
	if got := produceRaw(t, ctx, cl, "strict", rawBatch(-1, -1, -1, "a")); got.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with %d of min.insync.replicas %s in sync: error %d, want NOT_ENOUGH_REPLICAS", top.size, more, got.ErrorCode)
	}
	one := top.client(t, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(ctx, &kgo.Record{Topic: "strict", Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	if ends := listEnds(t, ctx, cl, "strict"); ends[0] != 1 {
		t.Fatalf("log end %d, want 1: the refused batch must not be appended", ends[0])
	}
}
