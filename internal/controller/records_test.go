package controller

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func allRecords() []Record {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return []Record{
		&RegisterBroker{NodeID: 3, Incarnation: [16]byte{9, 9}, Listener: "10.0.0.3:9092", RaftAddr: "10.0.0.3:9093", Epoch: 17},
		&FenceBroker{NodeID: 3, Epoch: 17},
		&UnfenceBroker{NodeID: 3, Epoch: 17},
		&CreateTopic{Name: "orders", ID: id, Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"},
			Partitions: []PartitionAssignment{{Index: 0, Replicas: []int32{1, 2, 3}}, {Index: 1, Replicas: []int32{2, 3, 1}}}},
		&CreateTopic{Name: "bare", ID: id, Partitions: []PartitionAssignment{{Index: 0, Replicas: []int32{1}}}},
		&DeleteTopic{ID: id},
		&CreatePartitions{TopicID: id, New: []PartitionAssignment{{Index: 2, Replicas: []int32{3, 1, 2}}}},
		&AlterConfigs{TopicID: id, Configs: map[string]string{"retention.ms": "5"}},
		&AlterConfigs{TopicID: id},
		&PartitionChange{TopicID: id, Partition: 1, Leader: 2, LeaderEpoch: 7},
		&PartitionChange{TopicID: id, Partition: 0, Leader: NoLeader, LeaderEpoch: 8},
		&AllocateProducerIDs{BlockSize: 1000},
		&AlterPartition{TopicID: id, Partition: 1, Leader: 2, LeaderEpoch: 7, PartitionEpoch: 3,
			ISR: []ISRMember{{NodeID: 2, BrokerEpoch: 40}, {NodeID: 3, BrokerEpoch: 17}}},
		&ElectPreferred{Partitions: []PartitionRef{{TopicID: id, Partition: 0}, {TopicID: id, Partition: 2}}},
		&Reassign{TopicID: id, Partition: 1, Target: []int32{3, 1}},
		&Reassign{TopicID: id, Partition: 1, Cancel: true},
		&CompleteReassign{TopicID: id, Partition: 1, Leader: 3, LeaderEpoch: 9, PartitionEpoch: 4},
		&InitCluster{ClusterID: "abc", NextProducerID: 1000},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	seen := map[RecordType]bool{}
	for _, r := range allRecords() {
		b, err := Encode(r)
		if err != nil {
			t.Fatalf("encode %T: %v", r, err)
		}
		if RecordType(b[0]) != r.Type() || b[1] != recordVersion {
			t.Fatalf("%T: header % x", r, b[:2])
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %T: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip %T:\n got %+v\nwant %+v", r, got, r)
		}
		b2, _ := Encode(got)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%T: encoding is not stable", r)
		}
		seen[r.Type()] = true
	}
	for ty := TypeRegisterBroker; ty <= TypeAllocateProducerIDs; ty++ {
		if !seen[ty] {
			t.Errorf("no round trip for %s", ty)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(&FenceBroker{NodeID: 1, Epoch: 2})
	for name, b := range map[string][]byte{
		"empty":        nil,
		"one byte":     {byte(TypeFenceBroker)},
		"unknown type": append([]byte{99}, good[1:]...),
		"version 0":    append([]byte{good[0], 0}, good[2:]...),
		"version 2":    append([]byte{good[0], 2}, good[2:]...),
		"truncated":    good[:len(good)-1],
		"trailing":     append(bytes.Clone(good), 0xc0),
		"wrong body":   {byte(TypeFenceBroker), 1, 0xa1, 'x'},
	} {
		if _, err := Decode(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := Encode(nil); err == nil {
		t.Error("encode nil succeeded")
	}
}

func FuzzDecode(f *testing.F) {
	for _, r := range allRecords() {
		b, _ := Encode(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and apply without panicking.
		if _, err := Encode(r); err != nil {
			t.Fatalf("re-encode %T: %v", r, err)
		}
		fsm := testFSM(t)
		fsm.Apply(logAt(100, b))
	})
}
