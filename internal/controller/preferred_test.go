package controller

import (
	"errors"
	"testing"
)

func TestElectPreferred(t *testing.T) {
	f := testFSM(t)
	idx := uint64(100)
	apply := func(rec Record) error {
		idx++
		return applyAt(t, f, idx, rec).Err
	}
	must := func(rec Record) {
		t.Helper()
		if err := apply(rec); err != nil {
			t.Fatalf("%s: %v", rec.Type(), err)
		}
	}
	flagged := func(p int32) bool { return isrOf(t, f, p).ElectPreferred }
	lead := func(p, leader, epoch int32) {
		t.Helper()
		must(&PartitionChange{TopicID: idA, Partition: p, Leader: leader, LeaderEpoch: epoch})
	}
	elect := func(ps ...int32) {
		t.Helper()
		refs := make([]PartitionRef, len(ps))
		for i, p := range ps {
			refs[i] = PartitionRef{TopicID: idA, Partition: p}
		}
		must(&ElectPreferred{Partitions: refs})
	}

	must(&CreateTopic{Name: "a", ID: idA, Partitions: parts([]int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2})})
	for p := range int32(3) {
		if !flagged(p) {
			t.Fatalf("new partition %d does not ask for its preferred leader", p)
		}
	}
	lead(0, 1, 1) // the preferred replica won the first election
	lead(1, 3, 1) // another did: the request stands
	if flagged(0) || !flagged(1) {
		t.Fatalf("flags after first elections: p0 %v (want false), p1 %v (want true)", flagged(0), flagged(1))
	}
	lead(1, 2, 2)
	if flagged(1) {
		t.Fatal("the preferred replica leads partition 1 but it still asks for it")
	}

	// Leadership moves away; an election is recorded only where the
	// preferred replica is in sync on a broker in service.
	lead(0, 2, 2)
	lead(1, 3, 3)
	lead(2, 1, 1)
	must(&FenceBroker{NodeID: 3, Epoch: 3}) // preferred of partition 2
	epoch := isrOf(t, f, 0).PartitionEpoch
	elect(0, 1, 2)
	if !flagged(0) || !flagged(1) || flagged(2) {
		t.Fatalf("after election: flags %v %v %v, want true true false", flagged(0), flagged(1), flagged(2))
	}
	if got := isrOf(t, f, 0).PartitionEpoch; got != epoch+1 {
		t.Errorf("partition epoch %d after an election request, want %d", got, epoch+1)
	}
	// Fencing the preferred replica withdraws the request.
	must(&FenceBroker{NodeID: 2, Epoch: 2})
	if flagged(1) {
		t.Error("partition 1 still asks for fenced broker 2")
	}
	if !flagged(0) {
		t.Error("fencing broker 2 withdrew partition 0's request for broker 1")
	}
	if err := apply(&ElectPreferred{Partitions: []PartitionRef{{TopicID: idA, Partition: 0}, {TopicID: idA, Partition: 9}}}); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("election naming a missing partition: %v, want ErrUnknownTopic", err)
	}

	// The request survives a snapshot.
	g := NewFSM()
	restore(t, g, snapshot(t, f))
	if !isrOf(t, g, 0).ElectPreferred || isrOf(t, g, 1).ElectPreferred {
		t.Error("snapshot lost the election requests")
	}
}
