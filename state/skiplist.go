package state

import "bytes"

// skiplist is the ordered index behind the memory store and the record cache:
// O(log n) insert, delete and seek, and in-order iteration without copying.
// It is not safe for concurrent use; its owners lock around it.
//
// Iterators survive concurrent modification through version: every insert or
// delete bumps it, and a cursor that sees a newer version than the one it
// stepped under re-seeks by key instead of following a possibly unlinked node.
// Replacing a value in place does not change the structure or the version.
type skiplist[V any] struct {
	head    *slNode[V]
	height  int
	len     int
	version uint64
	rnd     uint64 // xorshift state for node heights; deterministic is fine
}

type slNode[V any] struct {
	key  []byte
	val  V
	next []*slNode[V]
}

// maxHeight bounds node height; with p = 1/4 it suits far more keys than
// a task's store holds in memory.
const maxHeight = 20

func newSkiplist[V any]() *skiplist[V] {
	return &skiplist[V]{
		head:   &slNode[V]{next: make([]*slNode[V], maxHeight)},
		height: 1,
		rnd:    0x9e3779b97f4a7c15,
	}
}

func (l *skiplist[V]) randomHeight() int {
	h := 1
	for h < maxHeight {
		l.rnd ^= l.rnd << 13
		l.rnd ^= l.rnd >> 7
		l.rnd ^= l.rnd << 17
		if l.rnd&3 != 0 {
			break
		}
		h++
	}
	return h
}

// findGE returns the first node with key >= key, or nil; if prev is not nil it
// receives, per level, the last node with key < key.
func (l *skiplist[V]) findGE(key []byte, prev []*slNode[V]) *slNode[V] {
	x := l.head
	for level := l.height - 1; level >= 0; level-- {
		for n := x.next[level]; n != nil && bytes.Compare(n.key, key) < 0; n = x.next[level] {
			x = n
		}
		if prev != nil {
			prev[level] = x
		}
	}
	return x.next[0]
}

// get returns the node holding key, or nil.
func (l *skiplist[V]) get(key []byte) *slNode[V] {
	if n := l.findGE(key, nil); n != nil && bytes.Equal(n.key, key) {
		return n
	}
	return nil
}

// put sets key to val and reports whether key was new. The key is kept, not
// copied: callers pass a slice they own.
func (l *skiplist[V]) put(key []byte, val V) (n *slNode[V], added bool) {
	var prev [maxHeight]*slNode[V]
	if n := l.findGE(key, prev[:]); n != nil && bytes.Equal(n.key, key) {
		n.val = val
		return n, false
	}
	h := l.randomHeight()
	if h > l.height {
		for level := l.height; level < h; level++ {
			prev[level] = l.head
		}
		l.height = h
	}
	n = &slNode[V]{key: key, val: val, next: make([]*slNode[V], h)}
	for level := range h {
		n.next[level] = prev[level].next[level]
		prev[level].next[level] = n
	}
	l.len++
	l.version++
	return n, true
}

// delete removes key and reports whether it was present.
func (l *skiplist[V]) delete(key []byte) bool {
	var prev [maxHeight]*slNode[V]
	n := l.findGE(key, prev[:])
	if n == nil || !bytes.Equal(n.key, key) {
		return false
	}
	for level := range n.next {
		prev[level].next[level] = n.next[level]
	}
	for l.height > 1 && l.head.next[l.height-1] == nil {
		l.height--
	}
	l.len--
	l.version++
	return true
}

// slCursor walks a skiplist in key order over [start, end). The owner of the
// list must hold its lock around each call.
type slCursor[V any] struct {
	list    *skiplist[V]
	start   []byte // nil: from the first key
	end     []byte // nil: through the last key
	node    *slNode[V]
	version uint64
	started bool
	done    bool
}

func (l *skiplist[V]) cursor(start, end []byte) *slCursor[V] {
	return &slCursor[V]{list: l, start: start, end: end}
}

// next advances to the next node in range and returns it, or nil at the end.
func (c *slCursor[V]) next() *slNode[V] {
	if c.done {
		return nil
	}
	var n *slNode[V]
	switch {
	case !c.started:
		c.started = true
		if c.start == nil {
			n = c.list.head.next[0]
		} else {
			n = c.list.findGE(c.start, nil)
		}
	case c.version != c.list.version:
		// The list changed since the last step: c.node may be unlinked, so
		// find the successor of its key afresh.
		n = c.list.findGE(c.node.key, nil)
		if n != nil && bytes.Equal(n.key, c.node.key) {
			n = n.next[0]
		}
	default:
		n = c.node.next[0]
	}
	if n == nil || (c.end != nil && bytes.Compare(n.key, c.end) >= 0) {
		c.done, c.node = true, nil
		return nil
	}
	c.node, c.version = n, c.list.version
	return n
}
