package controller

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// isrOf returns partition p of topic idA in f's image.
func isrOf(t *testing.T, f *FSM, p int32) Partition {
	t.Helper()
	tp, ok := f.Image().TopicByID(idA)
	if !ok {
		t.Fatal("topic a missing")
	}
	return tp.Partitions[p]
}

func TestISRLifecycle(t *testing.T) {
	f := testFSM(t)
	idx := uint64(100)
	next := func() uint64 { idx++; return idx }
	mustApply := func(rec Record, want error) {
		t.Helper()
		if res := applyAt(t, f, next(), rec); !errors.Is(res.Err, want) {
			t.Fatalf("%s %+v: err %v, want %v", rec.Type(), rec, res.Err, want)
		}
	}
	mustISR := func(want ...int32) Partition {
		t.Helper()
		p := isrOf(t, f, 0)
		if !slices.Equal(p.ISR, want) {
			t.Fatalf("ISR = %v, want %v", p.ISR, want)
		}
		return p
	}
	mustApply(&CreateTopic{Name: "a", ID: idA, Partitions: parts([]int32{1, 2, 3})}, nil)
	mustISR(1, 2, 3) // every replica is in sync at creation
	mustApply(&PartitionChange{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 1}, nil)
	p := mustISR(1, 2, 3)

	alter := func(pe int32, members ...ISRMember) *AlterPartition {
		return &AlterPartition{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 1, PartitionEpoch: pe, ISR: members}
	}
	m := func(id int32) ISRMember { return ISRMember{NodeID: id, BrokerEpoch: int64(id)} }
	mustApply(alter(p.PartitionEpoch, m(3), m(1)), nil)
	p = mustISR(1, 3) // kept in replica order
	mustApply(alter(p.PartitionEpoch-1, m(1)), ErrInvalidUpdateVersion)
	mustApply(alter(p.PartitionEpoch, m(2)), ErrInvalidRequest) // leader missing
	mustApply(alter(p.PartitionEpoch, m(1), m(1)), ErrInvalidRequest)
	mustApply(alter(p.PartitionEpoch, m(1), ISRMember{NodeID: 2, BrokerEpoch: 1}), ErrIneligibleReplica)
	mustApply(&AlterPartition{TopicID: idA, Partition: 0, Leader: 2, LeaderEpoch: 1, PartitionEpoch: p.PartitionEpoch,
		ISR: []ISRMember{m(2)}}, ErrFencedLeaderEpoch)
	mustApply(&AlterPartition{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 0, PartitionEpoch: p.PartitionEpoch,
		ISR: []ISRMember{m(1)}}, ErrFencedLeaderEpoch)
	mustApply(&AlterPartition{TopicID: idA, Partition: 7, Leader: 1, LeaderEpoch: 1, ISR: []ISRMember{m(1)}}, ErrUnknownTopic)
	mustISR(1, 3)

	// Fencing takes a broker out; it cannot be put back while fenced.
	mustApply(alter(p.PartitionEpoch, m(1), m(2), m(3)), nil)
	mustApply(&FenceBroker{NodeID: 3, Epoch: 3}, nil)
	p = mustISR(1, 2)
	mustApply(alter(p.PartitionEpoch, m(1), m(2), m(3)), ErrIneligibleReplica)
	mustApply(&UnfenceBroker{NodeID: 3, Epoch: 3}, nil)
	p = mustISR(1, 2) // unfencing does not put it back: its leader does
	mustApply(alter(p.PartitionEpoch, m(1), m(2), m(3)), nil)
	p = mustISR(1, 2, 3)

	// A restarted broker (new epoch) leaves every ISR, and a decision
	// naming its old incarnation is refused.
	regIdx := next()
	if res := applyAt(t, f, regIdx, &RegisterBroker{NodeID: 2, Incarnation: [16]byte{0x22}, Listener: "127.0.0.1:9092", RaftAddr: "127.0.0.1:9192"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	p = mustISR(1, 3)
	mustApply(&UnfenceBroker{NodeID: 2, Epoch: int64(regIdx)}, nil)
	mustApply(alter(p.PartitionEpoch, m(1), m(2), m(3)), ErrIneligibleReplica)
	mustApply(alter(p.PartitionEpoch, m(1), ISRMember{NodeID: 2, BrokerEpoch: int64(regIdx)}), nil)
	p = mustISR(1, 2)

	// The last member is never removed, and a new leader joins the ISR.
	mustApply(alter(p.PartitionEpoch, m(1)), nil)
	mustApply(&FenceBroker{NodeID: 1, Epoch: 1}, nil)
	mustISR(1)
	mustApply(&PartitionChange{TopicID: idA, Partition: 0, Leader: 3, LeaderEpoch: 2}, nil)
	mustISR(1, 3)
}

func TestISRSurvivesSnapshot(t *testing.T) {
	f := testFSM(t)
	applyAt(t, f, 20, &CreateTopic{Name: "a", ID: idA, Partitions: parts([]int32{1, 2, 3}, []int32{2, 3, 1})})
	applyAt(t, f, 21, &FenceBroker{NodeID: 2, Epoch: 2})
	g := NewFSM()
	restore(t, g, snapshot(t, f))
	for i, want := range [][]int32{{1, 3}, {3, 1}} {
		if got := isrOf(t, g, int32(i)).ISR; !slices.Equal(got, want) {
			t.Errorf("restored ISR of partition %d = %v, want %v", i, got, want)
		}
	}
}

func TestRestoreChecksISR(t *testing.T) {
	for _, isr := range [][]int32{{4}, {1, 1}, {2, 1}} {
		f := testFSM(t)
		s := &snapshotV1{Index: 30, Brokers: f.Image().Brokers(), Topics: []Topic{{Name: "a", ID: idA,
			Partitions: []Partition{{Index: 0, Replicas: []int32{1, 2}, Leader: NoLeader, ISR: isr}}}}}
		if err := f.Restore(io.NopCloser(bytes.NewReader(rawSnapshot(t, s)))); err == nil {
			t.Errorf("snapshot with ISR %v of replicas [1 2] restored", isr)
		}
	}
	// Images from before ISRs were kept: all replicas are in sync.
	f := testFSM(t)
	s := &snapshotV1{Index: 30, Brokers: f.Image().Brokers(), Topics: []Topic{{Name: "a", ID: idA,
		Partitions: []Partition{{Index: 0, Replicas: []int32{2, 1}, Leader: NoLeader}}}}}
	restore(t, f, rawSnapshot(t, s))
	if got := isrOf(t, f, 0).ISR; !slices.Equal(got, []int32{2, 1}) {
		t.Errorf("ISR of an image without one = %v, want the replicas [2 1]", got)
	}
}

// rawSnapshot encodes s as it is, valid or not.
func rawSnapshot(t *testing.T, s *snapshotV1) []byte {
	t.Helper()
	b, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
