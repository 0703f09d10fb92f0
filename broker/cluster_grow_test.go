package broker_test

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-io/weir/broker/brokertest"
)

// TestClusterGrows adds a broker-only node (not a controller voter) to a
// running three-node cluster: it gets the metadata, takes replicas by
// reassignment and by placement, serves as leader, and is fenced and
// taken back like any broker.
func TestClusterGrows(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c)
	adm := kadm.NewClient(cl)
	createClusterTopic(t, cl, "before", 3, 3)
	produceN(t, cl, "before", "a", 100)

	i := c.AddBroker(fastRaft)
	awaitBrokers(t, adm, 4)
	if err := reassign(t, adm, "before", 0, []int32{4, 1, 2}); err != nil {
		t.Fatal(err)
	}
	awaitReassigned(t, adm, "before", 0, []int32{4, 1, 2})
	// The new broker leads the partition it now prefers.
	if res, err := adm.ElectLeaders(context.Background(), kadm.ElectPreferredReplica, kadm.TopicsSet{"before": {0: {}}}); err != nil || res["before"][0].Err != nil {
		t.Fatalf("preferred election of before-0 onto broker 4: %v %+v", err, res)
	}
	awaitPartition(t, adm, "before", 0, func(p kadm.PartitionDetail) bool { return p.Leader == 4 })
	produceN(t, cl, "before", "b", 100)

	createClusterTopic(t, cl, "after", 4, 3)
	md := awaitLeaders(t, cl, "after")
	placed := 0
	for _, p := range md.Topics["after"].Partitions {
		if slices.Contains(p.Replicas, 4) {
			placed++
		}
	}
	if placed == 0 {
		t.Errorf("placement put none of the 4 new partitions on broker 4: %+v", md.Topics["after"].Partitions)
	}

	// Out of service and back, like any broker.
	c.Stop(i)
	awaitBrokers(t, adm, 3)
	produceN(t, cl, "before", "c", 100)
	if seen := consumeDistinct(t, c.Seeds(), "before", 300); len(seen) != 300 {
		t.Fatalf("read %d distinct records with broker 4 down, want 300", len(seen))
	}
	c.Restart(i)
	awaitBrokers(t, adm, 4)
	awaitISR(t, adm, "before", func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 })
}

// awaitBrokers waits until Metadata lists n brokers in service.
func awaitBrokers(t *testing.T, adm *kadm.Client, n int) {
	t.Helper()
	var md kadm.Metadata
	awaitMetadata(t, adm, "before", &md, func() bool { return len(md.Brokers) == n })
}
