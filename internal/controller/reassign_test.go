package controller

import (
	"errors"
	"fmt"
	"testing"
)

func TestReassign(t *testing.T) {
	f := testFSM(t)
	idx := uint64(100)
	apply := func(rec Record) error {
		idx++
		return applyAt(t, f, idx, rec).Err
	}
	must := func(rec Record, want error) {
		t.Helper()
		if err := apply(rec); !errors.Is(err, want) {
			t.Fatalf("%s %+v: %v, want %v", rec.Type(), rec, err, want)
		}
	}
	state := func(want string) Partition {
		t.Helper()
		p := isrOf(t, f, 0)
		if got := fmt.Sprintf("replicas %v adding %v removing %v isr %v", p.Replicas, p.Adding, p.Removing, p.ISR); got != want {
			t.Fatalf("partition: %s\nwant       %s", got, want)
		}
		return p
	}
	complete := func(p Partition, leader int32, want error) {
		t.Helper()
		must(&CompleteReassign{TopicID: idA, Partition: 0, Leader: leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}, want)
	}
	reassign := func(target ...int32) *Reassign { return &Reassign{TopicID: idA, Partition: 0, Target: target} }

	must(&CreateTopic{Name: "a", ID: idA, Partitions: parts([]int32{1, 2}, []int32{2, 1})}, nil)
	must(&PartitionChange{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 1}, nil)
	must(&Reassign{TopicID: idA, Partition: 0, Cancel: true}, ErrNoReassignment)
	must(reassign(3, 3), ErrInvalidReplicaAssignment)
	must(reassign(9), ErrInvalidReplicaAssignment)
	must(reassign(), ErrInvalidReplicationFactor)

	// Move 1,2 to 3,2: 3 is added, 1 removed; the leader stays until the
	// group has changed.
	must(reassign(3, 2), nil)
	p := state("replicas [3 2 1] adding [3] removing [1] isr [2 1]")
	complete(p, 2, ErrFencedLeaderEpoch) // not the leader
	complete(Partition{LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch - 1}, 1, ErrInvalidUpdateVersion)
	complete(p, 1, ErrInvalidRequest) // the leader is being removed: it must hand over first

	// Replaced by 2 before it completed: 3 (added meanwhile) is removed
	// too, and 2 is the preferred leader now.
	must(reassign(2), nil)
	state("replicas [2 3 1] adding [] removing [3 1] isr [2 1]")
	// Replaced by 1,3 and then cancelled: back to the replicas less those
	// being added (KRaft's revert), removing the rest.
	must(reassign(1, 3), nil)
	state("replicas [1 3 2] adding [] removing [2] isr [1 2]")
	must(reassign(1, 2), nil)
	state("replicas [1 2 3] adding [] removing [3] isr [1 2]")
	must(reassign(2, 1), nil)
	must(reassign(1, 2, 3), nil)
	state("replicas [1 2 3] adding [] removing [] isr [1 2]")
	must(&Reassign{TopicID: idA, Partition: 0, Cancel: true}, ErrNoReassignment)
	must(reassign(3), nil)
	state("replicas [3 1 2] adding [] removing [1 2] isr [1 2]")
	must(&Reassign{TopicID: idA, Partition: 0, Cancel: true}, nil)
	p = state("replicas [3 1 2] adding [] removing [] isr [1 2]")
	must(reassign(1, 2), nil)
	p = state("replicas [1 2 3] adding [] removing [3] isr [1 2]")
	complete(p, 1, nil)
	p = state("replicas [1 2] adding [] removing [] isr [1 2]")
	complete(p, 1, ErrNoReassignment)

	// Growing the replication factor, then completing under a new leader.
	must(reassign(2, 1, 3), nil)
	state("replicas [2 1 3] adding [3] removing [] isr [2 1]")
	must(&PartitionChange{TopicID: idA, Partition: 0, Leader: 2, LeaderEpoch: 2}, nil)
	p = isrOf(t, f, 0)
	complete(p, 2, nil)
	state("replicas [2 1 3] adding [] removing [] isr [2 1]")

	// Shrinking: a removed ISR member leaves the ISR; new partitions take
	// partition 0's replication factor.
	must(reassign(2), nil)
	p = state("replicas [2 1 3] adding [] removing [1 3] isr [2 1]")
	complete(p, 2, nil)
	state("replicas [2] adding [] removing [] isr [2]")
	must(&CreatePartitions{TopicID: idA, New: []PartitionAssignment{{Index: 2, Replicas: []int32{1, 2}}}}, ErrInvalidReplicaAssignment)

	// A reassignment in progress survives a snapshot.
	must(reassign(3), nil)
	g := NewFSM()
	restore(t, g, snapshot(t, f))
	if q := isrOf(t, g, 0); fmt.Sprint(q.Replicas, q.Adding, q.Removing) != "[3 2] [3] [2]" {
		t.Errorf("restored partition: replicas %v adding %v removing %v", q.Replicas, q.Adding, q.Removing)
	}
}
