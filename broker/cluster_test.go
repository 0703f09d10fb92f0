package broker_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/weir-io/weir/internal/partlog"
)

// fastRaft is the default Raft timeout, spelled out: the fault tests'
// unavailability figures are quoted for it.
func fastRaft(c *broker.Config) { c.RaftTimeout = 500 * time.Millisecond }

func clusterClient(t *testing.T, c *brokertest.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Seeds()...), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createClusterTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, nil, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// produceN produces n records valued prefix-i and fails on any error.
func produceN(t *testing.T, cl *kgo.Client, topic, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeDistinct reads topic from the start until want distinct values arrive.
func consumeDistinct(t *testing.T, seeds []string, topic string, want int) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]int{}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d distinct records", len(seen), want)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	return seen
}

// awaitLeaders polls Metadata until every partition of topic is led by
// its preferred replica. A new partition hands leadership over to it if
// another replica won the first election, so an earlier leader may move.
func awaitLeaders(t *testing.T, cl *kgo.Client, topic string) kadm.Metadata {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
		if err == nil && md.Topics[topic].Err == nil && len(md.Topics[topic].Partitions) > 0 {
			ok := true
			for _, p := range md.Topics[topic].Partitions {
				ok = ok && len(p.Replicas) > 0 && p.Leader == p.Replicas[0]
			}
			if ok {
				return md
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions of %s still not led by their preferred replicas: %v %+v", topic, err, md.Topics[topic])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterReplicatesAndSurvivesLeaderStop(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c)
	createClusterTopic(t, cl, "orders", 3, 3)
	produceN(t, cl, "orders", "a", 300)

	md := awaitLeaders(t, cl, "orders")
	if len(md.Brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3", len(md.Brokers))
	}
	leader := md.Topics["orders"].Partitions[0].Leader
	for _, p := range md.Topics["orders"].Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d has replicas %v, want 3", p.Partition, p.Replicas)
		}
	}
	c.Stop(int(leader) - 1)
	produceN(t, cl, "orders", "b", 300)
	seen := consumeDistinct(t, c.Seeds(), "orders", 600)
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s read %d times", v, n)
		}
	}
	c.Restart(int(leader) - 1)
	produceN(t, cl, "orders", "c", 30)
}

// TestClusterPlacement covers how replicas are placed: by the controller
// (refusing a replication factor above the broker count, as Kafka does)
// or by a manual assignment in CreateTopics and CreatePartitions.
func TestClusterPlacement(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c)
	ctx := context.Background()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 4, nil, "too-many")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4 on 3 brokers: got %v, want INVALID_REPLICATION_FACTOR", err)
	}

	create := func(name string, parts int32, rf int16, assign ...[]int32) error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		for i, rs := range assign {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), rs
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	for _, bad := range []struct {
		parts  int32
		assign [][]int32
		want   error
	}{
		{-1, [][]int32{{1, 9}}, kerr.InvalidReplicaAssignment},      // no broker 9
		{-1, [][]int32{{1, 2}, {3}}, kerr.InvalidReplicaAssignment}, // uneven
		{-1, [][]int32{{1, 1}}, kerr.InvalidReplicaAssignment},      // twice
		{2, [][]int32{{1, 2}}, kerr.InvalidRequest},                 // count too
	} {
		if err := create("bad", bad.parts, -1, bad.assign...); !errors.Is(err, bad.want) {
			t.Errorf("assignment %v (partitions %d): %v, want %v", bad.assign, bad.parts, err, bad.want)
		}
	}
	if err := create("manual", -1, -1, []int32{3, 1}, []int32{2, 3}); err != nil {
		t.Fatalf("create with an assignment: %v", err)
	}
	adm := kadm.NewClient(cl)
	grow, err := adm.CreatePartitions(ctx, 1, "manual") // placed by the controller
	if err == nil {
		err = grow.Error()
	}
	if err != nil {
		t.Fatalf("add a placed partition: %v", err)
	}
	grow2 := kmsg.NewPtrCreatePartitionsRequest()
	grow2.TimeoutMillis = 10000
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = "manual", 4
	gt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1, 2}}}
	grow2.Topics = append(grow2.Topics, gt)
	gresp, err := grow2.RequestWith(ctx, cl)
	if err != nil || gresp.Topics[0].ErrorCode != 0 {
		t.Fatalf("add an assigned partition: %v %+v", err, gresp)
	}
	md := awaitLeaders(t, cl, "manual")
	ps := md.Topics["manual"].Partitions
	for i, want := range [][]int32{{3, 1}, {2, 3}, nil, {1, 2}} {
		if got := ps[int32(i)].Replicas; len(got) != 2 || want != nil && fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("partition %d has replicas %v, want %v (2 replicas)", i, got, want)
		}
	}
	produceN(t, cl, "manual", "m", 40)
}

func TestClusterConsumerGroupFailsOver(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft, func(cfg *broker.Config) { cfg.OffsetsPartitions = 2 })
	cl := clusterClient(t, c)
	createClusterTopic(t, cl, "events", 2, 3)
	produceN(t, cl, "events", "x", 100)

	// consume reads want records as group g1 and commits; it returns how
	// many of them carry prefix.
	consume := func(want int, prefix string) int {
		g, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("events"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		n, match := 0, 0
		for n < want {
			fs := g.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("group consumed %d of %d", n, want)
			}
			fs.EachRecord(func(r *kgo.Record) {
				n++
				if strings.HasPrefix(string(r.Value), prefix) {
					match++
				}
			})
		}
		if err := g.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		return match
	}
	if n := consume(100, "x-"); n != 100 {
		t.Fatalf("first read found %d of 100 records", n)
	}
	// Stop the coordinator of g1; committed offsets must survive on the
	// new leader of its __consumer_offsets partition.
	coord := groupCoordinator(t, cl, "g1")
	c.Stop(int(coord) - 1)
	produceN(t, clusterClient(t, c), "events", "y", 50)
	if n := consume(50, "y-"); n != 50 {
		t.Fatalf("after coordinator failover %d of the first 50 records read were new ones: committed offsets were lost", n)
	}
	// __consumer_offsets replicas allocate small Raft log segments.
	wals, _ := filepath.Glob(filepath.Join(c.DataDir(int(coord)%3), "raft", "__consumer_offsets-*", "wal", "*.wal"))
	if len(wals) == 0 {
		t.Fatal("no __consumer_offsets raft-wal segments found")
	}
	for _, w := range wals {
		fi, err := os.Stat(w)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes; want at most 1 MiB", w, fi.Size())
		}
	}
}

func TestClusterRemovesTopicDeletedWhileNodeDown(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c)
	createClusterTopic(t, cl, "gone", 1, 3)
	produceN(t, cl, "gone", "g", 10)
	dir := filepath.Join(c.DataDir(2), "gone-0")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("node 3 holds no replica directory: %v", err)
	}
	c.Stop(2)
	resp, err := kadm.NewClient(cl).DeleteTopics(context.Background(), "gone")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	c.Restart(2)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after the restart", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterFollowerCatchesUpBySnapshot stops a follower, writes far more
// entries than the leader keeps in its Raft log, and restarts it: it can
// only catch up from a snapshot carrying the segment files. With the third
// node stopped, a further produce commits only once the restarted node has
// caught up; its partition directory must then hold every earlier record.
func TestClusterFollowerCatchesUpBySnapshot(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft, func(cfg *broker.Config) {
		cfg.RaftSnapshotInterval, cfg.RaftSnapshotThreshold, cfg.RaftTrailingLogs = 200*time.Millisecond, 16, 8
	})
	cl := clusterClient(t, c, kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	createClusterTopic(t, cl, "lag", 1, 3)
	leader := int(awaitLeaders(t, cl, "lag").Topics["lag"].Partitions[0].Leader) - 1
	behind, other := (leader+1)%3, (leader+2)%3
	c.Stop(behind)
	// 12 MiB in 300 entries: more than one 8 MiB raft-wal segment, so
	// compaction frees the entries the stopped follower lacks, and more
	// than the 128 recent entries raft's log cache still serves.
	big := make([]byte, 40<<10) // random: the client compresses batches
	for i := range 300 {
		rand.Read(big)
		rec := &kgo.Record{Topic: "lag", Value: []byte(fmt.Sprintf("r%d-%x", i, big))}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(behind)
	c.Stop(other)
	produceN(t, clusterClient(t, c), "lag", "last", 1)
	c.Stop(behind)

	l, err := partlog.Open(filepath.Join(c.DataDir(behind), "lag-0"), partlog.Config{SegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	values := map[string]bool{}
	for off := l.StartOffset(); off < l.EndOffset(); {
		raw, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		bs, err := batch.Split(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, bb := range bs {
			recs, err := batch.Records(bb)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if strings.HasPrefix(string(r.Value), "r") {
					values[string(r.Value)] = true
				}
			}
			h, _ := batch.ParseHeader(bb)
			off = h.LastOffset() + 1
		}
	}
	// "last" may still be only in its Raft log (committed, not yet
	// applied when it stopped); the records written while it was down
	// must be in its partition log.
	if len(values) != 300 {
		t.Fatalf("the caught-up replica holds %d of the 300 records written while it was down", len(values))
	}
}

// TestClusterOnlyCoordinatorServesGroup sends group requests to a broker
// that does not lead the group's __consumer_offsets partition: it must
// answer NOT_COORDINATOR rather than serve (and create) the group itself.
func TestClusterOnlyCoordinatorServesGroup(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft, func(cfg *broker.Config) { cfg.OffsetsPartitions = 2 })
	cl := clusterClient(t, c)
	coord := groupCoordinator(t, cl, "g")
	other := coord%3 + 1
	ctx := context.Background()
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = "g"                                           // v0-7
	fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}} // v8+
	resp, err := fetch.RequestWith(ctx, cl.Broker(int(other)))
	if err != nil {
		t.Fatal(err)
	}
	code := resp.ErrorCode
	if len(resp.Groups) == 1 {
		code = resp.Groups[0].ErrorCode
	}
	if code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetFetch v%d at broker %d (coordinator %d): error %d, want NOT_COORDINATOR", fetch.Version, other, coord, code)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	jresp, err := join.RequestWith(ctx, cl.Broker(int(other)))
	if err != nil {
		t.Fatal(err)
	}
	if jresp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("JoinGroup at a non-coordinator: error %d, want NOT_COORDINATOR", jresp.ErrorCode)
	}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	dresp, err := describe.RequestWith(ctx, cl.Broker(int(other)))
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.Groups) != 1 || dresp.Groups[0].ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("DescribeGroups at a non-coordinator: %+v, want one group with NOT_COORDINATOR", dresp.Groups)
	}
}

// groupCoordinator finds group's coordinator once the __consumer_offsets
// partitions (created on the first FindCoordinator) are led by their
// preferred replicas, so it stays put while the test uses it.
func groupCoordinator(t *testing.T, cl *kgo.Client, group string) int32 {
	t.Helper()
	find := func() (coord int32, err error) {
		kadm.NewClient(cl).FindGroupCoordinators(context.Background(), group).Each(func(d kadm.FindCoordinatorResponse) {
			coord, err = d.NodeID, d.Err
		})
		return coord, err
	}
	settled := false
	deadline := time.Now().Add(30 * time.Second)
	for {
		coord, err := find()
		switch {
		case err == nil && settled:
			return coord
		case err == nil:
			awaitLeaders(t, cl, "__consumer_offsets")
			settled = true
			continue
		case time.Now().After(deadline):
			t.Fatalf("no coordinator for %s: %v", group, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterFollowerRefusesFetchAndProduce asks a follower directly: it
// must answer NOT_LEADER_OR_FOLLOWER so clients refresh and re-route.
func TestClusterFollowerRefusesFetchAndProduce(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c)
	createClusterTopic(t, cl, "f", 1, 3)
	md := awaitLeaders(t, cl, "f")
	follower := md.Topics["f"].Partitions[0].Leader%3 + 1
	ctx := context.Background()

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes = 10, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "f", md.Topics["f"].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fresp, err := fetch.RequestWith(ctx, cl.Broker(int(follower)))
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch at follower %d: error %d, want NOT_LEADER_OR_FOLLOWER", follower, code)
	}

	if sp := produceRaw(t, ctx, cl.Broker(int(follower)), "f", rawBatch(-1, -1, -1, "x")); sp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce at follower %d: error %d, want NOT_LEADER_OR_FOLLOWER", follower, sp.ErrorCode)
	}

	// A broker holding no replica at all answers the same.
	createClusterTopic(t, cl, "solo", 1, 1)
	other := awaitLeaders(t, cl, "solo").Topics["solo"].Partitions[0].Leader%3 + 1
	if sp := produceRaw(t, ctx, cl.Broker(int(other)), "solo", rawBatch(-1, -1, -1, "x")); sp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce at broker %d, not a replica: error %d, want NOT_LEADER_OR_FOLLOWER", other, sp.ErrorCode)
	}
}

// TestClusterReadsItsOwnCreates creates topics through one broker and at
// once asks another about them: a broker whose metadata lags the
// controller's must catch up rather than answer "unknown topic".
func TestClusterReadsItsOwnCreates(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c)
	ctx := context.Background()
	// cl.Broker needs the client to have discovered all three brokers.
	for deadline := time.Now().Add(30 * time.Second); len(cl.DiscoveredBrokers()) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client discovered only %d brokers", len(cl.DiscoveredBrokers()))
		}
		cl.ForceMetadataRefresh()
	}
	for i := range 20 {
		name := fmt.Sprintf("fresh-%d", i)
		create := kmsg.NewPtrCreateTopicsRequest()
		create.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 3
		create.Topics = append(create.Topics, rt)
		resp, err := create.RequestWith(ctx, cl.Broker(i%3+1))
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("create %s: %v %+v", name, err, resp)
		}
		other := cl.Broker((i+1)%3 + 1)
		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
		mresp, err := md.RequestWith(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if code := mresp.Topics[0].ErrorCode; code == kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("metadata for %s just after its creation: UNKNOWN_TOPIC_OR_PARTITION", name)
		}
		dc := kmsg.NewPtrDescribeConfigsRequest()
		dr := kmsg.NewDescribeConfigsRequestResource()
		dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, name
		dc.Resources = append(dc.Resources, dr)
		dresp, err := dc.RequestWith(ctx, other)
		if err != nil || dresp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe configs of %s just after its creation: %v %+v", name, err, dresp)
		}
	}
}
