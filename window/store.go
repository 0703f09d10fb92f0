package window

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/state"
)

// Store keeps one value per (key, window start) in a state.Store, at the byte
// level, so that the runtime and the `weir state windows` tooling can use it
// without knowing the user's types. See the package documentation for its key
// layout and the cost of each operation.
//
// A Store adds no locking of its own; it is as safe for concurrent use as the
// state.Store beneath it. Times are kept at millisecond precision.
type Store struct {
	s         state.Store
	retention time.Duration
	// cutoff is the smallest window start still retained, in milliseconds,
	// as of the last Expire; math.MinInt64 until then.
	cutoff atomic.Int64
}

// NewStore returns a window store over s keeping windows for retention after
// their start, measured in stream time (see Expire). A retention of 0 or less
// keeps windows forever. For a windowed aggregation the retention must be at
// least Spec.Retention (size + grace), or windows expire before they close.
//
// s may be a state.Cache: reads and writes then go through the record cache,
// and expiry bypasses it (Store.DeleteRange), so aged-out windows are not
// reported as deletions downstream.
func NewStore(s state.Store, retention time.Duration) *Store {
	w := &Store{s: s, retention: retention}
	w.cutoff.Store(math.MinInt64)
	return w
}

// Retention returns the store's retention.
func (w *Store) Retention() time.Duration { return w.retention }

// Put stores value for key's window starting at start. It fails with
// ErrExpired if that window has already expired.
func (w *Store) Put(key []byte, start time.Time, value []byte) error {
	ms := start.UnixMilli()
	if ms < w.cutoff.Load() {
		return fmt.Errorf("window: put window starting %s: %w", fromMillis(ms).Format(time.RFC3339Nano), ErrExpired)
	}
	return w.s.Put(encodeKey(key, ms), value)
}

// Get returns the value of key's window starting at start, or (nil, nil) if
// there is none (or it has expired).
func (w *Store) Get(key []byte, start time.Time) ([]byte, error) {
	ms := start.UnixMilli()
	if ms < w.cutoff.Load() {
		return nil, nil
	}
	return w.s.Get(encodeKey(key, ms))
}

// Delete removes key's window starting at start.
func (w *Store) Delete(key []byte, start time.Time) error {
	return w.s.Delete(encodeKey(key, start.UnixMilli()))
}

// Fetch returns an iterator over key's windows whose start lies in
// [from, to), in ascending start order.
//
// Its cost grows with the number of distinct window starts in the range, not
// with the number of keys: it seeks from one start to the next (see the
// package documentation). That suits windowed aggregations, whose windows
// start at multiples of the window size. The caller must Close the iterator.
func (w *Store) Fetch(key []byte, from, to time.Time) (Iterator, error) {
	lo, hi, ok := w.bounds(from, to)
	if !ok {
		return &fetchIterator{done: true}, nil
	}
	it, err := w.s.Range(timePrefix(lo), timePrefix(hi))
	if err != nil {
		return nil, err
	}
	return &fetchIterator{s: w.s, key: bytes.Clone(key), hi: hi, it: it}, nil
}

// FetchAll returns an iterator over every window whose start lies in
// [from, to), ordered by start and then by key: a single range scan. The
// runtime uses it to emit the results of windows that have just closed. The
// caller must Close the iterator.
func (w *Store) FetchAll(from, to time.Time) (Iterator, error) {
	lo, hi, ok := w.bounds(from, to)
	if !ok {
		return &allIterator{done: true}, nil
	}
	it, err := w.s.Range(timePrefix(lo), timePrefix(hi))
	if err != nil {
		return nil, err
	}
	return &allIterator{it: it}, nil
}

// bounds turns [from, to) into milliseconds, clipped to retained windows.
func (w *Store) bounds(from, to time.Time) (lo, hi int64, ok bool) {
	lo, hi = max(from.UnixMilli(), w.cutoff.Load()), to.UnixMilli()
	return lo, hi, lo < hi
}

// Expire deletes the windows whose start is more than the retention before
// streamTime: those with start < streamTime - retention. The window starting
// exactly at streamTime - retention — for a retention of size + grace, the one
// that has just closed — is kept, so that its final result can still be read;
// emit final results before calling Expire.
//
// Expiry is a range deletion over the oldest end of the store (Store.DeleteRange),
// so its cost is proportional to the windows expired. Stream time never goes
// backwards; an earlier streamTime than a previous call's is ignored.
func (w *Store) Expire(streamTime time.Time) error {
	if w.retention <= 0 {
		return nil
	}
	cutoff := streamTime.UnixMilli() - w.retention.Milliseconds()
	prev := w.cutoff.Load()
	if cutoff <= prev {
		return nil
	}
	// Everything before the previous cutoff is gone already; starting the
	// deletion there skips the tombstones earlier expiries left in LevelDB.
	var from []byte
	if prev != math.MinInt64 {
		from = timePrefix(prev)
	}
	if err := w.s.DeleteRange(from, timePrefix(cutoff)); err != nil {
		return fmt.Errorf("window: expire: %w", err)
	}
	w.cutoff.Store(cutoff)
	return nil
}

// Iterator walks windows of a Store. Use it like a state.Iterator:
//
//	it, err := ws.FetchAll(from, to)
//	...
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Start(), it.Value())
//	}
//	err = it.Err()
type Iterator interface {
	// Next advances to the next window and reports whether there is one.
	Next() bool
	// Key returns the current window's key. It, like Value, is valid until
	// the next call to Next and must not be modified.
	Key() []byte
	// Start returns the current window's start.
	Start() time.Time
	// Value returns the current window's value.
	Value() []byte
	// Err returns the error that ended iteration early, if any.
	Err() error
	// Close releases the iterator and returns Err.
	Close() error
}

// allIterator decodes a plain range scan.
type allIterator struct {
	it    state.Iterator
	key   []byte
	start int64
	err   error
	done  bool
}

func (a *allIterator) Next() bool {
	if a.done {
		return false
	}
	if !a.it.Next() {
		a.finish(a.it.Err())
		return false
	}
	key, start, err := decodeKey(a.it.Key())
	if err != nil {
		a.finish(err)
		return false
	}
	a.key, a.start = key, start
	return true
}

func (a *allIterator) finish(err error) {
	a.done, a.err, a.key = true, err, nil
	if a.it != nil {
		if cerr := a.it.Close(); a.err == nil {
			a.err = cerr
		}
		a.it = nil
	}
}

func (a *allIterator) Key() []byte      { return a.key }
func (a *allIterator) Start() time.Time { return fromMillis(a.start) }
func (a *allIterator) Value() []byte {
	if a.done {
		return nil
	}
	return a.it.Value()
}
func (a *allIterator) Err() error { return a.err }

func (a *allIterator) Close() error {
	if !a.done {
		a.finish(nil)
	}
	return a.err
}

// scanBudget is how many entries of other keys fetchIterator steps over
// before it seeks instead: stepping is cheaper than opening an iterator
// when a window start holds only a few keys.
const scanBudget = 8

// fetchIterator finds one key's windows in a start-first layout by skipping:
// within a window start it seeks to the key; past the key it seeks to the
// next start.
type fetchIterator struct {
	s     state.Store
	key   []byte
	hi    int64 // exclusive upper bound on starts, in milliseconds
	it    state.Iterator
	start int64
	value []byte
	err   error
	done  bool
}

func (f *fetchIterator) Next() bool {
	budget := scanBudget
	for !f.done {
		if !f.it.Next() {
			f.finish(f.it.Err())
			return false
		}
		key, start, err := decodeKey(f.it.Key())
		if err != nil {
			f.finish(err)
			return false
		}
		cmp := bytes.Compare(key, f.key)
		switch {
		case cmp == 0:
			f.start, f.value = start, f.it.Value()
			return true
		case budget > 0:
			budget--
		case cmp < 0:
			f.seek(encodeKey(f.key, start)) // our key at this start, if there
			budget = scanBudget
		case start == math.MaxInt64:
			f.finish(nil)
		default:
			f.seek(timePrefix(start + 1)) // past our key: the next start
			budget = scanBudget
		}
	}
	return false
}

// seek replaces the underlying iterator with one starting at from.
func (f *fetchIterator) seek(from []byte) {
	if err := f.it.Close(); err != nil {
		f.finish(err)
		return
	}
	f.it = nil
	it, err := f.s.Range(from, timePrefix(f.hi))
	if err != nil {
		f.finish(err)
		return
	}
	f.it = it
}

func (f *fetchIterator) finish(err error) {
	f.done, f.err, f.value = true, err, nil
	if f.it != nil {
		if cerr := f.it.Close(); f.err == nil {
			f.err = cerr
		}
		f.it = nil
	}
}

func (f *fetchIterator) Key() []byte {
	if f.done {
		return nil
	}
	return f.key
}
func (f *fetchIterator) Start() time.Time { return fromMillis(f.start) }
func (f *fetchIterator) Value() []byte    { return f.value }
func (f *fetchIterator) Err() error       { return f.err }

func (f *fetchIterator) Close() error {
	if !f.done {
		f.finish(nil)
	}
	return f.err
}

// EncodeKey returns the store key of key's window starting at start: the
// start, as 8 bytes big-endian milliseconds since the epoch with the sign bit
// flipped (so that pre-1970 starts sort first), followed by the key bytes.
func EncodeKey(key []byte, start time.Time) []byte {
	return encodeKey(key, start.UnixMilli())
}

// DecodeKey splits a store key made by EncodeKey. The returned key aliases b.
// Keys shorter than 8 bytes fail with an error wrapping serde.ErrDecode.
func DecodeKey(b []byte) (key []byte, start time.Time, err error) {
	key, ms, err := decodeKey(b)
	if err != nil {
		return nil, time.Time{}, err
	}
	return key, fromMillis(ms), nil
}

const signBit = 1 << 63

func encodeKey(key []byte, startMs int64) []byte {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(startMs)^signBit)
	return append(b, key...)
}

// timePrefix is the smallest store key of windows starting at startMs.
func timePrefix(startMs int64) []byte { return encodeKey(nil, startMs) }

func decodeKey(b []byte) (key []byte, startMs int64, err error) {
	if len(b) < 8 {
		return nil, 0, serde.DecodeError(fmt.Sprintf("window: store key needs at least 8 bytes, got %d", len(b)), nil)
	}
	return b[8:], int64(binary.BigEndian.Uint64(b) ^ signBit), nil
}
