package stream

import (
	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/serde"
)

// Builder collects a topology. Create one with NewBuilder, start chains
// with From and Table, and hand it to NewApp.
type Builder struct {
	t *topology.Builder
}

func init() {
	topology.Of = func(b any) *topology.Builder { return b.(*Builder).t }
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{t: topology.NewBuilder()}
}

// Option adjusts one step.
type Option func(*options)

type options struct {
	name       string
	partitions int32
	timestamp  topology.TimestampExtractor
	emitFinal  bool
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Named names a step. A stateful step's store and internal topics take
// their names from it (store "counts" → topic "<app-id>-counts-changelog"),
// so naming them keeps state and topics stable as the program changes.
// Unnamed steps get deterministic generated names; Describe shows them.
func Named(name string) Option { return func(o *options) { o.name = name } }

// WithPartitions sets a repartition topic's partition count (default: the
// upstream source topics' count).
func WithPartitions(n int32) Option { return func(o *options) { o.partitions = n } }

// codec adapts a typed serde to the untyped graph. A nil value (a deleted
// table row) serializes to nil bytes, a Kafka tombstone, and back.
func codec[T any](s serde.Serde[T]) topology.Codec {
	return topology.Codec{
		Name: s.Name,
		Serialize: func(v any) ([]byte, error) {
			if v == nil {
				return nil, nil
			}
			return s.Serialize(v.(T))
		},
		Deserialize: func(b []byte) (any, error) {
			if b == nil {
				return nil, nil
			}
			return s.Deserialize(b)
		},
	}
}

// as converts an untyped value back to T; nil (absent) becomes T's zero.
func as[T any](v any) T {
	if v == nil {
		var zero T
		return zero
	}
	return v.(T)
}

// Topology is a built topology, for describing it. NewApp builds its own.
type Topology struct{ t *topology.Topology }

// Build resolves the topology's names under an application id and checks
// it. Building again with the same id returns the same topology.
func (b *Builder) Build(appID string) (*Topology, error) {
	t, err := b.t.Build(appID)
	if err != nil {
		return nil, err
	}
	return &Topology{t}, nil
}

// Describe renders the topology as text in Kafka Streams' layout: sub-
// topologies, steps with their generated or given names, stores and their
// changelog topics.
func (t *Topology) Describe() string { return t.t.Describe() }

// Mermaid renders the topology as a Mermaid flowchart.
func (t *Topology) Mermaid() string { return t.t.Mermaid() }

// DOT renders the topology for Graphviz.
func (t *Topology) DOT() string { return t.t.DOT() }
