package table

import (
	"fmt"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
)

// Aggregator folds values into an aggregate. Init makes the aggregate of
// an empty group; Add folds one more value in. For Reduce, Init returns
// nil and Add receives a nil aggregate for a key's first value.
type Aggregator struct {
	Init func() (any, error)
	Add  func(key, value, agg any) (any, error)
}

// NewAggregate returns the processor factory of a grouped aggregation into
// the named key-value store. It forwards nothing itself: the store's cache
// forwards Change records on flush (the store's Owner is this node).
func NewAggregate(store string, key, agg topology.Codec, f Aggregator) func() topology.Processor {
	return func() topology.Processor {
		return &aggregate{store: store, key: key, agg: agg, f: f}
	}
}

type aggregate struct {
	store    string
	key, agg topology.Codec
	f        Aggregator
	ctx      topology.Context
	st       state.Store
}

func (a *aggregate) Init(ctx topology.Context) error {
	a.ctx, a.st = ctx, ctx.Store(a.store)
	return nil
}

func (a *aggregate) Process(rec topology.Record) error {
	if rec.Key == nil {
		// As in Kafka Streams: a record without a key has no group.
		a.ctx.Count("dropped-null-key-records", 1)
		return nil
	}
	kb, err := a.key.Serialize(rec.Key)
	if err != nil {
		return fmt.Errorf("serialize key: %w", err)
	}
	acc, err := load(a.st, kb, a.agg, a.f.Init)
	if err != nil {
		return err
	}
	if acc, err = a.f.Add(rec.Key, rec.Value, acc); err != nil {
		return err
	}
	vb, err := a.agg.Serialize(acc)
	if err != nil {
		return fmt.Errorf("serialize aggregate: %w", err)
	}
	return a.st.Put(kb, vb)
}

func (a *aggregate) Close() error { return nil }

// load reads and decodes a stored aggregate, or makes a fresh one.
func load(st state.Store, key []byte, c topology.Codec, init func() (any, error)) (any, error) {
	raw, err := st.Get(key)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return init()
	}
	v, err := c.Deserialize(raw)
	if err != nil {
		return nil, fmt.Errorf("decode stored aggregate: %w", err)
	}
	return v, nil
}

// StoreGetter reads a materialized table's value from its store.
func StoreGetter(store string, key, value topology.Codec) Getter {
	return func(ctx topology.Context, k any) (any, bool, error) {
		kb, err := key.Serialize(k)
		if err != nil {
			return nil, false, err
		}
		raw, err := ctx.Store(store).Get(kb)
		if err != nil || raw == nil {
			return nil, false, err
		}
		v, err := value.Deserialize(raw)
		return v, err == nil, err
	}
}
