package table

import (
	"encoding/binary"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// fakeCtx is a task context with in-memory stores and a settable stream
// time.
type fakeCtx struct {
	stores     map[string]state.Store
	streamTime int64
	counts     map[string]int64
	forwarded  []topology.Record
}

func (c *fakeCtx) Forward(rec topology.Record) error {
	c.forwarded = append(c.forwarded, rec)
	return nil
}
func (c *fakeCtx) ForwardTo(_ string, rec topology.Record) error { return c.Forward(rec) }
func (c *fakeCtx) Store(name string) state.Store                 { return c.stores[name] }
func (c *fakeCtx) StreamTime() int64                             { return c.streamTime }
func (c *fakeCtx) Partition() int32                              { return 0 }
func (c *fakeCtx) Count(m string, n int64)                       { c.counts[m] += n }
func (c *fakeCtx) Logger() *slog.Logger                          { return slog.Default() }

var stringCodec = topology.Codec{
	Name:        "string",
	Serialize:   func(v any) ([]byte, error) { return []byte(v.(string)), nil },
	Deserialize: func(b []byte) (any, error) { return string(b), nil },
}

var int64Codec = topology.Codec{
	Name:        "int64",
	Serialize:   func(v any) ([]byte, error) { return binary.BigEndian.AppendUint64(nil, uint64(v.(int64))), nil },
	Deserialize: func(b []byte) (any, error) { return int64(binary.BigEndian.Uint64(b)), nil },
}

// TestRestartedTaskDropsRecordsOfEmittedWindows: a restarted task's stream
// time is -1, yet a window whose final result was emitted before the
// restart must not take records: its result could never be emitted again.
func TestRestartedTaskDropsRecordsOfEmittedWindows(t *testing.T) {
	spec := window.Tumbling(time.Minute)
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixMilli()
	ctx := &fakeCtx{stores: map[string]state.Store{"w": state.NewMemory(), "marks": state.NewMemory()},
		streamTime: -1, counts: map[string]int64{}}
	// The marks store as the previous run left it: 12:00 emitted.
	ctx.stores["marks"].Put(marksKey, binary.BigEndian.AppendUint64(nil, uint64(base+60_000)))
	p := NewWindowedAggregate(WindowedAggregate{
		Store: "w", Marks: "marks", Spec: spec, Emit: window.EmitFinal, Retention: time.Hour,
		Key: stringCodec, WindowKey: stringCodec, Agg: int64Codec,
		Aggregator: Aggregator{
			Init: func() (any, error) { return int64(0), nil },
			Add:  func(_, _, agg any) (any, error) { return agg.(int64) + 1, nil },
		},
	})()
	if err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ctx.streamTime = base + 20_000
	if err := p.Process(topology.Record{Key: "eu", Value: "x", Timestamp: base + 20_000}); err != nil {
		t.Fatal(err)
	}
	if ctx.counts["dropped-late-records"] != 1 {
		t.Fatalf("a record for the emitted 12:00 window was accepted after restart (dropped %d)", ctx.counts["dropped-late-records"])
	}
	ctx.streamTime = base + 70_000
	if err := p.Process(topology.Record{Key: "eu", Value: "x", Timestamp: base + 70_000}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := window.NewStore(ctx.stores["w"], 0).Get([]byte("eu"), time.UnixMilli(base+60_000)); raw == nil {
		t.Fatal("a record for the open 12:01 window was not aggregated")
	}
}

// scanCounter counts the scans and range deletions of a store.
type scanCounter struct {
	state.Store
	ranges, deletes int
}

func (s *scanCounter) Range(start, end []byte) (state.Iterator, error) {
	s.ranges++
	return s.Store.Range(start, end)
}

func (s *scanCounter) DeleteRange(start, end []byte) error {
	s.deletes++
	return s.Store.DeleteRange(start, end)
}

// TestPunctuateScansOnlyAtWindowBoundaries: stream time moves with every
// record, but windows close and expire only at multiples of the size, so
// the aggregation scans for closed windows and expires old ones once per
// boundary rather than once per record — and still emits every window
// once, in order, as soon as it closes.
func TestPunctuateScansOnlyAtWindowBoundaries(t *testing.T) {
	spec := window.Tumbling(time.Minute).Grace(10 * time.Second)
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixMilli()
	ws := &scanCounter{Store: state.NewMemory()}
	ctx := &fakeCtx{stores: map[string]state.Store{"w": ws, "marks": state.NewMemory()},
		streamTime: -1, counts: map[string]int64{}}
	p := NewWindowedAggregate(WindowedAggregate{
		Store: "w", Marks: "marks", Spec: spec, Emit: window.EmitFinal, Retention: spec.Retention(),
		Key: stringCodec, WindowKey: windowKeyCodec, Agg: int64Codec,
		Aggregator: Aggregator{
			Init: func() (any, error) { return int64(0), nil },
			Add:  func(_, _, agg any) (any, error) { return agg.(int64) + 1, nil },
		},
	})()
	if err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	pu := p.(topology.Punctuator)
	const step, records = 100, 5 * 600 // 100 ms apart: five minutes
	for i := range records {
		ts := base + int64(i)*step
		ctx.streamTime = ts
		if err := p.Process(topology.Record{Key: "eu", Value: "x", Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
		if err := pu.Punctuate(ts); err != nil {
			t.Fatal(err)
		}
	}
	// 12:00 to 12:03 closed (12:04 closes at 12:05:10, after the input).
	var starts []int64
	for _, rec := range ctx.forwarded {
		starts = append(starts, rec.Key.(int64))
		if n := rec.Value.(Change).New.(int64); n != 600 {
			t.Errorf("window %d: %d records, want 600", len(starts)-1, n)
		}
	}
	want := []int64{base, base + 60_000, base + 120_000, base + 180_000}
	if !slices.Equal(starts, want) {
		t.Fatalf("emitted windows starting %v, want %v", starts, want)
	}
	// The first punctuation scans and expires; after it, each happens
	// at most once per window size of stream time.
	bound := records*step/int(spec.Size().Milliseconds()) + 1
	if ws.ranges > bound {
		t.Errorf("%d scans over %d records, want at most %d", ws.ranges, records, bound)
	}
	if ws.deletes > bound {
		t.Errorf("%d range deletions over %d records, want at most %d", ws.deletes, records, bound)
	}
}

// windowKeyCodec decodes a window-store key to its window's start in
// milliseconds, enough to tell the emitted windows apart.
var windowKeyCodec = topology.Codec{
	Name: "window-start",
	Deserialize: func(b []byte) (any, error) {
		_, start, err := window.DecodeKey(b)
		return start.UnixMilli(), err
	},
}
