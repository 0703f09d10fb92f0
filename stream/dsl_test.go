package stream_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
	"github.com/weir-io/weir/stream/streamtest"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func splitWords(_, line string) ([]string, error) { return strings.Fields(strings.ToLower(line)), nil }
func byWord(_, w string) (string, error)          { return w, nil }

func wordCount(b *stream.Builder) {
	stream.From(b, "lines", serde.String(), serde.String()).
		FlatMapValues(splitWords).
		GroupBy(byWord, serde.String(), serde.String()).
		Count(stream.Named("counts")).
		ToStream().
		To("counts-out", serde.String(), serde.Int64())
}

func TestWordCountMatchesAMap(t *testing.T) {
	for _, parts := range []int32{1, 4} {
		t.Run(fmt.Sprint(parts, " partitions"), func(t *testing.T) {
			b := stream.NewBuilder()
			wordCount(b)
			d := streamtest.New(t, b, streamtest.Partitions(map[string]int32{"lines": parts}))
			in := streamtest.Input(d, "lines", serde.String(), serde.String())
			out := streamtest.Output(d, "counts-out", serde.String(), serde.Int64())
			want := make(map[string]int64)
			for i := range 200 {
				line := fmt.Sprintf("the cat %d sat on the mat %d", i%13, i%5)
				for _, w := range strings.Fields(line) {
					want[w]++
				}
				in.Pipe(fmt.Sprint(i), line, t0.Add(time.Duration(i)*time.Second))
			}
			d.Commit()
			if got := streamtest.ToMap(out); !maps.Equal(got, want) {
				t.Fatalf("counts differ\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestCacheCollapsesUpdatesUntilCommit(t *testing.T) {
	b := stream.NewBuilder()
	wordCount(b)
	d := streamtest.New(t, b, streamtest.WithCache(1<<20))
	in := streamtest.Input(d, "lines", serde.String(), serde.String())
	out := streamtest.Output(d, "counts-out", serde.String(), serde.Int64())
	for range 10 {
		in.PipeValue("a a b", t0)
	}
	if got := out.ReadAll(); len(got) != 0 {
		t.Fatalf("before commit: %d updates reached the output; the cache should hold them", len(got))
	}
	d.Commit()
	got := out.ReadAll()
	if len(got) != 2 {
		t.Fatalf("after commit: %d updates, want one per word: %v", len(got), got)
	}
	m := map[string]int64{got[0].Key: got[0].Value, got[1].Key: got[1].Value}
	if m["a"] != 20 || m["b"] != 10 {
		t.Fatalf("counts %v", m)
	}
}

func TestStatelessOperators(t *testing.T) {
	b := stream.NewBuilder()
	src := stream.From(b, "in", serde.String(), serde.Int64())
	branches := src.
		Filter(func(_ string, v int64) (bool, error) { return v >= 0, nil }).
		MapValues(func(_ string, v int64) (int64, error) { return v * 10, nil }).
		Split([]func(string, int64) (bool, error){
			func(_ string, v int64) (bool, error) { return v >= 100, nil },
			func(string, int64) (bool, error) { return true, nil },
		})
	branches[0].To("big", serde.String(), serde.Int64())
	branches[1].
		Map(func(k string, v int64) (string, string, error) { return strings.ToUpper(k), fmt.Sprint(v), nil }).
		To("small", serde.String(), serde.String())
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "in", serde.String(), serde.Int64())
	for i, v := range []int64{-1, 5, 20, 7} {
		in.Pipe(fmt.Sprint("k", i), v, t0)
	}
	big := streamtest.ToMap(streamtest.Output(d, "big", serde.String(), serde.Int64()))
	small := streamtest.ToMap(streamtest.Output(d, "small", serde.String(), serde.String()))
	if !maps.Equal(big, map[string]int64{"k2": 200}) || !maps.Equal(small, map[string]string{"K1": "50", "K3": "70"}) {
		t.Fatalf("big %v small %v", big, small)
	}
}

type order struct {
	Product string
	Amount  float64
}

func TestStreamTableJoin(t *testing.T) {
	b := stream.NewBuilder()
	prices := stream.Table(b, "prices", serde.String(), serde.Float64(), stream.Named("prices"))
	stream.From(b, "orders", serde.String(), serde.JSON[order]()).
		SelectKey(func(_ string, o order) (string, error) { return o.Product, nil }).
		LeftJoin(prices, func(p string, o order, price *float64) (string, error) {
			if price == nil {
				return "no price for " + p, nil
			}
			return fmt.Sprintf("%s %.2f", p, o.Amount**price), nil
		}, serde.String(), serde.JSON[order]()).
		To("priced", serde.String(), serde.String())
	d := streamtest.New(t, b)
	streamtest.Input(d, "prices", serde.String(), serde.Float64()).Pipe("apple", 0.5, t0)
	orders := streamtest.Input(d, "orders", serde.String(), serde.JSON[order]())
	orders.Pipe("o1", order{"apple", 4}, t0)
	orders.Pipe("o2", order{"pear", 1}, t0)
	got := streamtest.Output(d, "priced", serde.String(), serde.String()).ReadAll()
	if len(got) != 2 || got[0].Value != "apple 2.00" || got[1].Value != "no price for pear" {
		t.Fatalf("joined %+v", got)
	}
}

func TestTableTableJoinAndFilter(t *testing.T) {
	b := stream.NewBuilder()
	names := stream.Table(b, "names", serde.String(), serde.String(), stream.Named("names"))
	ages := stream.Table(b, "ages", serde.String(), serde.Int64(), stream.Named("ages")).
		Filter(func(_ string, age int64) (bool, error) { return age >= 18, nil })
	names.Join(ages, func(_ string, n string, a int64) (string, error) { return fmt.Sprintf("%s (%d)", n, a), nil }).
		ToStream().To("adults", serde.String(), serde.String())
	d := streamtest.New(t, b)
	ni := streamtest.Input(d, "names", serde.String(), serde.String())
	ai := streamtest.Input(d, "ages", serde.String(), serde.Int64())
	out := streamtest.Output(d, "adults", serde.String(), serde.String())
	ni.Pipe("u1", "ann", t0)
	ai.Pipe("u1", 30, t0)
	ni.Pipe("u2", "bob", t0)
	ai.Pipe("u2", 12, t0)
	if got := streamtest.ToMap(out); !maps.Equal(got, map[string]string{"u1": "ann (30)"}) {
		t.Fatalf("adults %v", got)
	}
	ai.Pipe("u1", 10, t0) // no longer passes the filter: the row goes away
	if got := out.ReadAll(); len(got) != 1 || !got[0].Deleted || got[0].Key != "u1" {
		t.Fatalf("after u1 turned 10: %+v, want a deletion of u1", got)
	}
}

func TestDescribeShowsGeneratedAndGivenNames(t *testing.T) {
	b := stream.NewBuilder()
	wordCount(b)
	topo, err := b.Build("wc")
	if err != nil {
		t.Fatal(err)
	}
	desc := topo.Describe()
	for _, want := range []string{"Sub-topology: 0", "Sub-topology: 1", "KSTREAM-SOURCE-0000000000", "wc-KSTREAM-GROUPBY-0000000003-repartition",
		"Processor: counts (stores: [counts])", "Store: counts (changelog: wc-counts-changelog)"} {
		if !strings.Contains(desc, want) {
			t.Errorf("description lacks %q:\n%s", want, desc)
		}
	}
	if m := topo.Mermaid(); !strings.HasPrefix(m, "flowchart TD") || !strings.Contains(m, "store_counts") {
		t.Errorf("mermaid:\n%s", m)
	}
	if dot := topo.DOT(); !strings.Contains(dot, `"counts" -> "store-counts"`) {
		t.Errorf("dot:\n%s", dot)
	}
}

func TestBuildErrors(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "x", serde.String(), serde.String())
	s.To("y", serde.String(), serde.String(), stream.Named("dup"))
	s.To("z", serde.String(), serde.String(), stream.Named("dup"))
	if _, err := b.Build("app"); err == nil || !strings.Contains(err.Error(), `"dup"`) {
		t.Fatalf("duplicate names: %v", err)
	}
	b = stream.NewBuilder()
	stream.From(b, "x", serde.String(), serde.String())
	stream.From(b, "x", serde.String(), serde.String())
	if _, err := b.Build("app"); err == nil || !strings.Contains(err.Error(), "read by both") {
		t.Fatalf("topic read twice: %v", err)
	}
}

// TestMoreOperators covers FlatMap, Peek, Foreach, Merge, ToTopics,
// Repartition, ToTable, Reduce, KTable.MapValues and KTable.LeftJoin.
func TestMoreOperators(t *testing.T) {
	b := stream.NewBuilder()
	var peeked, visited int
	a := stream.From(b, "a", serde.String(), serde.String())
	c := stream.From(b, "c", serde.String(), serde.String())
	merged := a.Merge(c).
		FlatMap(func(k, v string) ([]stream.KeyValue[string, int64], error) {
			var out []stream.KeyValue[string, int64]
			for _, w := range strings.Fields(v) {
				out = append(out, stream.KeyValue[string, int64]{Key: w, Value: int64(len(w))})
			}
			return out, nil
		}).
		Peek(func(string, int64) error { peeked++; return nil }).
		Repartition(serde.String(), serde.Int64(), stream.Named("by-word"))
	merged.Foreach(func(string, int64) error { visited++; return nil })
	merged.ToTopics(func(k string, _ int64) (string, error) { return "len-" + k[:1], nil }, serde.String(), serde.Int64())
	sums := merged.GroupByKey(serde.String(), serde.Int64()).
		Reduce(func(x, y int64) (int64, error) { return x + y, nil }, stream.Named("sums"))
	latest := merged.ToTable(serde.String(), serde.Int64(), stream.Named("latest")).
		MapValues(func(_ string, n int64) (string, error) { return fmt.Sprint("len ", n), nil })
	sums.LeftJoin(latest, func(_ string, sum int64, l *string) (string, error) {
		if l == nil {
			return fmt.Sprint(sum, " / none"), nil
		}
		return fmt.Sprint(sum, " / ", *l), nil
	}).ToStream().To("joined", serde.String(), serde.String())

	d := streamtest.New(t, b)
	streamtest.Input(d, "a", serde.String(), serde.String()).Pipe("x", "go gopher", t0)
	streamtest.Input(d, "c", serde.String(), serde.String()).Pipe("y", "go", t0)
	if peeked != 3 || visited != 3 {
		t.Fatalf("peeked %d, visited %d; want 3 each", peeked, visited)
	}
	if n := len(d.Records("streamtest-by-word-repartition")); n != 3 {
		t.Fatalf("%d records through the repartition topic, want 3", n)
	}
	if got := streamtest.ToMap(streamtest.Output(d, "len-g", serde.String(), serde.Int64())); !maps.Equal(got, map[string]int64{"go": 2, "gopher": 6}) {
		t.Fatalf("len-g: %v", got)
	}
	joined := streamtest.ToMap(streamtest.Output(d, "joined", serde.String(), serde.String()))
	if joined["go"] != "4 / len 2" || joined["gopher"] != "6 / len 6" {
		t.Fatalf("joined %v", joined)
	}
}

// TestTableLeftJoinKeepsLeftRowWhenRightGoes: deleting the right row turns
// the joined row back into "left joined with nothing", not a deletion.
func TestTableLeftJoinKeepsLeftRowWhenRightGoes(t *testing.T) {
	b := stream.NewBuilder()
	l := stream.Table(b, "l", serde.String(), serde.String(), stream.Named("l"))
	r := stream.Table(b, "r", serde.String(), serde.String(), stream.Named("r"))
	l.LeftJoin(r, func(_ string, lv string, rv *string) (string, error) {
		if rv == nil {
			return lv + "/none", nil
		}
		return lv + "/" + *rv, nil
	}).ToStream().To("lj", serde.String(), serde.String())
	d := streamtest.New(t, b)
	li := streamtest.Input(d, "l", serde.String(), serde.String())
	ri := streamtest.Input(d, "r", serde.String(), serde.String())
	out := streamtest.Output(d, "lj", serde.String(), serde.String())
	li.Pipe("a", "L", t0)
	ri.Pipe("a", "R", t0)
	ri.PipeRaw([]byte("a"), nil, t0) // tombstone
	var got []string
	for _, kv := range out.ReadAll() {
		if kv.Deleted {
			got = append(got, "<deleted>")
		} else {
			got = append(got, kv.Value)
		}
	}
	if strings.Join(got, ",") != "L/none,L/R,L/none" {
		t.Fatalf("left join emitted %v, want L/none,L/R,L/none", got)
	}
}

// An out-of-order record's update carries that record's timestamp, not the
// task's stream time, so a later windowing step places it correctly.
func TestTableUpdatesCarryTheRecordTimestamp(t *testing.T) {
	b := stream.NewBuilder()
	wordCount(b)
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "lines", serde.String(), serde.String())
	out := streamtest.Output(d, "counts-out", serde.String(), serde.Int64())
	in.PipeValue("late", t0.Add(100*time.Second))
	in.PipeValue("late", t0.Add(10*time.Second))
	got := out.ReadAll()
	if len(got) != 2 || !got[1].Timestamp.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("updates %+v; the second should be stamped %v", got, t0.Add(10*time.Second))
	}
}
