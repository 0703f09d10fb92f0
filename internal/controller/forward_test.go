package controller

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzForwardFrame feeds arbitrary bytes to the decoder of forwarded
// calls, which reads what another node (or anything reaching the Raft
// port) sends: it must fail cleanly, never panic, and refuse oversized
// frames before allocating them.
func FuzzForwardFrame(f *testing.F) {
	for _, c := range []call{
		{Op: "create_topic", Name: "orders", Partitions: 3, RF: 3, Configs: map[string]string{"retention.ms": "1"}},
		{Op: "create_topic_assigned", Name: "m", Assign: [][]int32{{1, 2}, {2, 3}}},
		{Op: "alter_partition", Alter: &AlterPartition{Partition: 1, Leader: 2, LeaderEpoch: 3, ISR: []ISRMember{{NodeID: 2, BrokerEpoch: 9}}}},
		{Op: "read_index"},
		{Op: "elect_preferred", Refs: []PartitionRef{{Partition: 2}}},
		{Op: "reassign", Reassign: &Reassign{Partition: 1, Target: []int32{2, 3}}},
		{Op: "complete_reassign", Complete: &CompleteReassign{Partition: 1, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 7}},
	} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, c); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	huge := binary.BigEndian.AppendUint32(nil, maxFrame+1)
	f.Add(huge)
	f.Fuzz(func(t *testing.T, b []byte) {
		var in call
		err := readFrame(bytes.NewReader(b), &in)
		if len(b) >= 4 && binary.BigEndian.Uint32(b) > maxFrame && err == nil {
			t.Fatalf("a %d-byte frame was accepted", binary.BigEndian.Uint32(b))
		}
		var out reply
		readFrame(bytes.NewReader(b), &out)
	})
}
