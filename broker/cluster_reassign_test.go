package broker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/broker/brokertest"
)

// reassign asks for partition p of topic to move to replicas (nil
// cancels) and returns the partition's error.
func reassign(t *testing.T, adm *kadm.Client, topic string, p int32, replicas []int32) error {
	t.Helper()
	var req kadm.AlterPartitionAssignmentsReq
	if replicas == nil {
		req.CancelAssign(topic, p)
	} else {
		req.Assign(topic, p, replicas)
	}
	resp, err := adm.AlterPartitionAssignments(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp[topic][p]
	if r.Err != nil {
		return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
	}
	return nil
}

// awaitReassigned waits until partition p of topic is no longer listed
// as reassigning and Metadata shows replicas with all of them in sync.
func awaitReassigned(t *testing.T, adm *kadm.Client, topic string, p int32, replicas []int32) kadm.Metadata {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ls, err := adm.ListPartitionReassignments(context.Background(), kadm.TopicsSet{topic: {p: {}}})
		if err == nil && len(ls[topic]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s-%d still reassigning: %v %+v", topic, p, err, ls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return awaitPartition(t, adm, topic, p, func(d kadm.PartitionDetail) bool {
		return slices.Equal(d.Replicas, replicas) && len(d.ISR) == len(replicas) && slices.Contains(replicas, d.Leader)
	})
}

// TestClusterReassignsPartition moves a partition off the broker holding
// its only replica, then grows it to three replicas, checking that every
// record stays readable and the abandoned replica's files go.
func TestClusterReassignsPartition(t *testing.T) {
	c := brokertest.StartCluster(t, 3, fastRaft)
	cl := clusterClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "move", -1, -1
	ct.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	create.Topics = append(create.Topics, ct)
	if resp, err := create.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create move on broker 1: %v %+v", err, resp)
	}
	awaitLeaders(t, cl, "move")
	produceN(t, cl, "move", "a", 200)
	dirs, _ := filepath.Glob(filepath.Join(c.DataDir(0), "*move-0"))
	if len(dirs) == 0 {
		t.Fatal("broker 1 has no directory of move-0")
	}

	// Off broker 1 and onto 2 and 3.
	if err := reassign(t, adm, "move", 0, []int32{2, 3}); err != nil {
		t.Fatal(err)
	}
	awaitReassigned(t, adm, "move", 0, []int32{2, 3})
	awaitFilesGone(t, c.DataDir(0), "move-0")
	// Each broker describes the replicas it holds (kafka-log-dirs.sh).
	described, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"move": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for node := int32(1); node <= 3; node++ {
		p, held := described[node].LookupPartition("move", 0)
		if held != (node != 1) || held && p.Size == 0 {
			t.Errorf("broker %d describes move-0 as %+v (held %v); want it on 2 and 3 only, not empty", node, p, held)
		}
	}
	produceN(t, cl, "move", "b", 100)
	if seen := consumeDistinct(t, c.Seeds(), "move", 300); len(seen) != 300 {
		t.Fatalf("read %d distinct records after the move, want 300", len(seen))
	}

	// Grow to three replicas; broker 1 comes back empty and catches up.
	if err := reassign(t, adm, "move", 0, []int32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	awaitReassigned(t, adm, "move", 0, []int32{1, 2, 3})
	// With 1 and one other up, the partition still commits and reads.
	md, _ := adm.Metadata(ctx, "move")
	down := int32(2)
	if md.Topics["move"].Partitions[0].Leader == 2 {
		down = 3
	}
	c.Stop(int(down) - 1)
	produceN(t, cl, "move", "c", 100)
	if seen := consumeDistinct(t, c.Seeds(), "move", 400); len(seen) != 400 {
		t.Fatalf("read %d distinct records with broker %d down, want 400", len(seen), down)
	}
	c.Restart(int(down) - 1)

	// What cannot be done is refused.
	for _, tc := range []struct {
		replicas []int32
		want     error
	}{
		{nil, kerr.NoReassignmentInProgress},
		{[]int32{1, 9}, kerr.InvalidReplicaAssignment},
		{[]int32{1, 1}, kerr.InvalidReplicaAssignment},
	} {
		if err := reassign(t, adm, "move", 0, tc.replicas); !errors.Is(err, tc.want) {
			t.Errorf("reassign move-0 to %v: %v, want %v", tc.replicas, err, tc.want)
		}
	}
	if err := reassign(t, adm, "move", 5, []int32{1}); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("reassign a missing partition: %v", err)
	}
	fixed := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	fixed.AllowReplicationFactorChange = false
	ft := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	ft.Topic = "move"
	ft.Partitions = []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1}}}
	fixed.Topics = append(fixed.Topics, ft)
	if resp, err := fixed.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Errorf("shrinking with AllowReplicationFactorChange=false: %v %+v", err, resp)
	}
}

// awaitFilesGone waits until no file or directory of partition (topic-p)
// is left under dir.
func awaitFilesGone(t *testing.T, dir, partition string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left []string
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == partition {
				left = append(left, path)
			}
			return nil
		})
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica files left after reassigning away: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
