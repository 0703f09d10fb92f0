package table

import (
	"fmt"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
)

// NewMaterialize returns the processor factory that writes every record
// into a key-value store: a table read from a topic, or a stream turned
// into a table. A nil value deletes the key. Updates reach downstream nodes
// through the store's cache as Change records.
func NewMaterialize(store string, key, value topology.Codec) func() topology.Processor {
	return func() topology.Processor { return &materialize{store: store, key: key, value: value} }
}

type materialize struct {
	store      string
	key, value topology.Codec
	ctx        topology.Context
	st         state.Store
}

func (m *materialize) Init(ctx topology.Context) error {
	m.ctx, m.st = ctx, ctx.Store(m.store)
	return nil
}

func (m *materialize) Process(rec topology.Record) error {
	if rec.Key == nil {
		m.ctx.Count("dropped-null-key-records", 1)
		return nil
	}
	kb, err := m.key.Serialize(rec.Key)
	if err != nil {
		return fmt.Errorf("serialize key: %w", err)
	}
	if rec.Value == nil {
		return m.st.Delete(kb)
	}
	vb, err := m.value.Serialize(rec.Value)
	if err != nil {
		return fmt.Errorf("serialize value: %w", err)
	}
	return m.st.Put(kb, vb)
}

func (m *materialize) Close() error { return nil }
