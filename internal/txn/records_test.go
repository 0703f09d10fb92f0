package txn

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedMetas are states as the coordinator writes them.
var seedMetas = []meta{
	{pid: 1000, epoch: 0, timeoutMs: 60_000, state: stateEmpty, startMs: -1, updateMs: 1_700_000_000_000},
	{pid: 1000, epoch: 3, timeoutMs: 60_000, state: stateOngoing, parts: []TopicPartition{{"__consumer_offsets", 7}, {"a", 0}, {"a", 2}, {"b", 1}}, startMs: 1_700_000_000_000, updateMs: 1_700_000_000_500},
	{pid: 1000, epoch: 3, timeoutMs: 60_000, state: statePrepareCommit, parts: []TopicPartition{{"a", 0}}, startMs: 1, updateMs: 2},
	{pid: 1000, epoch: 4, timeoutMs: 900_000, state: statePrepareAbort, parts: []TopicPartition{{"a", 0}}, startMs: 1, updateMs: 2},
	{pid: 1000, epoch: 3, timeoutMs: 60_000, state: stateCompleteCommit, startMs: 1, updateMs: 3},
	{pid: 1000, epoch: 32767, timeoutMs: 1, state: stateCompleteAbort, startMs: 1, updateMs: 3},
}

func TestRecordEncoding(t *testing.T) {
	key := txnKey("my-txn")
	// Kafka's TransactionLogKey v0: int16 version, int16-length string.
	if want := append([]byte{0, 0, 0, 6}, "my-txn"...); !bytes.Equal(key, want) {
		t.Fatalf("key %x, want %x", key, want)
	}
	for _, m := range seedMetas {
		b := txnValue(m)
		var v kmsg.TxnMetadataValue
		if err := v.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if v.Version != 0 || v.State != m.state || v.ProducerID != m.pid || v.ProducerEpoch != m.epoch {
			t.Fatalf("encoded %+v from %+v", v, m)
		}
		// Kafka writes a null partition array for Empty only.
		if (v.Topics == nil) != (m.state == stateEmpty) {
			t.Fatalf("%s: topics %#v", m.state, v.Topics)
		}
		got, err := decodeValue(b)
		if err != nil {
			t.Fatal(err)
		}
		want := m
		want.lastPID, want.lastEpoch = -1, -1
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip %+v, want %+v", got, want)
		}
	}
	// A flexible (v1) value, as Kafka 4 writes with transaction.version 2.
	v := kmsg.NewTxnMetadataValue()
	v.Version, v.ProducerID, v.State, v.PreviousProducerID = 1, 9, stateOngoing, 8
	v.Topics = []kmsg.TxnMetadataValueTopic{{Topic: "a", Partitions: []int32{2, 1, 2}}}
	m, err := decodeValue(v.AppendTo(nil))
	if err != nil || m.pid != 9 || !reflect.DeepEqual(m.parts, []TopicPartition{{"a", 1}, {"a", 2}}) {
		t.Fatalf("v1 value: %+v %v", m, err)
	}
	v.Version = 2
	if _, err := decodeValue(v.AppendTo(nil)); err == nil {
		t.Fatal("an unknown value version decoded")
	}
	v.Version, v.State = 0, 8
	if _, err := decodeValue(v.AppendTo(nil)); err == nil {
		t.Fatal("an unknown state decoded")
	}
	k := kmsg.NewTxnMetadataKey()
	k.Version = 1
	if _, known, err := decodeKey(k.AppendTo(nil)); known || err != nil {
		t.Fatalf("unknown key version: known %v, err %v", known, err)
	}
}

// FuzzDecode feeds hostile bytes to the key and value decoders and to Load:
// they must fail cleanly, never panic, and whatever decodes must survive
// re-encoding.
func FuzzDecode(f *testing.F) {
	for _, m := range seedMetas {
		f.Add(txnKey("txn-1"), txnValue(m))
	}
	f.Add(txnKey(""), []byte(nil))
	f.Add([]byte{0, 0, 0xff, 0xff}, []byte{0, 1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if id, known, err := decodeKey(key); err == nil && known {
			if back, _, err := decodeKey(txnKey(id)); err != nil || back != id {
				t.Fatalf("key %q re-decoded as %q, %v", id, back, err)
			}
		}
		if m, err := decodeValue(value); err == nil {
			again, err := decodeValue(txnValue(m))
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("value %+v re-decoded as %+v, %v", m, again, err)
			}
		}
		c := New(Config{Partitions: 1}, nil, nil, nil, nil)
		defer c.Close()
		_ = c.Load(0, key, value)
		c.Resign(0)
	})
}
