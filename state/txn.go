package state

import (
	"bytes"
	"sync"
)

// TxnStore is a transactional Store (in the spirit of Kafka's KIP-892): it
// holds every write in an in-memory overlay of uncommitted changes until
// Commit writes them to the store beneath in one atomic Store.Write and
// makes them durable, or Abort drops them. Reads see the overlay over the
// store — a task reads its own writes — with deletions kept in the overlay
// as tombstones that hide the store's value; Range merges the two.
//
// The exactly-once runtime puts one in front of each of a task's LevelDB
// stores and commits it only after the Kafka transaction holding the
// task's changelog records has committed. The store on disk therefore never
// holds a write whose transaction may still abort: a crash loses the
// overlay, which is what the aborted (or never committed) transaction
// wrote, and restoration replays only the committed changelog tail after
// the checkpoint, instead of wiping the store as Kafka Streams must.
//
// Flush does not commit: uncommitted writes are not meant to be durable.
// Close drops the overlay and closes the store beneath. DeleteRange
// writes a tombstone in the overlay for every key it finds in the range, so
// it costs memory in proportion to the keys it deletes until Commit.
//
// Like the other stores, a TxnStore is safe for concurrent use; the
// runtime writes it from one task at a time and calls Commit or Abort while
// that task is idle.
type TxnStore struct {
	mu      sync.RWMutex
	base    Store
	overlay *skiplist[txnValue]
	bytes   int
	// epoch moves when Commit or Abort replaces the overlay, so that open
	// iterators re-read both sides past their last key.
	epoch  uint64
	closed bool
}

// txnValue is an uncommitted write: a value or a tombstone.
type txnValue struct {
	value   []byte
	deleted bool
}

// NewTxnStore returns a transactional store over base, which it owns from
// now on: closing it closes base. Every write to base must go through it.
func NewTxnStore(base Store) *TxnStore {
	return &TxnStore{base: base, overlay: newSkiplist[txnValue]()}
}

// Base returns the store beneath: the committed state.
func (s *TxnStore) Base() Store { return s.base }

// Uncommitted returns how many keys the overlay holds and their estimated
// size in bytes.
func (s *TxnStore) Uncommitted() (keys, bytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.overlay.len, s.bytes
}

func (s *TxnStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	if n := s.overlay.get(key); n != nil {
		s.mu.RUnlock()
		if n.val.deleted {
			return nil, nil
		}
		return append([]byte{}, n.val.value...), nil
	}
	// Reading the base under the read lock keeps a concurrent Commit from
	// slipping between the overlay miss and the base read.
	defer s.mu.RUnlock()
	return s.base.Get(key)
}

func (s *TxnStore) Put(key, value []byte) error {
	return s.Write([]Mutation{{Key: key, Value: value}})
}

func (s *TxnStore) Delete(key []byte) error {
	return s.Write([]Mutation{{Key: key, Delete: true}})
}

func (s *TxnStore) Write(batch []Mutation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, m := range batch {
		v := txnValue{deleted: m.Delete}
		if !m.Delete {
			v.value = append([]byte{}, m.Value...)
		}
		s.set(m.Key, v)
	}
	return nil
}

// set records an uncommitted write. Caller holds mu for writing.
func (s *TxnStore) set(key []byte, v txnValue) {
	if n := s.overlay.get(key); n != nil {
		s.bytes += len(v.value) - len(n.val.value)
		n.val = v // in place: the list's structure (and version) stay
		return
	}
	k := bytes.Clone(nonNil(key))
	s.overlay.put(k, v)
	s.bytes += txnEntryOverhead + len(k) + len(v.value)
}

// txnEntryOverhead approximates an overlay entry's cost beyond its bytes.
const txnEntryOverhead = 64

func (s *TxnStore) DeleteRange(start, end []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if emptyRange(start, end) {
		return nil
	}
	// The base keeps its committed keys until Commit: hide each under a
	// tombstone. Overlay entries in the range become tombstones too.
	it, err := s.base.Range(start, end)
	if err != nil {
		return err
	}
	var doomed [][]byte
	for it.Next() {
		doomed = append(doomed, bytes.Clone(it.Key()))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for c := s.overlay.cursor(start, end); ; {
		n := c.next()
		if n == nil {
			break
		}
		if !n.val.deleted {
			s.bytes -= len(n.val.value)
			n.val = txnValue{deleted: true}
		}
	}
	for _, k := range doomed {
		s.set(k, txnValue{deleted: true})
	}
	return nil
}

func (s *TxnStore) Range(start, end []byte) (Iterator, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if emptyRange(start, end) {
		return emptyIterator{}, nil
	}
	start, end = bytes.Clone(start), bytes.Clone(end)
	bit, err := s.base.Range(start, end)
	if err != nil {
		return nil, err
	}
	return &txnIterator{s: s, start: start, end: end, cur: s.overlay.cursor(start, end), base: bit,
		epoch: s.epoch, needOver: true, needBase: true}, nil
}

// Flush does nothing but report a closed store: uncommitted writes become
// durable only through Commit.
func (s *TxnStore) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Commit writes the uncommitted changes to the store beneath in one
// atomic batch, in key order, flushes it (fsync for LevelDB) and starts a
// new, empty overlay. If the write fails the overlay is kept, and the
// store beneath holds none of it (a LevelDB batch applies whole or not at
// all); if the flush fails the writes are applied but perhaps not durable,
// so the caller must not write a checkpoint that counts them.
func (s *TxnStore) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.overlay.len > 0 {
		batch := make([]Mutation, 0, s.overlay.len)
		for c := s.overlay.cursor(nil, nil); ; {
			n := c.next()
			if n == nil {
				break
			}
			batch = append(batch, Mutation{Key: n.key, Value: n.val.value, Delete: n.val.deleted})
		}
		if err := s.base.Write(batch); err != nil {
			return err
		}
		s.reset()
	}
	return s.base.Flush()
}

// Abort drops the uncommitted changes: reads see the store beneath again.
func (s *TxnStore) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlay.len > 0 {
		s.reset()
	}
}

func (s *TxnStore) reset() {
	s.overlay, s.bytes = newSkiplist[txnValue](), 0
	s.epoch++
}

// Close drops the uncommitted changes and closes the store beneath.
func (s *TxnStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.reset()
	return s.base.Close()
}

// txnIterator merges the overlay with an iterator over the store beneath;
// the overlay wins ties, and its tombstones hide keys. When Commit or Abort
// replaces the overlay, both sides are reopened just past the last key
// returned, as the cache's iterator does.
type txnIterator struct {
	s          *TxnStore
	start, end []byte
	cur        *slCursor[txnValue]
	base       Iterator
	epoch      uint64

	needOver, needBase bool
	overOK, baseOK     bool
	ok, ov             []byte // the overlay candidate's key and value
	oDeleted           bool

	key, value []byte
	returned   bool
	err        error
	done       bool
}

func (it *txnIterator) Next() bool {
	if it.done {
		return false
	}
	for {
		if err := it.fill(); err != nil {
			it.finish(err)
			return false
		}
		if !it.overOK && !it.baseOK {
			it.finish(nil)
			return false
		}
		cmp := 1 // <= 0: the overlay is next; > 0: the base
		if it.overOK {
			cmp = -1
			if it.baseOK {
				cmp = bytes.Compare(it.ok, it.base.Key())
			}
		}
		if cmp > 0 {
			it.key, it.value, it.returned = it.base.Key(), it.base.Value(), true
			it.needBase = true
			return true
		}
		it.needOver = true
		if cmp == 0 {
			it.needBase = true // shadowed by the overlay
		}
		if !it.oDeleted {
			it.key, it.value, it.returned = it.ok, it.ov, true
			return true
		}
	}
}

// fill fetches the next candidate of each side that needs one.
func (it *txnIterator) fill() error {
	s := it.s
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	var reopened Iterator
	var err error
	if s.epoch != it.epoch {
		it.epoch = s.epoch
		from := it.start
		if it.returned {
			it.key = bytes.Clone(it.key) // it may point into the old base iterator
			from = append(bytes.Clone(it.key), 0)
		}
		it.cur = s.overlay.cursor(from, it.end)
		it.needOver = true
		if reopened, err = s.base.Range(from, it.end); err != nil {
			s.mu.RUnlock()
			return err
		}
	}
	if it.needOver {
		it.needOver, it.overOK = false, false
		if n := it.cur.next(); n != nil {
			// Overlay values are replaced, never modified in place.
			it.ok, it.ov, it.oDeleted, it.overOK = n.key, n.val.value, n.val.deleted, true
		}
	}
	s.mu.RUnlock()
	if reopened != nil {
		_ = it.base.Close()
		it.base, it.needBase = reopened, true
	}
	if it.needBase {
		it.needBase = false
		it.baseOK = it.base.Next()
		if !it.baseOK {
			if err := it.base.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (it *txnIterator) finish(err error) {
	it.done, it.err = true, err
	it.key, it.value = nil, nil
	if cerr := it.base.Close(); it.err == nil {
		it.err = cerr
	}
}

func (it *txnIterator) Key() []byte   { return it.key }
func (it *txnIterator) Value() []byte { return it.value }
func (it *txnIterator) Err() error    { return it.err }

func (it *txnIterator) Close() error {
	if !it.done {
		it.finish(nil)
	}
	return it.err
}
