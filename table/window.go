package table

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/window"
)

// WindowedAggregate configures a windowed aggregation.
type WindowedAggregate struct {
	// Store is the window store of aggregates; Marks (EmitFinal only) is a
	// key-value store remembering which windows were already emitted, so a
	// restart does not emit them again.
	Store, Marks string
	Spec         window.Spec
	Emit         window.Emit
	// Retention is how long windows stay queryable after they start; at
	// least Spec.Retention().
	Retention time.Duration
	// Key encodes the group key; WindowKey decodes a window-store key into
	// the typed windowed key (window.Windowed[K]); Agg the aggregate.
	Key, WindowKey, Agg topology.Codec
	// Aggregator folds values into a window's aggregate.
	Aggregator Aggregator
}

// NewWindowedAggregate returns the processor factory of a windowed
// aggregation. Records whose window has closed (stream time past its end
// plus grace) are dropped and counted as "dropped-late-records". With
// EmitEveryUpdate the store's cache forwards changes on flush; with
// EmitFinal each closed window is forwarded once, in window order, as
// stream time passes its close time.
func NewWindowedAggregate(c WindowedAggregate) func() topology.Processor {
	return func() topology.Processor { return &windowAggregate{c: c} }
}

type windowAggregate struct {
	c   WindowedAggregate
	ctx topology.Context
	ws  *window.Store
	// emitted is the first window start not yet emitted (EmitFinal).
	emitted int64
	// emitAt and expireAt are the stream times at which the next window
	// can close and the next window start can age out. Stream time moves
	// with almost every record, but windows start only at multiples of
	// the size: before these times a scan for closed windows or an
	// expiry would find nothing, so Punctuate skips them.
	emitAt, expireAt int64
}

// marksKey is the one key of the marks store.
var marksKey = []byte("emitted-before")

func (a *windowAggregate) Init(ctx topology.Context) error {
	a.ctx = ctx
	a.ws = window.NewStore(ctx.Store(a.c.Store), a.c.Retention)
	a.expireAt = math.MinInt64 // the first punctuation expires what a restart left
	if a.c.Retention <= 0 {
		a.expireAt = math.MaxInt64 // windows are kept forever
	}
	if a.c.Emit != window.EmitFinal {
		return nil
	}
	raw, err := ctx.Store(a.c.Marks).Get(marksKey)
	if err != nil {
		return err
	}
	a.setEmitted(minStart)
	if len(raw) == 8 {
		a.setEmitted(int64(binary.BigEndian.Uint64(raw)))
	}
	return nil
}

// setEmitted records how far windows were emitted and when the next one
// closes: the first window starting at or after emitted closes at its
// start + size + grace.
func (a *windowAggregate) setEmitted(emitted int64) {
	a.emitted = emitted
	a.emitAt = a.nextStart(emitted) + a.c.Spec.Size().Milliseconds() + a.c.Spec.GracePeriod().Milliseconds()
}

// nextStart is the first window start at or after ms.
func (a *windowAggregate) nextStart(ms int64) int64 {
	start := a.c.Spec.WindowFor(time.UnixMilli(ms)).Start.UnixMilli()
	if start < ms {
		start += a.c.Spec.Size().Milliseconds()
	}
	return start
}

// minStart is before any window a record can fall in.
const minStart = -1 << 62

func (a *windowAggregate) Process(rec topology.Record) error {
	if rec.Key == nil {
		a.ctx.Count("dropped-null-key-records", 1)
		return nil
	}
	w := a.c.Spec.WindowFor(time.UnixMilli(rec.Timestamp))
	// A window already emitted is closed even when stream time says
	// otherwise (stream time restarts at -1 when a task restarts).
	emitted := a.c.Emit == window.EmitFinal && w.Start.UnixMilli() < a.emitted
	if emitted || a.c.Spec.Closed(w, time.UnixMilli(a.ctx.StreamTime())) {
		a.ctx.Count("dropped-late-records", 1)
		return nil
	}
	kb, err := a.c.Key.Serialize(rec.Key)
	if err != nil {
		return fmt.Errorf("serialize key: %w", err)
	}
	acc, err := a.current(kb, w.Start)
	if err != nil {
		return err
	}
	if acc, err = a.c.Aggregator.Add(rec.Key, rec.Value, acc); err != nil {
		return err
	}
	vb, err := a.c.Agg.Serialize(acc)
	if err != nil {
		return fmt.Errorf("serialize aggregate: %w", err)
	}
	return a.ws.Put(kb, w.Start, vb)
}

func (a *windowAggregate) current(kb []byte, start time.Time) (any, error) {
	raw, err := a.ws.Get(kb, start)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return a.c.Aggregator.Init()
	}
	v, err := a.c.Agg.Deserialize(raw)
	if err != nil {
		return nil, fmt.Errorf("decode stored aggregate: %w", err)
	}
	return v, nil
}

// Punctuate emits the windows that closed (EmitFinal) and expires old
// ones, when stream time has reached a window's close or expiry.
func (a *windowAggregate) Punctuate(streamTime int64) error {
	if a.c.Emit == window.EmitFinal && streamTime >= a.emitAt {
		if err := a.emitClosed(streamTime); err != nil {
			return err
		}
	}
	if streamTime < a.expireAt {
		return nil
	}
	if err := a.ws.Expire(time.UnixMilli(streamTime)); err != nil {
		return err
	}
	// Expire deleted the starts before streamTime - retention; the next
	// start ages out once the cutoff passes it.
	retention := a.c.Retention.Milliseconds()
	a.expireAt = a.nextStart(streamTime-retention) + retention + 1
	return nil
}

// emitClosed forwards every window closed by streamTime and not emitted
// yet, then records how far it got.
func (a *windowAggregate) emitClosed(streamTime int64) error {
	size, grace := a.c.Spec.Size().Milliseconds(), a.c.Spec.GracePeriod().Milliseconds()
	// A window starting at s is closed once s + size + grace <= streamTime.
	before := streamTime - size - grace + 1
	if before <= a.emitted {
		return nil
	}
	it, err := a.ws.FetchAll(time.UnixMilli(a.emitted), time.UnixMilli(before))
	if err != nil {
		return err
	}
	for it.Next() {
		if err := a.emitOne(it.Key(), it.Start(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	a.setEmitted(before)
	return a.ctx.Store(a.c.Marks).Put(marksKey, binary.BigEndian.AppendUint64(nil, uint64(before)))
}

func (a *windowAggregate) emitOne(key []byte, start time.Time, value []byte) error {
	wk, err := a.c.WindowKey.Deserialize(window.EncodeKey(key, start))
	if err != nil {
		return fmt.Errorf("decode window key: %w", err)
	}
	agg, err := a.c.Agg.Deserialize(value)
	if err != nil {
		return fmt.Errorf("decode aggregate: %w", err)
	}
	end := start.Add(a.c.Spec.Size()).UnixMilli()
	return a.ctx.Forward(topology.Record{Key: wk, Value: Change{New: agg}, Timestamp: end - 1})
}

func (a *windowAggregate) Close() error { return nil }

// WindowGetter reads a windowed table's value for a window.Windowed key.
func WindowGetter(store string, retention time.Duration, windowKey, agg topology.Codec) Getter {
	return func(ctx topology.Context, k any) (any, bool, error) {
		sk, err := windowKey.Serialize(k)
		if err != nil {
			return nil, false, err
		}
		raw, err := ctx.Store(store).Get(sk)
		if err != nil || raw == nil {
			return nil, false, err
		}
		v, err := agg.Deserialize(raw)
		return v, err == nil, err
	}
}
