package topology

import (
	"fmt"
	"slices"
	"strings"
)

// Describe renders the topology as text in Kafka Streams' layout, so the
// generated names of unnamed steps, stores and internal topics are visible.
func (t *Topology) Describe() string {
	var sb strings.Builder
	sb.WriteString("Topologies:\n")
	for _, s := range t.Subtopologies {
		fmt.Fprintf(&sb, "   Sub-topology: %d\n", s.ID)
		for _, n := range s.Nodes {
			switch n.Kind {
			case KindSource:
				fmt.Fprintf(&sb, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(n.Topics, ", "))
			case KindSink:
				fmt.Fprintf(&sb, "    Sink: %s (topic: %s)\n", n.Name, sinkTopic(n))
			default:
				fmt.Fprintf(&sb, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(n.Stores, ", "))
			}
			if len(n.Children) > 0 {
				fmt.Fprintf(&sb, "      --> %s\n", names(n.Children))
			}
			if len(n.Parents) > 0 {
				fmt.Fprintf(&sb, "      <-- %s\n", names(n.Parents))
			}
		}
	}
	for _, name := range sortedKeys(t.Stores) {
		st := t.Stores[name]
		if st.Changelog {
			fmt.Fprintf(&sb, "   Store: %s (changelog: %s)\n", name, st.ChangelogTopic(t.AppID))
		} else {
			fmt.Fprintf(&sb, "   Store: %s (no changelog)\n", name)
		}
	}
	return sb.String()
}

func sinkTopic(n *Node) string {
	if n.TopicFor != nil {
		return "chosen per record"
	}
	return n.Topic
}

func names(ns []*Node) string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return strings.Join(out, ", ")
}

// Mermaid renders the topology as a Mermaid flowchart: one subgraph per
// sub-topology, topics as stadium shapes, stores as cylinders.
func (t *Topology) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TD\n")
	edges := t.edges(mermaidID, func(from, to string) string { return fmt.Sprintf("  %s --> %s\n", from, to) })
	for _, s := range t.Subtopologies {
		fmt.Fprintf(&sb, "  subgraph sub%d [\"Sub-topology %d\"]\n", s.ID, s.ID)
		for _, n := range s.Nodes {
			fmt.Fprintf(&sb, "    %s[\"%s\"]\n", mermaidID(n.Name), n.Name)
		}
		sb.WriteString("  end\n")
	}
	for _, topic := range t.topics() {
		fmt.Fprintf(&sb, "  %s([\"%s\"])\n", mermaidID("topic-"+topic), topic)
	}
	for _, name := range sortedKeys(t.Stores) {
		fmt.Fprintf(&sb, "  %s[(\"%s\")]\n", mermaidID("store-"+name), name)
	}
	sb.WriteString(edges)
	return sb.String()
}

// DOT renders the topology for Graphviz.
func (t *Topology) DOT() string {
	var sb strings.Builder
	sb.WriteString("digraph topology {\n  rankdir=TB;\n")
	for _, s := range t.Subtopologies {
		fmt.Fprintf(&sb, "  subgraph cluster_%d {\n    label=\"Sub-topology %d\";\n", s.ID, s.ID)
		for _, n := range s.Nodes {
			fmt.Fprintf(&sb, "    %q [shape=box];\n", n.Name)
		}
		sb.WriteString("  }\n")
	}
	for _, topic := range t.topics() {
		fmt.Fprintf(&sb, "  %q [shape=ellipse];\n", "topic-"+topic)
	}
	for _, name := range sortedKeys(t.Stores) {
		fmt.Fprintf(&sb, "  %q [shape=cylinder];\n", "store-"+name)
	}
	sb.WriteString(t.edges(func(s string) string { return s }, func(from, to string) string { return fmt.Sprintf("  %q -> %q;\n", from, to) }))
	sb.WriteString("}\n")
	return sb.String()
}

// edges renders every edge: topic → source, node → child, sink → topic,
// processor → store; id maps names to the renderer's node ids.
func (t *Topology) edges(id func(string) string, line func(from, to string) string) string {
	var sb strings.Builder
	for _, s := range t.Subtopologies {
		for _, n := range s.Nodes {
			for _, topic := range n.Topics {
				sb.WriteString(line(id("topic-"+topic), id(n.Name)))
			}
			for _, c := range n.Children {
				sb.WriteString(line(id(n.Name), id(c.Name)))
			}
			if n.Kind == KindSink && n.TopicFor == nil {
				sb.WriteString(line(id(n.Name), id("topic-"+n.Topic)))
			}
			for _, st := range n.Stores {
				sb.WriteString(line(id(n.Name), id("store-"+st)))
			}
		}
	}
	return sb.String()
}

func (t *Topology) topics() []string {
	seen := make(map[string]bool)
	var out []string
	for _, s := range t.Subtopologies {
		for _, n := range s.Nodes {
			for _, topic := range append(append([]string(nil), n.Topics...), n.Topic) {
				if topic != "" && !seen[topic] {
					seen[topic] = true
					out = append(out, topic)
				}
			}
		}
	}
	return out
}

// mermaidID makes a name safe as a Mermaid node id.
func mermaidID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
