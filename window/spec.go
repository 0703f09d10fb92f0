package window

import (
	"errors"
	"fmt"
	"time"
)

// Errors of this package.
var (
	// ErrInvalidSpec reports a window specification that cannot be used.
	ErrInvalidSpec = errors.New("window: invalid spec")
	// ErrExpired reports a write to a window that has already aged out of
	// its store: the stream time has passed its start by more than the
	// store's retention.
	ErrExpired = errors.New("window: window expired")
)

// Spec describes how records are grouped into windows by event time.
// Build one with Tumbling and refine it with Grace:
//
//	window.Tumbling(time.Minute).Grace(10 * time.Second)
//
// A Spec is a small value; its methods return modified copies. Its fields are
// unexported so that specs are built only through the constructors (and
// methods such as Grace cannot collide with field names); read them with Size
// and GracePeriod.
type Spec struct {
	size  time.Duration
	grace time.Duration
}

// Tumbling returns the spec of fixed-size, non-overlapping, gap-free windows:
// [0, size), [size, 2·size), ... counted from the Unix epoch, as in Kafka
// Streams, so every instance and every restart agrees on the boundaries. Size
// must be a positive whole number of milliseconds (the precision of Kafka
// timestamps); Validate reports a spec that is not.
//
// The grace period is 0 until set with Grace: a window accepts no records once
// stream time reaches its end. (Kafka Streams 3.0+ makes callers choose between
// ofSizeWithNoGrace and ofSizeAndGrace; 0 is the no-grace choice.)
func Tumbling(size time.Duration) Spec { return Spec{size: size} }

// Grace returns a copy of s whose windows keep accepting out-of-order records
// until stream time reaches end+g. Late records within the grace period update
// their window; after it they are dropped and counted.
func (s Spec) Grace(g time.Duration) Spec {
	s.grace = g
	return s
}

// Size returns the length of each window.
func (s Spec) Size() time.Duration { return s.size }

// GracePeriod returns how long after its end a window still accepts records.
func (s Spec) GracePeriod() time.Duration { return s.grace }

// Validate reports whether s can be used. The stream Builder calls it, so a bad
// spec fails the topology's build rather than its first record.
func (s Spec) Validate() error {
	switch {
	case s.size <= 0:
		return fmt.Errorf("window: size must be positive, got %v: %w", s.size, ErrInvalidSpec)
	case s.size%time.Millisecond != 0:
		return fmt.Errorf("window: size must be a whole number of milliseconds, got %v: %w", s.size, ErrInvalidSpec)
	case s.grace < 0:
		return fmt.Errorf("window: grace must not be negative, got %v: %w", s.grace, ErrInvalidSpec)
	}
	return nil
}

// WindowFor returns the window that contains ts:
// [floor(ts/size)·size, +size), at millisecond precision, in UTC. Timestamps
// before 1970 round down too. It panics if s is not valid: check Validate first.
func (s Spec) WindowFor(ts time.Time) Window {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	size := s.size.Milliseconds()
	ms := ts.UnixMilli()
	start := ms - ((ms%size)+size)%size // floor, also for negative ms
	return Window{Start: fromMillis(start), End: fromMillis(start + size)}
}

// CloseTime returns the stream time at which w closes: its end plus the grace
// period. From then on the window accepts no records, and with EmitFinal its
// result is emitted.
func (s Spec) CloseTime(w Window) time.Time { return w.End.Add(s.grace) }

// Closed reports whether w has closed at the given stream time, that is
// whether streamTime >= w.End + grace.
func (s Spec) Closed(w Window, streamTime time.Time) bool {
	return !streamTime.Before(s.CloseTime(w))
}

// Retention returns the shortest time a window store must keep a window after
// its start for the window to stay available until it closes: size + grace.
func (s Spec) Retention() time.Duration { return s.size + s.grace }

// String describes s, as in "tumbling 1m0s grace 10s".
func (s Spec) String() string {
	return fmt.Sprintf("tumbling %v grace %v", s.size, s.grace)
}

// Window is a half-open interval of event time, [Start, End).
type Window struct {
	Start, End time.Time
}

// Contains reports whether ts falls in [w.Start, w.End).
func (w Window) Contains(ts time.Time) bool {
	return !ts.Before(w.Start) && ts.Before(w.End)
}

// String formats w as "[start,end)" with RFC 3339 UTC times (fractional
// seconds only when present).
func (w Window) String() string {
	return "[" + w.Start.UTC().Format(time.RFC3339Nano) + "," + w.End.UTC().Format(time.RFC3339Nano) + ")"
}

// Emit says when a windowed aggregation sends its results downstream.
type Emit int

const (
	// EmitEveryUpdate sends the window's new value after updates, smoothed by
	// the record cache: at most one update per window per commit interval
	// (fewer when the cache is disabled). Results are fast but provisional.
	// It is the default, as in Kafka Streams.
	EmitEveryUpdate Emit = iota
	// EmitFinal sends each window's result exactly once, when the window
	// closes (stream time >= end + grace). Results are late but final, like
	// Kafka Streams' emitStrategy(onWindowClose()). Stream time only advances
	// with records, so a partition that goes quiet holds back its last
	// windows until its next record.
	EmitFinal
)

// String returns "every-update" or "final".
func (e Emit) String() string {
	switch e {
	case EmitEveryUpdate:
		return "every-update"
	case EmitFinal:
		return "final"
	}
	return fmt.Sprintf("Emit(%d)", int(e))
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
