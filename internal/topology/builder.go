package topology

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalid is wrapped by every error Build reports about the graph.
var ErrInvalid = errors.New("topology: invalid")

// Builder records nodes and stores as the DSL declares them. Errors are
// kept and reported by Build, so the fluent DSL never has to return them.
type Builder struct {
	nodes  []*Node
	byName map[string]*Node
	stores map[string]*Store
	order  []string // store names in declaration order
	seq    int
	groups [][]*Node // nodes whose inputs must be co-partitioned (joins)
	err    error
	built  *Topology // Build's result: building again returns it
}

func NewBuilder() *Builder {
	return &Builder{byName: make(map[string]*Node), stores: make(map[string]*Store)}
}

// validName is what Kafka allows in topic names, which store and
// repartition names become part of.
var validName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Name returns explicit if set, or the next generated name for prefix in
// Kafka Streams' style (KSTREAM-FILTER-0000000003). Generated names depend
// only on declaration order, so the same program always gets the same
// names; explicit names keep stores and topics stable when it changes.
func (b *Builder) Name(explicit, prefix string) string {
	n := b.seq
	b.seq++
	if explicit != "" {
		return explicit
	}
	return fmt.Sprintf("%s-%010d", prefix, n)
}

// Fail records the first error for Build to return.
func (b *Builder) Fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Add links n under parents and records it.
func (b *Builder) Add(n *Node, parents ...*Node) *Node {
	if !validName.MatchString(n.Name) {
		b.Fail(fmt.Errorf("%w: name %q may contain only ASCII letters, digits, '.', '_' and '-'", ErrInvalid, n.Name))
	}
	if _, dup := b.byName[n.Name]; dup {
		b.Fail(fmt.Errorf("%w: two steps are named %q; names must be unique", ErrInvalid, n.Name))
	}
	b.byName[n.Name] = n
	b.nodes = append(b.nodes, n)
	for _, p := range parents {
		if p.Kind == KindSink {
			b.Fail(fmt.Errorf("%w: %s is a sink and cannot have children", ErrInvalid, p.Name))
		}
		p.Children = append(p.Children, n)
		n.Parents = append(n.Parents, p)
	}
	return n
}

// AddStore declares a store.
func (b *Builder) AddStore(s *Store) {
	if !validName.MatchString(s.Name) {
		b.Fail(fmt.Errorf("%w: store name %q may contain only ASCII letters, digits, '.', '_' and '-'", ErrInvalid, s.Name))
	}
	if _, dup := b.stores[s.Name]; dup {
		b.Fail(fmt.Errorf("%w: two stores are named %q", ErrInvalid, s.Name))
	}
	b.stores[s.Name] = s
	b.order = append(b.order, s.Name)
}

// Copartition requires the source topics feeding nodes to have equal
// partition counts, as a join of their inputs needs.
func (b *Builder) Copartition(nodes ...*Node) {
	b.groups = append(b.groups, nodes)
}

// Of returns the graph builder behind a stream.Builder. Package stream sets
// it, so weir's own test driver can build a topology without the untyped
// graph becoming part of stream's public API.
var Of func(dslBuilder any) *Builder
