package stream

import (
	"fmt"
	"time"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/serde"
)

// KStream is a stream of key/value records: every record is an event.
type KStream[K, V any] struct {
	b    *Builder
	node *topology.Node
	// rekeyed is true when the key may have changed since the records
	// were last partitioned: grouping or joining then repartitions first.
	rekeyed bool
}

// KeyValue is one record produced by FlatMap.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// From reads a topic as a stream.
func From[K, V any](b *Builder, topic string, key serde.Serde[K], value serde.Serde[V], opts ...Option) *KStream[K, V] {
	o := collect(opts)
	n := b.t.Add(&topology.Node{
		Name: b.t.Name(o.name, "KSTREAM-SOURCE"), Kind: topology.KindSource,
		Topics: []string{topic}, KeyCodec: codec(key), ValCodec: codec(value), Timestamp: o.timestamp,
	})
	return &KStream[K, V]{b: b, node: n}
}

// WithTimestamp sets a source's event-time extractor; by default a record's
// event time is its Kafka timestamp.
func WithTimestamp[K, V any](f func(K, V, time.Time) (time.Time, error)) Option {
	return func(o *options) {
		o.timestamp = func(k, v any, ts time.Time) (time.Time, error) { return f(as[K](k), as[V](v), ts) }
	}
}

// then adds a stateless processor child running f.
func then[K2, V2, K, V any](s *KStream[K, V], prefix string, opts []Option, rekeys bool, f func(ctx topology.Context, rec topology.Record) error) *KStream[K2, V2] {
	o := collect(opts)
	n := s.b.t.Add(&topology.Node{
		Name: s.b.t.Name(o.name, prefix), Kind: topology.KindProcessor, New: topology.ProcessorFunc(f),
	}, s.node)
	return &KStream[K2, V2]{b: s.b, node: n, rekeyed: s.rekeyed || rekeys}
}

// Filter keeps the records for which keep returns true.
func (s *KStream[K, V]) Filter(keep func(K, V) (bool, error), opts ...Option) *KStream[K, V] {
	return then[K, V](s, "KSTREAM-FILTER", opts, false, func(ctx topology.Context, rec topology.Record) error {
		ok, err := keep(as[K](rec.Key), as[V](rec.Value))
		if err != nil || !ok {
			return err
		}
		return ctx.Forward(rec)
	})
}

// FilterNot drops the records for which drop returns true.
func (s *KStream[K, V]) FilterNot(drop func(K, V) (bool, error), opts ...Option) *KStream[K, V] {
	return s.Filter(func(k K, v V) (bool, error) {
		d, err := drop(k, v)
		return !d, err
	}, opts...)
}

// Map replaces each record's key and value. The key may change, so a later
// grouping or join repartitions.
func (s *KStream[K, V]) Map[K2, V2 any](f func(K, V) (K2, V2, error), opts ...Option) *KStream[K2, V2] {
	return then[K2, V2](s, "KSTREAM-MAP", opts, true, func(ctx topology.Context, rec topology.Record) error {
		k, v, err := f(as[K](rec.Key), as[V](rec.Value))
		if err != nil {
			return err
		}
		rec.Key, rec.Value = k, v
		return ctx.Forward(rec)
	})
}

// MapValues replaces each record's value, keeping its key (and so its
// partitioning).
func (s *KStream[K, V]) MapValues[V2 any](f func(K, V) (V2, error), opts ...Option) *KStream[K, V2] {
	return then[K, V2](s, "KSTREAM-MAPVALUES", opts, false, func(ctx topology.Context, rec topology.Record) error {
		v, err := f(as[K](rec.Key), as[V](rec.Value))
		if err != nil {
			return err
		}
		rec.Value = v
		return ctx.Forward(rec)
	})
}

// SelectKey replaces each record's key.
func (s *KStream[K, V]) SelectKey[K2 any](f func(K, V) (K2, error), opts ...Option) *KStream[K2, V] {
	return then[K2, V](s, "KSTREAM-KEY-SELECT", opts, true, func(ctx topology.Context, rec topology.Record) error {
		k, err := f(as[K](rec.Key), as[V](rec.Value))
		if err != nil {
			return err
		}
		rec.Key = k
		return ctx.Forward(rec)
	})
}

// FlatMap turns each record into zero or more records.
func (s *KStream[K, V]) FlatMap[K2, V2 any](f func(K, V) ([]KeyValue[K2, V2], error), opts ...Option) *KStream[K2, V2] {
	return then[K2, V2](s, "KSTREAM-FLATMAP", opts, true, func(ctx topology.Context, rec topology.Record) error {
		kvs, err := f(as[K](rec.Key), as[V](rec.Value))
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			rec.Key, rec.Value = kv.Key, kv.Value
			if err := ctx.Forward(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// FlatMapValues turns each record's value into zero or more values under
// the same key.
func (s *KStream[K, V]) FlatMapValues[V2 any](f func(K, V) ([]V2, error), opts ...Option) *KStream[K, V2] {
	return then[K, V2](s, "KSTREAM-FLATMAPVALUES", opts, false, func(ctx topology.Context, rec topology.Record) error {
		vs, err := f(as[K](rec.Key), as[V](rec.Value))
		if err != nil {
			return err
		}
		for _, v := range vs {
			rec.Value = v
			if err := ctx.Forward(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Peek calls f for each record and passes it on unchanged.
func (s *KStream[K, V]) Peek(f func(K, V) error, opts ...Option) *KStream[K, V] {
	return then[K, V](s, "KSTREAM-PEEK", opts, false, func(ctx topology.Context, rec topology.Record) error {
		if err := f(as[K](rec.Key), as[V](rec.Value)); err != nil {
			return err
		}
		return ctx.Forward(rec)
	})
}

// Foreach calls f for each record; the chain ends here.
func (s *KStream[K, V]) Foreach(f func(K, V) error, opts ...Option) {
	then[K, V](s, "KSTREAM-FOREACH", opts, false, func(_ topology.Context, rec topology.Record) error {
		return f(as[K](rec.Key), as[V](rec.Value))
	})
}

// Split sends each record to the first branch whose predicate matches
// (records matching none are dropped) and returns one stream per predicate.
// A last predicate that always returns true makes a default branch.
func (s *KStream[K, V]) Split(preds []func(K, V) (bool, error), opts ...Option) []*KStream[K, V] {
	o := collect(opts)
	name := s.b.t.Name(o.name, "KSTREAM-BRANCH")
	children := make([]string, len(preds))
	for i := range preds {
		children[i] = fmt.Sprintf("%s-%d", name, i)
	}
	branch := s.b.t.Add(&topology.Node{Name: name, Kind: topology.KindProcessor,
		New: topology.ProcessorFunc(func(ctx topology.Context, rec topology.Record) error {
			for i, p := range preds {
				ok, err := p(as[K](rec.Key), as[V](rec.Value))
				if err != nil {
					return err
				}
				if ok {
					return ctx.ForwardTo(children[i], rec)
				}
			}
			return nil
		})}, s.node)
	out := make([]*KStream[K, V], len(preds))
	for i := range preds {
		n := s.b.t.Add(&topology.Node{Name: children[i], Kind: topology.KindProcessor, New: passThrough()}, branch)
		out[i] = &KStream[K, V]{b: s.b, node: n, rekeyed: s.rekeyed}
	}
	return out
}

func passThrough() func() topology.Processor {
	return topology.ProcessorFunc(func(ctx topology.Context, rec topology.Record) error { return ctx.Forward(rec) })
}

// Merge interleaves this stream with others.
func (s *KStream[K, V]) Merge(others ...*KStream[K, V]) *KStream[K, V] {
	parents := []*topology.Node{s.node}
	rekeyed := s.rekeyed
	for _, o := range others {
		parents = append(parents, o.node)
		rekeyed = rekeyed || o.rekeyed
	}
	n := s.b.t.Add(&topology.Node{Name: s.b.t.Name("", "KSTREAM-MERGE"), Kind: topology.KindProcessor, New: passThrough()}, parents...)
	return &KStream[K, V]{b: s.b, node: n, rekeyed: rekeyed}
}

// To writes the stream to a topic, partitioned by key the way Kafka's
// default partitioner does, so other Kafka clients agree on placement.
func (s *KStream[K, V]) To(topic string, key serde.Serde[K], value serde.Serde[V], opts ...Option) {
	o := collect(opts)
	s.b.t.Add(&topology.Node{Name: s.b.t.Name(o.name, "KSTREAM-SINK"), Kind: topology.KindSink,
		Topic: topic, KeyCodec: codec(key), ValCodec: codec(value)}, s.node)
}

// ToTopics writes each record to the topic choose returns for it.
func (s *KStream[K, V]) ToTopics(choose func(K, V) (string, error), key serde.Serde[K], value serde.Serde[V], opts ...Option) {
	o := collect(opts)
	s.b.t.Add(&topology.Node{Name: s.b.t.Name(o.name, "KSTREAM-SINK"), Kind: topology.KindSink,
		TopicFor: func(rec topology.Record) (string, error) { return choose(as[K](rec.Key), as[V](rec.Value)) },
		KeyCodec: codec(key), ValCodec: codec(value)}, s.node)
}

// Repartition writes the stream through an internal topic
// (<app-id>-<name>-repartition) partitioned by the current key, and reads
// it back: records with one key then meet in one task.
func (s *KStream[K, V]) Repartition(key serde.Serde[K], value serde.Serde[V], opts ...Option) *KStream[K, V] {
	o := collect(opts)
	name := s.b.t.Name(o.name, "KSTREAM-REPARTITION")
	return &KStream[K, V]{b: s.b, node: repartition(s.b, s.node, name, codec(key), codec(value), o.partitions)}
}

// repartition adds the internal sink and source of a repartition topic.
func repartition(b *Builder, parent *topology.Node, name string, key, value topology.Codec, partitions int32) *topology.Node {
	topic := name + "-repartition"
	b.t.Add(&topology.Node{Name: name + "-sink", Kind: topology.KindSink, Topic: topic,
		KeyCodec: key, ValCodec: value, Internal: true, Partitions: partitions}, parent)
	return b.t.Add(&topology.Node{Name: name + "-source", Kind: topology.KindSource, Topics: []string{topic},
		KeyCodec: key, ValCodec: value, Internal: true})
}
