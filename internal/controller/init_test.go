package controller

import (
	"bytes"
	"errors"
	"testing"
)

// TestInitCluster: the first id wins, the same id again is harmless,
// another is refused; the producer id only rises; both survive a snapshot.
func TestInitCluster(t *testing.T) {
	f := testFSM(t)
	if got := f.Image().ClusterID(); got != "" {
		t.Fatalf("cluster id before InitCluster = %q", got)
	}
	if res := applyAt(t, f, 20, &InitCluster{ClusterID: "abc", NextProducerID: 5000}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := applyAt(t, f, 21, &InitCluster{ClusterID: "abc", NextProducerID: 10}); res.Err != nil {
		t.Fatalf("same id again: %v", res.Err)
	}
	if res := applyAt(t, f, 22, &InitCluster{ClusterID: "other"}); !errors.Is(res.Err, ErrInvalidRequest) {
		t.Fatalf("another id: %v, want ErrInvalidRequest", res.Err)
	}
	if res := applyAt(t, f, 23, &InitCluster{ClusterID: ""}); !errors.Is(res.Err, ErrInvalidRequest) {
		t.Fatalf("empty id: %v, want ErrInvalidRequest", res.Err)
	}
	im := f.Image()
	if im.ClusterID() != "abc" || im.NextProducerID() != 5000 {
		t.Fatalf("image has cluster id %q, next producer id %d; want abc, 5000", im.ClusterID(), im.NextProducerID())
	}
	if res := applyAt(t, f, 24, &AllocateProducerIDs{BlockSize: 10}); res.ProducerIDs.Start != 5000 {
		t.Fatalf("first block after InitCluster starts at %d, want 5000", res.ProducerIDs.Start)
	}
	b := encodeImage(t, f.Image())
	back, err := DecodeImage(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.ClusterID() != "abc" || !bytes.Equal(encodeImage(t, back), b) {
		t.Fatalf("snapshot round trip lost the cluster id: %q", back.ClusterID())
	}
}

// TestSingleReplicaLeadsAtCreation: a one-replica partition needs no
// election, so it is created led by its replica in epoch 1; replicated
// ones start leaderless.
func TestSingleReplicaLeadsAtCreation(t *testing.T) {
	f := testFSM(t)
	rec := &CreateTopic{Name: "one", ID: idA, Partitions: []PartitionAssignment{{Index: 0, Replicas: []int32{2}}}}
	if res := applyAt(t, f, 20, rec); res.Err != nil {
		t.Fatal(res.Err)
	}
	rec = &CreateTopic{Name: "three", ID: idB, Partitions: []PartitionAssignment{{Index: 0, Replicas: []int32{1, 2, 3}}}}
	if res := applyAt(t, f, 21, rec); res.Err != nil {
		t.Fatal(res.Err)
	}
	one, _ := f.Image().Topic("one")
	if p := one.Partitions[0]; p.Leader != 2 || p.LeaderEpoch != 1 {
		t.Fatalf("single replica partition: leader %d epoch %d, want 2 and 1", p.Leader, p.LeaderEpoch)
	}
	three, _ := f.Image().Topic("three")
	if p := three.Partitions[0]; p.Leader != NoLeader || p.LeaderEpoch != 0 {
		t.Fatalf("replicated partition: leader %d epoch %d, want none and 0", p.Leader, p.LeaderEpoch)
	}
}
