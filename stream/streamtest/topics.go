package streamtest

import (
	"time"

	"github.com/weir-io/weir/serde"
)

// InputTopic pipes typed records into a topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	key   serde.Serde[K]
	value serde.Serde[V]
}

// Input returns a typed writer for topic.
func Input[K, V any](d *Driver, topic string, key serde.Serde[K], value serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// Pipe writes one record with event time ts and processes it fully.
func (in *InputTopic[K, V]) Pipe(k K, v V, ts time.Time) {
	in.d.t.Helper()
	kb, err := in.key.Serialize(k)
	if err != nil {
		in.d.t.Fatalf("streamtest: serialize key: %v", err)
	}
	vb, err := in.value.Serialize(v)
	if err != nil {
		in.d.t.Fatalf("streamtest: serialize value: %v", err)
	}
	in.PipeRaw(kb, vb, ts)
}

// PipeValue writes a record without a key.
func (in *InputTopic[K, V]) PipeValue(v V, ts time.Time) {
	in.d.t.Helper()
	vb, err := in.value.Serialize(v)
	if err != nil {
		in.d.t.Fatalf("streamtest: serialize value: %v", err)
	}
	in.PipeRaw(nil, vb, ts)
}

// PipeRaw writes bytes as they would arrive from Kafka (for testing
// undecodable input).
func (in *InputTopic[K, V]) PipeRaw(key, value []byte, ts time.Time) {
	in.d.t.Helper()
	rec := Record{Partition: in.d.partitionFor(in.topic, key), Key: key, Value: value, Timestamp: ts.UnixMilli()}
	in.d.topics[in.topic] = append(in.d.topics[in.topic], rec)
	in.d.pipe(in.topic, rec)
}

// OutputTopic reads typed records from a topic.
type OutputTopic[K, V any] struct {
	d     *Driver
	topic string
	key   serde.Serde[K]
	value serde.Serde[V]
	read  int
}

// Output returns a typed reader for topic.
func Output[K, V any](d *Driver, topic string, key serde.Serde[K], value serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// KeyValue is one decoded output record. Deleted is true for a tombstone.
type KeyValue[K, V any] struct {
	Key       K
	Value     V
	Deleted   bool
	Timestamp time.Time
}

// ReadAll returns the records not read before, in order.
func (out *OutputTopic[K, V]) ReadAll() []KeyValue[K, V] {
	out.d.t.Helper()
	recs := out.d.topics[out.topic][out.read:]
	out.read += len(recs)
	kvs := make([]KeyValue[K, V], 0, len(recs))
	for _, r := range recs {
		kvs = append(kvs, out.decode(r))
	}
	return kvs
}

func (out *OutputTopic[K, V]) decode(r Record) KeyValue[K, V] {
	out.d.t.Helper()
	kv := KeyValue[K, V]{Timestamp: time.UnixMilli(r.Timestamp), Deleted: r.Value == nil}
	var err error
	if r.Key != nil {
		if kv.Key, err = out.key.Deserialize(r.Key); err != nil {
			out.d.t.Fatalf("streamtest: decode key of %s: %v", out.topic, err)
		}
	}
	if r.Value != nil {
		if kv.Value, err = out.value.Deserialize(r.Value); err != nil {
			out.d.t.Fatalf("streamtest: decode value of %s: %v", out.topic, err)
		}
	}
	return kv
}

// ToMap reads everything not read before and keeps the latest value per
// key (a tombstone removes the key): the table the topic describes.
func ToMap[K comparable, V any](out *OutputTopic[K, V]) map[K]V {
	m := make(map[K]V)
	for _, kv := range out.ReadAll() {
		if kv.Deleted {
			delete(m, kv.Key)
		} else {
			m[kv.Key] = kv.Value
		}
	}
	return m
}
