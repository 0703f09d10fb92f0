package stream

import (
	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/table"
)

// KTable is a changelog stream read as a table: the latest value per key.
// Its nodes forward table.Change records (old and new value of a key).
type KTable[K, V any] struct {
	b    *Builder
	node *topology.Node
	// get reads the table's current value for a key, through any
	// filters and mappings, for joins.
	get table.Getter
	// stores are the stores get reads.
	stores []string
}

// Table reads a topic as a table, materialized in a store named after the
// step (its changelog is the store's own compacted topic).
func Table[K, V any](b *Builder, topic string, key serde.Serde[K], value serde.Serde[V], opts ...Option) *KTable[K, V] {
	o := collect(opts)
	src := b.t.Add(&topology.Node{Name: b.t.Name("", "KTABLE-SOURCE"), Kind: topology.KindSource,
		Topics: []string{topic}, KeyCodec: codec(key), ValCodec: codec(value), Timestamp: o.timestamp})
	name := b.t.Name(o.name, "KTABLE-MATERIALIZE")
	return materialize(b, src, name, storeName(o.name, name), key, value)
}

// derive adds a processor over the table's changes.
func derive[V2, K, V any](t *KTable[K, V], prefix string, opts []Option, get table.Getter, f func(ctx topology.Context, rec topology.Record) error) *KTable[K, V2] {
	o := collect(opts)
	n := t.b.t.Add(&topology.Node{Name: t.b.t.Name(o.name, prefix), Kind: topology.KindProcessor,
		New: topology.ProcessorFunc(f)}, t.node)
	return &KTable[K, V2]{b: t.b, node: n, get: get, stores: t.stores}
}

// Filter keeps the rows for which keep returns true; a row that stops
// matching is forwarded as a deletion.
func (t *KTable[K, V]) Filter(keep func(K, V) (bool, error), opts ...Option) *KTable[K, V] {
	pass := func(k, v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		ok, err := keep(as[K](k), v.(V))
		if err != nil || !ok {
			return nil, err
		}
		return v, nil
	}
	get := func(ctx topology.Context, k any) (any, bool, error) {
		v, found, err := t.get(ctx, k)
		if err != nil || !found {
			return nil, false, err
		}
		v, err = pass(k, v)
		return v, v != nil, err
	}
	return derive[V](t, "KTABLE-FILTER", opts, get, mapChange(pass))
}

// MapValues transforms each row's value.
func (t *KTable[K, V]) MapValues[V2 any](f func(K, V) (V2, error), opts ...Option) *KTable[K, V2] {
	apply := func(k, v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		return f(as[K](k), v.(V))
	}
	get := func(ctx topology.Context, k any) (any, bool, error) {
		v, found, err := t.get(ctx, k)
		if err != nil || !found {
			return nil, false, err
		}
		v, err = apply(k, v)
		return v, err == nil, err
	}
	return derive[V2](t, "KTABLE-MAPVALUES", opts, get, mapChange(apply))
}

// mapChange applies f to both sides of a change and forwards the result
// unless both sides vanished.
func mapChange(f func(k, v any) (any, error)) func(ctx topology.Context, rec topology.Record) error {
	return func(ctx topology.Context, rec topology.Record) error {
		ch := rec.Value.(table.Change)
		var out table.Change
		var err error
		if out.Old, err = f(rec.Key, ch.Old); err != nil {
			return err
		}
		if out.New, err = f(rec.Key, ch.New); err != nil {
			return err
		}
		if out.Old == nil && out.New == nil {
			return nil
		}
		rec.Value = out
		return ctx.Forward(rec)
	}
}

// ToStream turns the table's updates into a stream of the new values. A
// deleted row becomes a record with a nil value, which To writes as a
// Kafka tombstone.
func (t *KTable[K, V]) ToStream(opts ...Option) *KStream[K, V] {
	o := collect(opts)
	n := t.b.t.Add(&topology.Node{Name: t.b.t.Name(o.name, "KTABLE-TOSTREAM"), Kind: topology.KindProcessor,
		New: topology.ProcessorFunc(func(ctx topology.Context, rec topology.Record) error {
			rec.Value = rec.Value.(table.Change).New
			return ctx.Forward(rec)
		})}, t.node)
	return &KStream[K, V]{b: t.b, node: n}
}

// Join joins two tables on their keys: a row exists while both sides have
// one. The tables must be co-partitioned.
func (t *KTable[K, V]) Join[VO, VR any](other *KTable[K, VO], join func(K, V, VO) (VR, error), opts ...Option) *KTable[K, VR] {
	return tableJoin(t, other, false, func(k K, v V, o *VO) (VR, error) { return join(k, v, *o) }, opts)
}

// LeftJoin keeps every row of this table, calling join with a nil other
// value where the other table has none.
func (t *KTable[K, V]) LeftJoin[VO, VR any](other *KTable[K, VO], join func(K, V, *VO) (VR, error), opts ...Option) *KTable[K, VR] {
	return tableJoin(t, other, true, join, opts)
}

// tableJoin adds one processor per side (each looks up the other side on a
// change of its own) and a node merging their output.
func tableJoin[K, V, VO, VR any](t *KTable[K, V], other *KTable[K, VO], left bool, join func(K, V, *VO) (VR, error), opts []Option) *KTable[K, VR] {
	o := collect(opts)
	name := t.b.t.Name(o.name, "KTABLE-JOIN")
	// pair joins a row of t with a row of other; nil means absent.
	pair := func(k, v, ov any) (any, error) {
		if v == nil || (ov == nil && !left) {
			return nil, nil
		}
		var p *VO
		if ov != nil {
			x := ov.(VO)
			p = &x
		}
		return join(as[K](k), v.(V), p)
	}
	stores := append(append([]string(nil), t.stores...), other.stores...)
	this := t.b.t.Add(&topology.Node{Name: name + "-this", Kind: topology.KindProcessor, Stores: stores,
		New: table.NewTableTableJoinSide(other.get, func(k, own, ov any) (any, error) { return pair(k, own, ov) })}, t.node)
	that := t.b.t.Add(&topology.Node{Name: name + "-other", Kind: topology.KindProcessor, Stores: stores,
		New: table.NewTableTableJoinSide(t.get, func(k, own, tv any) (any, error) { return pair(k, tv, own) })}, other.node)
	merged := t.b.t.Add(&topology.Node{Name: name, Kind: topology.KindProcessor, New: passThrough()}, this, that)
	t.b.t.Copartition(this, that)
	get := func(ctx topology.Context, k any) (any, bool, error) {
		v, _, err := t.get(ctx, k)
		if err != nil {
			return nil, false, err
		}
		ov, _, err := other.get(ctx, k)
		if err != nil {
			return nil, false, err
		}
		r, err := pair(k, v, ov)
		return r, r != nil, err
	}
	return &KTable[K, VR]{b: t.b, node: merged, get: get, stores: stores}
}
