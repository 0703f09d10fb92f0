package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/controller"
)

// imageOf applies recs to a fresh controller FSM and returns its image.
func imageOf(t *testing.T, recs ...controller.Record) *controller.Image {
	t.Helper()
	f := controller.NewFSM()
	for i, rec := range recs {
		data, err := controller.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Data: data}).(controller.Result); res.Err != nil {
			t.Fatalf("record %d %s: %v", i, rec.Type(), res.Err)
		}
	}
	return f.Image()
}

func TestImbalancedLeaders(t *testing.T) {
	var recs []controller.Record
	for id := int32(1); id <= 3; id++ {
		recs = append(recs, &controller.RegisterBroker{NodeID: id, Incarnation: [16]byte{byte(id)},
			Listener: fmt.Sprintf("127.0.0.1:%d", 9090+id), RaftAddr: fmt.Sprintf("127.0.0.1:%d", 9190+id)})
	}
	for id := int32(1); id <= 3; id++ {
		recs = append(recs, &controller.UnfenceBroker{NodeID: id, Epoch: int64(id)})
	}
	// Broker 1 prefers the 10 partitions of t, broker 2 the one of u,
	// broker 3 the one of v; w has one replica (nothing to balance).
	ten := make([]controller.PartitionAssignment, 10)
	for i := range ten {
		ten[i] = controller.PartitionAssignment{Index: int32(i), Replicas: []int32{1, 2, 3}}
	}
	idT, idU, idV, idW := [16]byte{1}, [16]byte{2}, [16]byte{3}, [16]byte{4}
	recs = append(recs,
		&controller.CreateTopic{Name: "t", ID: idT, Partitions: ten},
		&controller.CreateTopic{Name: "u", ID: idU, Partitions: []controller.PartitionAssignment{{Replicas: []int32{2, 3, 1}}}},
		&controller.CreateTopic{Name: "v", ID: idV, Partitions: []controller.PartitionAssignment{{Replicas: []int32{3, 1, 2}}}},
		&controller.CreateTopic{Name: "w", ID: idW, Partitions: []controller.PartitionAssignment{{Replicas: []int32{3}}}},
	)
	lead := func(id [16]byte, p, leader int32) controller.Record {
		return &controller.PartitionChange{TopicID: id, Partition: p, Leader: leader, LeaderEpoch: 1}
	}
	for p := range int32(10) {
		recs = append(recs, lead(idT, p, 1))
	}
	recs = append(recs, lead(idU, 0, 2), lead(idV, 0, 1), lead(idW, 0, 3))
	ref := func(id [16]byte, p int32) controller.PartitionRef {
		return controller.PartitionRef{TopicID: id, Partition: p}
	}
	sorted := func(refs []controller.PartitionRef) []controller.PartitionRef {
		return slices.SortedFunc(slices.Values(refs), func(a, b controller.PartitionRef) int {
			return slices.Compare(append(a.TopicID[:], byte(a.Partition)), append(b.TopicID[:], byte(b.Partition)))
		})
	}

	// v was created asking for broker 3, so the check leaves it to its
	// leader; broker 1 is at the 10 % line after moving one partition.
	step := append(slices.Clone(recs), &controller.PartitionChange{TopicID: idT, Partition: 4, Leader: 2, LeaderEpoch: 2})
	if got := imbalanced(imageOf(t, step...), 10); len(got) != 0 {
		t.Errorf("1 of 10 partitions moved, v already asked for: imbalanced = %v, want none", got)
	}
	// Two moved: over the line, both go back. Broker 3 is fenced: v's
	// preferred leader is out of service, so v is not counted.
	step = append(step, &controller.PartitionChange{TopicID: idT, Partition: 7, Leader: 3, LeaderEpoch: 2},
		&controller.FenceBroker{NodeID: 3, Epoch: 3})
	if got, want := sorted(imbalanced(imageOf(t, step...), 10)), []controller.PartitionRef{ref(idT, 4), ref(idT, 7)}; !slices.Equal(got, want) {
		t.Errorf("2 of 10 moved, broker 3 fenced: imbalanced = %v, want %v", got, want)
	}
	if got := imbalanced(imageOf(t, step...), 20); len(got) != 0 {
		t.Errorf("at 20 %%: imbalanced = %v, want none", got)
	}
}
