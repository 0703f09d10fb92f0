package topology

import (
	"fmt"
	"slices"
	"sort"
)

// Topology is a built graph, split into independent sub-topologies.
type Topology struct {
	AppID         string
	Subtopologies []*Subtopology
	Stores        map[string]*Store
	// copartition lists groups of source topics that must have the same
	// partition count.
	copartition [][]string
}

// Subtopology is a connected part of the graph: the unit that becomes one
// task per partition.
type Subtopology struct {
	ID     int
	Nodes  []*Node // in declaration order
	Stores []string
	// Partitions is the task count, resolved from the source topics'
	// partition counts by Resolve.
	Partitions int32
}

// Sources returns the sub-topology's source nodes.
func (s *Subtopology) Sources() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Kind == KindSource {
			out = append(out, n)
		}
	}
	return out
}

// SourceTopics lists every topic the sub-topology reads.
func (s *Subtopology) SourceTopics() []string {
	var out []string
	for _, n := range s.Sources() {
		out = append(out, n.Topics...)
	}
	return out
}

// Build resolves internal topic names under appID, splits the graph into
// sub-topologies, and checks what can be checked without a broker.
//
// Build names internal topics in place, so a builder is built once; later
// calls with the same application id return the same topology.
func (b *Builder) Build(appID string) (*Topology, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.built != nil {
		if b.built.AppID != appID {
			return nil, fmt.Errorf("%w: this builder was built for application %q; use a new builder for %q", ErrInvalid, b.built.AppID, appID)
		}
		return b.built, nil
	}
	if len(b.nodes) == 0 {
		return nil, fmt.Errorf("%w: no sources: read a topic with stream.From or stream.Table", ErrInvalid)
	}
	if err := b.checkStores(); err != nil {
		return nil, err
	}
	if err := b.checkSources(); err != nil {
		return nil, err
	}
	for _, n := range b.nodes {
		if n.Internal {
			if n.Kind == KindSink {
				n.Topic = appID + "-" + n.Topic
			} else {
				for i := range n.Topics {
					n.Topics[i] = appID + "-" + n.Topics[i]
				}
			}
		}
	}
	t := &Topology{AppID: appID, Stores: b.stores}
	t.Subtopologies = b.split()
	for _, g := range b.groups {
		t.copartition = append(t.copartition, sourceTopicsOf(g))
	}
	b.built = t
	return t, nil
}

func (b *Builder) checkStores() error {
	for _, n := range b.nodes {
		for _, s := range n.Stores {
			if _, ok := b.stores[s]; !ok {
				return fmt.Errorf("%w: %s uses store %q, which is not declared", ErrInvalid, n.Name, s)
			}
		}
	}
	return nil
}

// checkSources refuses a topic read by two sources, which would make one
// partition's records belong to two tasks.
func (b *Builder) checkSources() error {
	reader := make(map[string]string)
	for _, n := range b.nodes {
		for _, topic := range n.Topics {
			if other, ok := reader[topic]; ok {
				return fmt.Errorf("%w: topic %q is read by both %s and %s; read it once and share the stream", ErrInvalid, topic, other, n.Name)
			}
			reader[topic] = n.Name
		}
	}
	return nil
}

// split finds connected components: nodes joined by an edge or by a shared
// store run in the same task. Repartition topics are not edges (the sink and
// the source are separate nodes), so the graph splits there.
func (b *Builder) split() []*Subtopology {
	parent := make(map[*Node]*Node)
	var find func(n *Node) *Node
	find = func(n *Node) *Node {
		if parent[n] == nil || parent[n] == n {
			parent[n] = n
			return n
		}
		parent[n] = find(parent[n])
		return parent[n]
	}
	union := func(a, c *Node) { parent[find(a)] = find(c) }
	storeUser := make(map[string]*Node)
	for _, n := range b.nodes {
		find(n)
		for _, c := range n.Children {
			union(n, c)
		}
		for _, s := range n.Stores {
			if u, ok := storeUser[s]; ok {
				union(n, u)
			}
			storeUser[s] = n
		}
	}
	var subs []*Subtopology
	index := make(map[*Node]*Subtopology)
	for _, n := range b.nodes {
		root := find(n)
		s, ok := index[root]
		if !ok {
			s = &Subtopology{ID: len(subs)}
			subs = append(subs, s)
			index[root] = s
		}
		s.Nodes = append(s.Nodes, n)
		for _, st := range n.Stores {
			if !slices.Contains(s.Stores, st) {
				s.Stores = append(s.Stores, st)
			}
		}
	}
	return subs
}

// sourceTopicsOf walks up from nodes to the topics that feed them.
func sourceTopicsOf(nodes []*Node) []string {
	seen := make(map[*Node]bool)
	var topics []string
	var walk func(n *Node)
	walk = func(n *Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		if n.Kind == KindSource {
			topics = append(topics, n.Topics...)
		}
		for _, p := range n.Parents {
			walk(p)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	sort.Strings(topics)
	return slices.Compact(topics)
}

// Resolve sets every sub-topology's partition count and every internal
// topic's partition count from the user topics' counts, in dependency
// order, and checks co-partitioning. counts holds the user source topics;
// the map is extended with internal topics.
func (t *Topology) Resolve(counts map[string]int32) error {
	pending := slices.Clone(t.Subtopologies)
	for len(pending) > 0 {
		progressed := false
		for i := 0; i < len(pending); i++ {
			s := pending[i]
			n, ok := partitionsOf(s, counts)
			if !ok {
				continue
			}
			s.Partitions = n
			for _, node := range s.Nodes {
				if node.Kind == KindSink && node.Internal {
					counts[node.Topic] = t.internalPartitions(node, n, counts)
				}
			}
			pending = slices.Delete(pending, i, i+1)
			i--
			progressed = true
		}
		if !progressed {
			return fmt.Errorf("%w: cannot resolve partition counts of %v: a source topic does not exist", ErrInvalid, pending[0].SourceTopics())
		}
	}
	return t.checkCopartition(counts)
}

// internalPartitions picks a repartition topic's partition count: the
// explicit one; else, when a join needs it co-partitioned with a topic of
// known size, that size; else the upstream task count.
func (t *Topology) internalPartitions(sink *Node, upstream int32, counts map[string]int32) int32 {
	if sink.Partitions > 0 {
		return sink.Partitions
	}
	for _, g := range t.copartition {
		if !slices.Contains(g, sink.Topic) {
			continue
		}
		for _, topic := range g {
			if n, ok := counts[topic]; ok && topic != sink.Topic {
				return n
			}
		}
	}
	return upstream
}

// partitionsOf is the largest partition count among s's source topics, or
// false while one is unknown.
func partitionsOf(s *Subtopology, counts map[string]int32) (int32, bool) {
	var max int32
	for _, topic := range s.SourceTopics() {
		n, ok := counts[topic]
		if !ok {
			return 0, false
		}
		max = maxInt32(max, n)
	}
	return max, max > 0
}

func maxInt32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}

// checkCopartition reports joins whose inputs have different partition
// counts: records with one key would land in different tasks.
func (t *Topology) checkCopartition(counts map[string]int32) error {
	for _, g := range t.copartition {
		for _, topic := range g[1:] {
			if counts[topic] != counts[g[0]] {
				return fmt.Errorf("%w: the joined topics %v must be co-partitioned, but %s has %d partitions and %s has %d; "+
					"repartition one side (KStream.Repartition) or recreate the topic with the same partition count",
					ErrInvalid, g, g[0], counts[g[0]], topic, counts[topic])
			}
		}
	}
	return nil
}

// InternalTopics lists the repartition topics the application must create,
// with their partition counts (after Resolve).
func (t *Topology) InternalTopics(counts map[string]int32) map[string]int32 {
	out := make(map[string]int32)
	for _, s := range t.Subtopologies {
		for _, n := range s.Nodes {
			if n.Kind == KindSink && n.Internal {
				out[n.Topic] = counts[n.Topic]
			}
		}
	}
	return out
}

// UserSourceTopics lists the non-internal topics the application reads.
func (t *Topology) UserSourceTopics() []string {
	var out []string
	for _, s := range t.Subtopologies {
		for _, n := range s.Sources() {
			if !n.Internal {
				out = append(out, n.Topics...)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// SubtopologyFor returns the sub-topology reading topic.
func (t *Topology) SubtopologyFor(topic string) (*Subtopology, bool) {
	for _, s := range t.Subtopologies {
		if slices.Contains(s.SourceTopics(), topic) {
			return s, true
		}
	}
	return nil, false
}
