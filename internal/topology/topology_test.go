package topology

import (
	"errors"
	"strings"
	"testing"
)

func passThrough() Processor {
	return &funcProcessor{f: func(ctx Context, rec Record) error { return ctx.Forward(rec) }}
}

// joinGraph: stream "s" repartitioned, joined with table "t"; a second
// stream "u" feeds a separate sub-topology.
func joinGraph(t *testing.T) (*Builder, *Node) {
	b := NewBuilder()
	s := b.Add(&Node{Name: "s", Kind: KindSource, Topics: []string{"s"}})
	rk := b.Add(&Node{Name: "rekey", Kind: KindProcessor, New: passThrough}, s)
	b.Add(&Node{Name: "rp-sink", Kind: KindSink, Topic: "rp-repartition", Internal: true}, rk)
	rp := b.Add(&Node{Name: "rp-source", Kind: KindSource, Topics: []string{"rp-repartition"}, Internal: true})
	tbl := b.Add(&Node{Name: "t", Kind: KindSource, Topics: []string{"t"}})
	b.AddStore(&Store{Name: "tstore", Changelog: true})
	mat := b.Add(&Node{Name: "mat", Kind: KindProcessor, New: passThrough, Stores: []string{"tstore"}}, tbl)
	join := b.Add(&Node{Name: "join", Kind: KindProcessor, New: passThrough, Stores: []string{"tstore"}}, rp)
	b.Copartition(join, mat)
	b.Add(&Node{Name: "u", Kind: KindSource, Topics: []string{"u"}})
	return b, join
}

func TestSplitAtRepartitionAndSharedStores(t *testing.T) {
	b, _ := joinGraph(t)
	topo, err := b.Build("app")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topo.Subtopologies); n != 3 {
		t.Fatalf("%d sub-topologies, want 3 (source→repartition, join with table, u):\n%s", n, topo.Describe())
	}
	join, ok := topo.SubtopologyFor("app-rp-repartition")
	if !ok || !strings.Contains(strings.Join(join.SourceTopics(), ","), "t") {
		t.Fatalf("the join and the table it reads must share a sub-topology:\n%s", topo.Describe())
	}
}

func TestResolvePartitions(t *testing.T) {
	b, _ := joinGraph(t)
	topo, _ := b.Build("app")
	counts := map[string]int32{"s": 8, "t": 3, "u": 2}
	if err := topo.Resolve(counts); err != nil {
		t.Fatal(err)
	}
	// The repartition topic follows the table it is joined with, not its
	// 8-partition upstream, so the join is co-partitioned.
	if counts["app-rp-repartition"] != 3 {
		t.Fatalf("repartition topic has %d partitions, want 3", counts["app-rp-repartition"])
	}
	for _, s := range topo.Subtopologies {
		if s.Partitions == 0 {
			t.Fatalf("sub-topology %d unresolved", s.ID)
		}
	}
}

func TestResolveRefusesUnCopartitionedJoin(t *testing.T) {
	b := NewBuilder()
	s := b.Add(&Node{Name: "s", Kind: KindSource, Topics: []string{"s"}})
	tbl := b.Add(&Node{Name: "t", Kind: KindSource, Topics: []string{"t"}})
	b.AddStore(&Store{Name: "ts"})
	mat := b.Add(&Node{Name: "mat", Kind: KindProcessor, New: passThrough, Stores: []string{"ts"}}, tbl)
	join := b.Add(&Node{Name: "join", Kind: KindProcessor, New: passThrough, Stores: []string{"ts"}}, s)
	b.Copartition(join, mat)
	topo, err := b.Build("app")
	if err != nil {
		t.Fatal(err)
	}
	err = topo.Resolve(map[string]int32{"s": 4, "t": 2})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "co-partitioned") {
		t.Fatalf("got %v, want a co-partitioning error", err)
	}
	if err := topo.Resolve(map[string]int32{"s": 4}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing topic: %v", err)
	}
}

func TestBuildOnceAndNames(t *testing.T) {
	b := NewBuilder()
	if got := b.Name("", "KSTREAM-FILTER"); got != "KSTREAM-FILTER-0000000000" {
		t.Fatalf("generated name %q", got)
	}
	b.Add(&Node{Name: "bad name", Kind: KindSource, Topics: []string{"x"}})
	if _, err := b.Build("a"); err == nil {
		t.Fatal("a name with a space was accepted")
	}
	b2, _ := joinGraph(t)
	first, _ := b2.Build("a")
	again, err := b2.Build("a")
	if err != nil || again != first {
		t.Fatalf("second Build: %v", err)
	}
	if _, err := b2.Build("other"); err == nil {
		t.Fatal("building for a second application id succeeded")
	}
}
