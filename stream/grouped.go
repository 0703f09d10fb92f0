package stream

import (
	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/table"
)

// Grouped is a stream grouped by key, ready to aggregate.
type Grouped[K, V any] struct {
	b     *Builder
	node  *topology.Node
	key   serde.Serde[K]
	value serde.Serde[V]
}

// GroupByKey groups by the current key. If the key may have changed since
// the records were partitioned (Map, SelectKey, FlatMap), the records go
// through a repartition topic first; the serdes encode it and the store.
func (s *KStream[K, V]) GroupByKey(key serde.Serde[K], value serde.Serde[V], opts ...Option) *Grouped[K, V] {
	o := collect(opts)
	node := s.node
	if s.rekeyed {
		name := s.b.t.Name(o.name, "KSTREAM-GROUPBY")
		node = repartition(s.b, s.node, name, codec(key), codec(value), o.partitions)
	}
	return &Grouped[K, V]{b: s.b, node: node, key: key, value: value}
}

// GroupBy groups by a new key computed from each record; the records are
// repartitioned by it.
func (s *KStream[K, V]) GroupBy[K2 any](by func(K, V) (K2, error), key serde.Serde[K2], value serde.Serde[V], opts ...Option) *Grouped[K2, V] {
	return s.SelectKey(by).GroupByKey(key, value, opts...)
}

// Count counts records per key into a table.
func (g *Grouped[K, V]) Count(opts ...Option) *KTable[K, int64] {
	return g.Aggregate(func() (int64, error) { return 0, nil },
		func(_ K, _ V, n int64) (int64, error) { return n + 1, nil }, serde.Int64(), opts...)
}

// Reduce combines each key's values with f, the first value standing as
// the initial aggregate.
func (g *Grouped[K, V]) Reduce(f func(agg, value V) (V, error), opts ...Option) *KTable[K, V] {
	return aggregateInto(g, "KSTREAM-REDUCE", table.Aggregator{
		Init: func() (any, error) { return nil, nil },
		Add: func(_, v, agg any) (any, error) {
			if agg == nil {
				return v, nil
			}
			return f(agg.(V), as[V](v))
		},
	}, g.value, opts)
}

// Aggregate folds each key's values into an aggregate of type A, starting
// from init().
func (g *Grouped[K, V]) Aggregate[A any](init func() (A, error), add func(K, V, A) (A, error), agg serde.Serde[A], opts ...Option) *KTable[K, A] {
	return aggregateInto(g, "KSTREAM-AGGREGATE", table.Aggregator{
		Init: func() (any, error) { return init() },
		Add:  func(k, v, a any) (any, error) { return add(as[K](k), as[V](v), a.(A)) },
	}, agg, opts)
}

// aggregateInto adds an aggregation node with its store.
func aggregateInto[K, V, A any](g *Grouped[K, V], prefix string, f table.Aggregator, agg serde.Serde[A], opts []Option) *KTable[K, A] {
	o := collect(opts)
	name := g.b.t.Name(o.name, prefix)
	store := storeName(o.name, name)
	kc, ac := codec(g.key), codec(agg)
	g.b.t.AddStore(&topology.Store{Name: store, Kind: topology.StoreKeyValue, Owner: name,
		KeyCodec: kc, ValCodec: ac, Changelog: true})
	n := g.b.t.Add(&topology.Node{Name: name, Kind: topology.KindProcessor, Stores: []string{store},
		New: table.NewAggregate(store, kc, ac, f)}, g.node)
	return &KTable[K, A]{b: g.b, node: n, get: table.StoreGetter(store, kc, ac), stores: []string{store}}
}

// storeName is the explicit name, or the generated step name with a
// Kafka-Streams-like suffix.
func storeName(explicit, step string) string {
	if explicit != "" {
		return explicit
	}
	return step + "-STATE-STORE"
}

// ToTable materializes the stream as a table: each record is the latest
// value of its key; a nil value would delete it.
func (s *KStream[K, V]) ToTable(key serde.Serde[K], value serde.Serde[V], opts ...Option) *KTable[K, V] {
	g := s.GroupByKey(key, value)
	o := collect(opts)
	name := s.b.t.Name(o.name, "KSTREAM-TOTABLE")
	return materialize(s.b, g.node, name, storeName(o.name, name), key, value)
}

// materialize adds a node that writes records into a new store, forwarding
// changes through the store's cache.
func materialize[K, V any](b *Builder, parent *topology.Node, name, store string, key serde.Serde[K], value serde.Serde[V]) *KTable[K, V] {
	kc, vc := codec(key), codec(value)
	b.t.AddStore(&topology.Store{Name: store, Kind: topology.StoreKeyValue, Owner: name,
		KeyCodec: kc, ValCodec: vc, Changelog: true})
	n := b.t.Add(&topology.Node{Name: name, Kind: topology.KindProcessor, Stores: []string{store},
		New: table.NewMaterialize(store, kc, vc)}, parent)
	return &KTable[K, V]{b: b, node: n, get: table.StoreGetter(store, kc, vc), stores: []string{store}}
}

// Join joins each record with the table's current value for its key;
// records without a match are dropped. The stream and the table must be
// co-partitioned; a re-keyed stream is repartitioned first.
func (s *KStream[K, V]) Join[VT, VR any](t *KTable[K, VT], join func(K, V, VT) (VR, error), key serde.Serde[K], value serde.Serde[V], opts ...Option) *KStream[K, VR] {
	return streamTableJoin(s, t, false, func(k K, v V, tv *VT) (VR, error) { return join(k, v, *tv) }, key, value, opts)
}

// LeftJoin is Join that keeps unmatched records, calling join with a nil
// table value.
func (s *KStream[K, V]) LeftJoin[VT, VR any](t *KTable[K, VT], join func(K, V, *VT) (VR, error), key serde.Serde[K], value serde.Serde[V], opts ...Option) *KStream[K, VR] {
	return streamTableJoin(s, t, true, join, key, value, opts)
}

func streamTableJoin[K, V, VT, VR any](s *KStream[K, V], t *KTable[K, VT], left bool, join func(K, V, *VT) (VR, error), key serde.Serde[K], value serde.Serde[V], opts []Option) *KStream[K, VR] {
	o := collect(opts)
	input := s.GroupByKey(key, value).node // repartitions a re-keyed stream
	name := s.b.t.Name(o.name, "KSTREAM-JOIN")
	n := s.b.t.Add(&topology.Node{Name: name, Kind: topology.KindProcessor, Stores: t.stores,
		New: table.NewStreamTableJoin(t.get, left, func(k, v, tv any) (any, error) {
			var p *VT
			if tv != nil {
				x := tv.(VT)
				p = &x
			}
			return join(as[K](k), as[V](v), p)
		})}, input)
	s.b.t.Copartition(n, t.node)
	return &KStream[K, VR]{b: s.b, node: n}
}
