package state

import (
	"bytes"
	"errors"
)

// Errors returned by stores, caches and checkpoints. Errors that come from the
// storage engine are wrapped, so errors.Is sees both these and the cause.
var (
	// ErrClosed reports use of a store or iterator after Close.
	ErrClosed = errors.New("state: store closed")
	// ErrCorrupt reports a store whose files on disk are damaged. The store
	// cannot be used; delete its directory and restore it from its changelog.
	ErrCorrupt = errors.New("state: store corrupt")
	// ErrLocked reports a LevelDB store that is already open, in this or
	// another process: LevelDB allows one user at a time.
	ErrLocked = errors.New("state: store is in use")
	// ErrCorruptCheckpoint reports a checkpoint file that does not parse.
	ErrCorruptCheckpoint = errors.New("state: checkpoint corrupt")
	// ErrReentrant reports a write to a Cache from inside its own onFlush
	// callback. Forwarding a flushed update must not write back into the store
	// being flushed; a topology in which it does has a cycle.
	ErrReentrant = errors.New("state: cache written during its own flush")
)

// Store is a sorted byte-level key-value store owned by one task.
//
// Keys are ordered bytewise (bytes.Compare). Stores copy the keys and values
// they are given, so callers may reuse their buffers, and slices a store
// returns from Get belong to the caller.
//
// A Store is safe for concurrent use; see Cache for the one restriction it adds.
type Store interface {
	// Get returns the value stored under key, or (nil, nil) when key is absent.
	// A present empty value is returned as a non-nil empty slice, so
	// v == nil tests for absence.
	Get(key []byte) ([]byte, error)

	// Put stores value under key, replacing any previous value. A nil value is
	// stored as an empty value; use Delete to remove a key.
	Put(key, value []byte) error

	// Delete removes key. Deleting an absent key is not an error.
	Delete(key []byte) error

	// Range returns an iterator over the keys in [start, end) in ascending
	// order. A nil start means from the first key; a nil end means through the
	// last key. The caller must Close the iterator.
	//
	// Iterators are weakly consistent: writes made while an iterator is open
	// may or may not be visible to it, but it never returns a key twice or out
	// of order, and writing (deleting the keys already seen, say) while
	// iterating is allowed.
	Range(start, end []byte) (Iterator, error)

	// Write applies the mutations atomically, in order: when a key appears
	// more than once, the last mutation wins.
	Write(batch []Mutation) error

	// DeleteRange removes every key in [start, end), with Range's meaning of
	// nil bounds. It is how data ages out (window retention), not an update:
	// a Cache applies it to its store without reporting the deletions to
	// onFlush.
	DeleteRange(start, end []byte) error

	// Flush makes the writes made so far durable. An in-memory store has
	// nothing to do.
	Flush() error

	// Close releases the store. Close every iterator first; later calls
	// return ErrClosed.
	Close() error
}

// Mutation is one write in a batch given to Store.Write.
type Mutation struct {
	Key    []byte
	Value  []byte // ignored when Delete is set
	Delete bool
}

// Iterator walks a range of a Store in ascending key order.
//
//	it, err := s.Range(start, end)
//	if err != nil { ... }
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
type Iterator interface {
	// Next advances to the next entry and reports whether there is one.
	Next() bool
	// Key returns the current key. It is valid until the next call to Next
	// and must not be modified.
	Key() []byte
	// Value returns the current value, under the same terms as Key.
	Value() []byte
	// Err returns the error that ended iteration early, if any.
	Err() error
	// Close releases the iterator and returns Err.
	Close() error
}

// PrefixRange returns the [start, end) bounds that Range needs to visit
// exactly the keys that begin with prefix. For an empty prefix (or one made
// only of 0xff bytes) end is nil: the range runs to the last key.
func PrefixRange(prefix []byte) (start, end []byte) {
	start = bytes.Clone(prefix)
	if start == nil {
		start = []byte{}
	}
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end = append(bytes.Clone(prefix[:i]), prefix[i]+1)
			return start, end
		}
	}
	return start, nil
}

// emptyRange reports whether [start, end) cannot contain a key: a non-nil end
// that does not sort after start (nil start sorts first, like the empty key).
func emptyRange(start, end []byte) bool {
	return end != nil && bytes.Compare(start, end) >= 0
}

// emptyIterator is the iterator over a range that holds nothing; err, if set,
// is what iteration ended with.
type emptyIterator struct{ err error }

func (it emptyIterator) Next() bool    { return false }
func (it emptyIterator) Key() []byte   { return nil }
func (it emptyIterator) Value() []byte { return nil }
func (it emptyIterator) Err() error    { return it.err }
func (it emptyIterator) Close() error  { return it.err }
