package state

import (
	"bytes"
	"sync"
)

// memory is the in-memory Store: a skiplist under a read-write lock.
type memory struct {
	mu     sync.RWMutex
	list   *skiplist[[]byte]
	closed bool
}

// NewMemory returns an empty, ordered in-memory store. Get and Put cost
// O(log n), Range costs O(log n) to start and O(1) per step. It keeps nothing
// across restarts, so a task using it rebuilds it from the changelog every
// time; it suits small stores and tests.
func NewMemory() Store { return &memory{list: newSkiplist[[]byte]()} }

func (m *memory) Get(key []byte) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	if n := m.list.get(key); n != nil {
		// Values are never modified in place, but the caller owns what Get
		// returns and may modify it.
		return append([]byte{}, n.val...), nil
	}
	return nil, nil
}

func (m *memory) Put(key, value []byte) error {
	return m.Write([]Mutation{{Key: key, Value: value}})
}

func (m *memory) Delete(key []byte) error {
	return m.Write([]Mutation{{Key: key, Delete: true}})
}

func (m *memory) Write(batch []Mutation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, mu := range batch {
		if mu.Delete {
			m.list.delete(mu.Key)
			continue
		}
		// Fresh copies: the skiplist keeps both slices.
		m.list.put(bytes.Clone(nonNil(mu.Key)), append([]byte{}, mu.Value...))
	}
	return nil
}

func (m *memory) DeleteRange(start, end []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if emptyRange(start, end) {
		return nil
	}
	var doomed [][]byte
	for c := m.list.cursor(start, end); ; {
		n := c.next()
		if n == nil {
			break
		}
		doomed = append(doomed, n.key)
	}
	for _, k := range doomed {
		m.list.delete(k)
	}
	return nil
}

func (m *memory) Range(start, end []byte) (Iterator, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	if emptyRange(start, end) {
		return emptyIterator{}, nil
	}
	return &memoryIterator{m: m, c: m.list.cursor(bytes.Clone(start), bytes.Clone(end))}, nil
}

func (m *memory) Flush() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

func (m *memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	m.list = newSkiplist[[]byte]() // drop the data for the collector
	return nil
}

type memoryIterator struct {
	m          *memory
	c          *slCursor[[]byte]
	key, value []byte
	err        error
	done       bool
}

func (it *memoryIterator) Next() bool {
	if it.done {
		return false
	}
	it.m.mu.RLock()
	defer it.m.mu.RUnlock()
	if it.m.closed {
		it.err, it.done = ErrClosed, true
		return false
	}
	n := it.c.next()
	if n == nil {
		it.done, it.key, it.value = true, nil, nil
		return false
	}
	// Key and value slices are immutable once stored (Put replaces, never
	// modifies), so handing them out without copying is safe.
	it.key, it.value = n.key, n.val
	return true
}

func (it *memoryIterator) Key() []byte   { return it.key }
func (it *memoryIterator) Value() []byte { return it.value }
func (it *memoryIterator) Err() error    { return it.err }

func (it *memoryIterator) Close() error {
	it.done, it.key, it.value = true, nil, nil
	return it.err
}

// nonNil turns a nil key into the empty key, which is a valid key.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
