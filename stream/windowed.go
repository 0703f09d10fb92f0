package stream

import (
	"time"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/table"
	"github.com/weir-io/weir/window"
)

// WindowedGrouped is a grouped stream cut into event-time windows.
type WindowedGrouped[K, V any] struct {
	g    *Grouped[K, V]
	spec window.Spec
	emit window.Emit
}

// EmitFinal makes a windowed aggregation emit each window's result once,
// when the window closes (stream time past its end plus grace), instead of
// every cache-smoothed update.
func EmitFinal() Option { return func(o *options) { o.emitFinal = true } }

// WindowedBy windows a grouped stream by event time:
//
//	stream.WindowedBy(grouped, window.Tumbling(time.Minute).Grace(10*time.Second)).Count()
//
// Records arriving after their window closed are dropped and counted.
//
// It is a function rather than a method of Grouped because of Go's rule
// against instantiation cycles: a windowed table is keyed by
// window.Windowed[K], and a Grouped method returning it would make
// Grouped[K] reach Grouped[window.Windowed[K]] and so on without end.
func WindowedBy[K, V any](g *Grouped[K, V], spec window.Spec, opts ...Option) *WindowedGrouped[K, V] {
	if err := spec.Validate(); err != nil {
		g.b.t.Fail(err)
	}
	w := &WindowedGrouped[K, V]{g: g, spec: spec}
	if collect(opts).emitFinal {
		w.emit = window.EmitFinal
	}
	return w
}

// Count counts records per key and window.
func (w *WindowedGrouped[K, V]) Count(opts ...Option) *KTable[window.Windowed[K], int64] {
	return w.Aggregate(func() (int64, error) { return 0, nil },
		func(_ K, _ V, n int64) (int64, error) { return n + 1, nil }, serde.Int64(), opts...)
}

// Reduce combines the values of each key and window.
func (w *WindowedGrouped[K, V]) Reduce(f func(agg, value V) (V, error), opts ...Option) *KTable[window.Windowed[K], V] {
	return windowInto(w, "KSTREAM-WINDOW-REDUCE", table.Aggregator{
		Init: func() (any, error) { return nil, nil },
		Add: func(_, v, agg any) (any, error) {
			if agg == nil {
				return v, nil
			}
			return f(agg.(V), as[V](v))
		},
	}, w.g.value, opts)
}

// Aggregate folds the values of each key and window into an A.
func (w *WindowedGrouped[K, V]) Aggregate[A any](init func() (A, error), add func(K, V, A) (A, error), agg serde.Serde[A], opts ...Option) *KTable[window.Windowed[K], A] {
	return windowInto(w, "KSTREAM-WINDOW-AGGREGATE", table.Aggregator{
		Init: func() (any, error) { return init() },
		Add:  func(k, v, a any) (any, error) { return add(as[K](k), as[V](v), a.(A)) },
	}, agg, opts)
}

// minRetention keeps closed windows queryable for a day, as Kafka Streams'
// default window-store retention does.
const minRetention = 24 * time.Hour

// windowInto adds a windowed aggregation node, its window store and, for
// final results, the store of its emit marks.
func windowInto[K, V, A any](w *WindowedGrouped[K, V], prefix string, f table.Aggregator, agg serde.Serde[A], opts []Option) *KTable[window.Windowed[K], A] {
	b, o := w.g.b, collect(opts)
	name := b.t.Name(o.name, prefix)
	store := storeName(o.name, name)
	kc, ac, wk := codec(w.g.key), codec(agg), windowStoreKey(w.g.key, w.spec.Size())
	retention := max(w.spec.Retention(), minRetention)
	spec := &topology.Store{Name: store, Kind: topology.StoreWindow, KeyCodec: wk, ValCodec: ac,
		Changelog: true, WindowSize: w.spec.Size(), Retention: retention}
	stores := []string{store}
	marks := ""
	if w.emit == window.EmitFinal {
		marks = store + "-emitted"
		b.t.AddStore(&topology.Store{Name: marks, Kind: topology.StoreKeyValue, Changelog: true,
			KeyCodec: codec(serde.String()), ValCodec: codec(serde.Bytes())})
		stores = append(stores, marks)
	} else {
		spec.Owner = name // the cache forwards every update
	}
	b.t.AddStore(spec)
	n := b.t.Add(&topology.Node{Name: name, Kind: topology.KindProcessor, Stores: stores,
		New: table.NewWindowedAggregate(table.WindowedAggregate{
			Store: store, Marks: marks, Spec: w.spec, Emit: w.emit, Retention: retention,
			Key: kc, WindowKey: wk, Agg: ac, Aggregator: f,
		})}, w.g.node)
	return &KTable[window.Windowed[K], A]{b: b, node: n, get: table.WindowGetter(store, retention, wk, ac), stores: []string{store}}
}

// windowStoreKey is the codec between window.Windowed[K] and the window
// store's keys (start first, then the key bytes).
func windowStoreKey[K any](key serde.Serde[K], size time.Duration) topology.Codec {
	return topology.Codec{
		Name: topology.WindowStoreKeyName(key.Name),
		Serialize: func(v any) ([]byte, error) {
			wk := v.(window.Windowed[K])
			kb, err := key.Serialize(wk.Key)
			if err != nil {
				return nil, err
			}
			return window.EncodeKey(kb, wk.Window.Start), nil
		},
		Deserialize: func(b []byte) (any, error) {
			kb, start, err := window.DecodeKey(b)
			if err != nil {
				return nil, err
			}
			k, err := key.Deserialize(kb)
			if err != nil {
				return nil, err
			}
			start = start.UTC()
			return window.Windowed[K]{Key: k, Window: window.Window{Start: start, End: start.Add(size)}}, nil
		},
	}
}
