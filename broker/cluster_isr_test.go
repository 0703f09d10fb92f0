package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// TestClusterISRFollowsReplicaProgress checks that the ISR means "caught
// up", not "alive": a follower cut off from its partition's leader but
// still heartbeating the controller (so not fenced) leaves the ISR after
// replica.lag.time.max.ms, acks=all produce then honours
// min.insync.replicas, and the follower returns once it has caught up. A
// restarted follower is out of the ISR until its new incarnation has
// caught up.
func TestClusterISRFollowsReplicaProgress(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft, func(cfg *broker.Config) { cfg.ReplicaLagTimeMax = time.Second })
	cl := clusterClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)

	// The lag path needs a partition whose leader is not the active
	// controller, so that cutting leader and follower apart leaves the
	// follower's controller heartbeats alone.
	var topic string
	var part, leader, ctl, follower int32
	for i := 0; topic == ""; i++ {
		if i == 5 {
			t.Fatal("every partition of 5 topics is led by the controller")
		}
		name := fmt.Sprintf("isr-%d", i)
		createClusterTopic(t, cl, name, 6, 3)
		// Leaders settle on the preferred replicas, which placement
		// spreads over the brokers.
		md := awaitISR(t, adm, name, preferredLeads)
		for _, p := range md.Topics[name].Partitions.Sorted() {
			if p.Leader != md.Controller {
				topic, part, leader, ctl = name, p.Partition, p.Leader, md.Controller
				break
			}
		}
	}
	follower = 6 - leader - ctl // nodes are 1, 2, 3
	t.Logf("%s-%d: leader %d, controller %d, follower %d", topic, part, leader, ctl, follower)
	node := func(id int32) string { return c.Node(int(id) - 1) }
	produceTo := func(prefix string, n int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
		}
		return cl.ProduceSync(ctx, recs...).FirstErr()
	}
	isr := func(p kadm.PartitionDetail) string { return fmt.Sprint(p.ISR) }
	without := func(p kadm.PartitionDetail) bool { return !slices.Contains(p.ISR, follower) && len(p.ISR) == 2 }
	with := func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 }

	// 1. Cut off from its leader, the follower lags and leaves the ISR,
	// while its broker stays in service.
	c.Network.Block(node(leader), node(follower))
	c.Network.Block(node(follower), node(leader))
	if err := produceTo("a", 100); err != nil {
		t.Fatalf("produce with one follower cut off: %v", err)
	}
	md := awaitPartition(t, adm, topic, part, without)
	if !slices.Contains(md.Brokers.NodeIDs(), follower) {
		t.Fatalf("follower %d was fenced (brokers %v); the test wanted it lagging, not dead", follower, md.Brokers.NodeIDs())
	}
	if p := md.Topics[topic].Partitions[part]; len(p.OfflineReplicas) != 0 {
		t.Fatalf("ISR %s, offline %v: a lagging replica is not offline", isr(p), p.OfflineReplicas)
	}

	// 2. min.insync.replicas=3 now refuses acks=all produce (once the
	// leader has the new config: until then a produce may be acked).
	setConfig(t, adm, topic, "min.insync.replicas", "3")
	strict := clusterClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(1))
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := strict.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: part, Value: []byte("strict")}).FirstErr()
		if errors.Is(err, kerr.NotEnoughReplicas) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("acks=all produce with 2 of 3 in sync and min.insync.replicas=3: %v, want NOT_ENOUGH_REPLICAS", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	setConfig(t, adm, topic, "min.insync.replicas", "2")
	if err := produceTo("b", 100); err != nil {
		t.Fatalf("produce with min.insync.replicas=2: %v", err)
	}

	// 3. Reconnected, it catches up and rejoins.
	c.Network.Heal()
	awaitPartition(t, adm, topic, part, with)

	// 4. Restarted while cut off from the leader, its new incarnation
	// is registered and in service but not in sync.
	c.Stop(int(follower) - 1)
	awaitPartition(t, adm, topic, part, without)
	if err := produceTo("c", 100); err != nil {
		t.Fatalf("produce with a follower down: %v", err)
	}
	c.Network.Block(node(leader), node(follower))
	c.Network.Block(node(follower), node(leader))
	c.Restart(int(follower) - 1)
	awaitMetadata(t, adm, topic, &md, func() bool { return slices.Contains(md.Brokers.NodeIDs(), follower) })
	if p := md.Topics[topic].Partitions[part]; !without(p) {
		t.Fatalf("restarted follower %d, in service but cut off from leader %d, is in the ISR %s", follower, leader, isr(p))
	}
	if err := produceTo("d", 100); err != nil {
		t.Fatalf("produce with a restarted follower cut off: %v", err)
	}
	c.Network.Heal()
	awaitPartition(t, adm, topic, part, with)
}

// awaitISR polls Metadata until every partition of topic has a leader and
// satisfies ok.
func awaitISR(t *testing.T, adm *kadm.Client, topic string, ok func(kadm.PartitionDetail) bool) kadm.Metadata {
	t.Helper()
	var md kadm.Metadata
	awaitMetadata(t, adm, topic, &md, func() bool {
		for _, p := range md.Topics[topic].Partitions {
			if p.Leader < 0 || !ok(p) {
				return false
			}
		}
		return len(md.Topics[topic].Partitions) > 0
	})
	return md
}

// awaitPartition polls Metadata until one partition satisfies ok.
func awaitPartition(t *testing.T, adm *kadm.Client, topic string, part int32, ok func(kadm.PartitionDetail) bool) kadm.Metadata {
	t.Helper()
	var md kadm.Metadata
	awaitMetadata(t, adm, topic, &md, func() bool {
		p, found := md.Topics[topic].Partitions[part]
		return found && p.Leader >= 0 && ok(p)
	})
	return md
}

func awaitMetadata(t *testing.T, adm *kadm.Client, topic string, md *kadm.Metadata, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		*md, err = adm.Metadata(context.Background(), topic)
		if err == nil && md.Topics[topic].Err == nil && done() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata of %s never reached the expected state: %v; partitions %+v", topic, err, md.Topics[topic].Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func setConfig(t *testing.T, adm *kadm.Client, topic, key, value string) {
	t.Helper()
	resp, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: key, Value: &value}}, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("set %s=%s on %s: %v", key, value, topic, err)
	}
}
