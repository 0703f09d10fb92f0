package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// preferredLeads is the awaitISR condition of a partition led by its
// preferred replica with every replica in sync.
func preferredLeads(p kadm.PartitionDetail) bool {
	return p.Leader == p.Replicas[0] && len(p.ISR) == len(p.Replicas)
}

// ledBy lists the partitions of a topic's metadata that node leads.
func ledBy(md kadm.Metadata, topic string, node int32) []int32 {
	var out []int32
	for _, p := range md.Topics[topic].Partitions.Sorted() {
		if p.Leader == node {
			out = append(out, p.Partition)
		}
	}
	return out
}

// moveLeadersOff stops node i+1, waits until the topic's partitions are
// led elsewhere, restarts it and waits until it is back in every ISR. It
// returns the partitions that prefer the node.
func moveLeadersOff(t *testing.T, c *brokertest.Cluster, adm *kadm.Client, topic string, i int) []int32 {
	t.Helper()
	node := int32(i + 1)
	md := awaitISR(t, adm, topic, preferredLeads)
	prefer := ledBy(md, topic, node)
	if len(prefer) == 0 {
		t.Fatalf("node %d is preferred leader of none of %s's partitions", node, topic)
	}
	c.Stop(i)
	awaitISR(t, adm, topic, func(p kadm.PartitionDetail) bool { return p.Leader != node })
	c.Restart(i)
	awaitISR(t, adm, topic, func(p kadm.PartitionDetail) bool { return len(p.ISR) == len(p.Replicas) })
	return prefer
}

// TestClusterPreferredLeaders checks Kafka's leader placement: new
// partitions are led by their first replica (so leadership is spread like
// the placement), and after a failover ElectLeaders moves leadership back
// without waiting for the imbalance check.
func TestClusterPreferredLeaders(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft, func(cfg *broker.Config) { cfg.DisableAutoLeaderRebalance = true })
	cl := clusterClient(t, c)
	adm := kadm.NewClient(cl)
	createClusterTopic(t, cl, "lead", 6, 3)
	md := awaitISR(t, adm, "lead", preferredLeads)
	for node := int32(1); node <= 3; node++ {
		if n := len(ledBy(md, "lead", node)); n != 2 {
			t.Errorf("node %d leads %d of 6 partitions, want 2", node, n)
		}
	}

	prefer := moveLeadersOff(t, c, adm, "lead", 0)
	md = awaitISR(t, adm, "lead", func(kadm.PartitionDetail) bool { return true })
	if led := ledBy(md, "lead", 1); len(led) != 0 {
		t.Fatalf("node 1 leads %v again without an election or rebalance", led)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := kadm.TopicsSet{"lead": {0: {}, 1: {}, 2: {}, 3: {}, 4: {}, 5: {}}, "missing": {0: {}}}
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, all)
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range res["lead"] {
		want := kerr.ElectionNotNeeded
		if slices.Contains(prefer, p) {
			want = nil
		}
		if !errors.Is(r.Err, want) && !(want == nil && r.Err == nil) {
			t.Errorf("preferred election of lead-%d: %v (%s), want %v", p, r.Err, r.ErrMessage, want)
		}
	}
	if len(res["lead"]) != 6 {
		t.Errorf("election answered for %d of 6 partitions", len(res["lead"]))
	}
	if r := res["missing"][0]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("election of a missing topic: %v", r.Err)
	}
	awaitISR(t, adm, "lead", preferredLeads)

	// Asked again, or for all partitions (null), or unclean: nothing to do.
	res, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{})
	if err != nil || len(res) != 0 {
		t.Errorf("election of every partition when all are preferred: %v, results %v", err, res)
	}
	res, err = adm.ElectLeaders(ctx, kadm.ElectLiveReplica, kadm.TopicsSet{"lead": {0: {}}})
	if err != nil || !errors.Is(res["lead"][0].Err, kerr.ElectionNotNeeded) {
		t.Errorf("unclean election of a led partition: %v %+v", err, res)
	}
}

// TestClusterRebalancesLeaders checks auto.leader.rebalance: after a
// failover and restart the imbalance check hands the restarted broker's
// preferred partitions back to it.
func TestClusterRebalancesLeaders(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft, func(cfg *broker.Config) { cfg.LeaderImbalanceCheckInterval = 500 * time.Millisecond })
	cl := clusterClient(t, c)
	adm := kadm.NewClient(cl)
	createClusterTopic(t, cl, "rebalance", 6, 3)
	moveLeadersOff(t, c, adm, "rebalance", 1)
	awaitISR(t, adm, "rebalance", preferredLeads)
	produceN(t, cl, "rebalance", "after", 100)
}
