package state

import (
	"bytes"
	"fmt"
	"sync"
)

// Dirty is one update the Cache hands to its onFlush callback.
type Dirty struct {
	Key []byte
	// Value is the new value; nil when Delete is set.
	Value []byte
	// Old is the value the store held before this flush interval began: nil
	// if the key was absent, a non-nil (possibly empty) slice if it was
	// present. With Value it forms the old/new change pair a KTable forwards.
	// Old and Value can be equal: the cache does not compare them.
	Old []byte
	// Delete reports that the key was deleted.
	Delete bool
}

// entryOverhead approximates the bytes a cache entry costs beyond its key and
// values: the entry, its map slot and its index node. Like Kafka Streams'
// statestore.cache.max.bytes, maxBytes is an estimate, not a hard bound.
const entryOverhead = 128

// Cache is the write-back record cache that fronts a task's Store (Kafka
// Streams' statestore.cache.max.bytes, KIP-770). Reads hit memory first.
// Writes stay in memory, dirty, until Flush or eviction; repeated writes of
// one key between flushes collapse into one update, which is what keeps the
// changelog and downstream from seeing every intermediate aggregate.
//
// When the entries would take more than maxBytes, the least recently used are
// evicted; evicting a dirty entry flushes it first. Every flush, whether from
// Flush or eviction, runs in two steps:
//
//  1. onFlush receives the dirty entries, each with the value the store held
//     before (Dirty.Old); the stream runtime produces them to the changelog
//     and forwards them downstream;
//  2. the entries are written to the store in one Store.Write batch.
//
// The changelog goes first so that a crash between the steps leaves the
// store behind its changelog, which restoration repairs, never ahead of it.
// If onFlush or the store write fails, the entries stay dirty and the next
// flush offers them again (at-least-once); the task should treat the error as
// fatal.
//
// Entries reach onFlush in the order of their last write, oldest first —
// Kafka's order too. Collapsing keeps only the last write of each key, and
// ordering by it means downstream sees the surviving updates in the order
// they happened. Eviction flushes the dirty entries written no later than the
// evicted one, so eviction flushes and full flushes together still emit one
// ordered sequence.
//
// onFlush may read the Cache (downstream processors read upstream stores) and
// sees the new values; writing to it there returns ErrReentrant. onFlush may
// keep the slices it gets but must not modify them.
//
// With maxBytes 0 nothing is cached: every write is flushed at once.
//
// All writes to the Store must go through the Cache while it fronts the
// store: the cache does not notice changes made behind its back. A Cache is
// safe for concurrent readers (interactive queries); writes — Put, Delete,
// Write, DeleteRange, Flush, Close — come from the task that owns it, one at
// a time. A Cache is itself a Store, so stores built on one, such as window
// stores, get caching for free.
type Cache struct {
	mu      sync.Mutex
	store   Store
	max     int
	onFlush func([]Dirty) error

	entries map[string]*cacheEntry
	index   *skiplist[*cacheEntry] // entries in key order, for Range
	lru     entryList              // least recently used at the front
	dirty   entryList              // dirty entries by last write, oldest at the front
	size    int

	// epoch counts writes to the store, so that an open iterator knows its
	// view of the store may have gone stale (see cacheIterator).
	epoch    uint64
	flushing bool
	closed   bool
}

type cacheEntry struct {
	key     []byte
	value   []byte // nil when absent
	present bool   // false: absent — a pending delete if dirty, a known miss if clean
	dirty   bool
	// old is the store's value before the current flush interval, valid when
	// oldKnown. Unknown only for keys first seen by a write; flush reads it
	// from the store, which write-back leaves untouched until then.
	old      []byte
	oldKnown bool

	links [2]entryLink // lruList, dirtyList
}

// NewCache returns a cache of about maxBytes in front of s, calling onFlush
// (which may be nil) with each batch of dirty entries before they are written
// to s. The cache owns s from now on: closing the cache closes s.
func NewCache(s Store, maxBytes int, onFlush func(entries []Dirty) error) *Cache {
	if onFlush == nil {
		onFlush = func([]Dirty) error { return nil }
	}
	return &Cache{
		store:   s,
		max:     max(maxBytes, 0),
		onFlush: onFlush,
		entries: make(map[string]*cacheEntry),
		index:   newSkiplist[*cacheEntry](),
		lru:     entryList{which: lruList},
		dirty:   entryList{which: dirtyList},
	}
}

func (e *cacheEntry) size() int { return entryOverhead + len(e.key) + len(e.value) + len(e.old) }

// Size returns the estimated bytes the cached entries take.
func (c *Cache) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Get returns the value of key: the cached value if there is one, otherwise
// the store's, which it caches if clean entries can make room for it (a read
// never triggers a flush). Like Store.Get it returns (nil, nil) when the key is
// absent and a slice the caller owns.
func (c *Cache) Get(key []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if e := c.entries[string(key)]; e != nil {
		c.lru.moveToBack(e)
		if !e.present {
			return nil, nil
		}
		return append([]byte{}, e.value...), nil
	}
	v, err := c.store.Get(key)
	if err != nil {
		return nil, err
	}
	// Remembering misses too pays off: an aggregation reads a key before it
	// writes it, and a cached miss tells the flush that Old is nil for free.
	// During a flush nothing is added or evicted, so that the entries being
	// flushed stay cached until they reach the store.
	if !c.flushing && c.evictClean(entryOverhead+len(key)+len(v)) {
		e := &cacheEntry{key: bytes.Clone(nonNil(key)), present: v != nil}
		if v != nil {
			e.value = append([]byte{}, v...)
		}
		c.insert(e)
	}
	return v, nil
}

// Put records value for key in the cache, dirty; eviction may flush it.
func (c *Cache) Put(key, value []byte) error {
	return c.Write([]Mutation{{Key: key, Value: value}})
}

// Delete records the deletion of key in the cache, dirty, like Put.
func (c *Cache) Delete(key []byte) error {
	return c.Write([]Mutation{{Key: key, Delete: true}})
}

// Write applies the mutations to the cache. Readers of the cache see the batch
// atomically, but the underlying store may not: the eviction that follows can
// flush some of its mutations and leave the others dirty.
func (c *Cache) Write(batch []Mutation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	for _, m := range batch {
		c.write(m)
	}
	return c.evictLocked()
}

func (c *Cache) writable() error {
	switch {
	case c.closed:
		return ErrClosed
	case c.flushing:
		return ErrReentrant
	}
	return nil
}

// write records m as the entry's newest, dirty value.
func (c *Cache) write(m Mutation) {
	e := c.entries[string(m.Key)]
	fresh := e == nil
	if fresh {
		// First sight of the key: its old value stays unknown until flush.
		e = &cacheEntry{key: bytes.Clone(nonNil(m.Key))}
		c.insert(e)
	} else {
		c.lru.moveToBack(e)
	}
	c.size -= e.size()
	switch {
	case e.dirty:
		c.dirty.remove(e)
	case !fresh:
		// A clean entry holds what the store holds: that is the old value.
		e.old, e.oldKnown = e.value, true
	}
	e.dirty = true
	c.dirty.pushBack(e)
	if m.Delete {
		e.value, e.present = nil, false
	} else {
		e.value, e.present = append([]byte{}, m.Value...), true
	}
	c.size += e.size()
}

// insert adds a new entry as the most recently used.
func (c *Cache) insert(e *cacheEntry) {
	c.entries[string(e.key)] = e
	c.index.put(e.key, e)
	c.lru.pushBack(e)
	c.size += e.size()
}

// remove drops a clean entry from the cache.
func (c *Cache) remove(e *cacheEntry) {
	delete(c.entries, string(e.key))
	c.index.delete(e.key)
	c.lru.remove(e)
	c.size -= e.size()
}

// evictLocked evicts least recently used entries until the cache fits.
func (c *Cache) evictLocked() error {
	for c.size > c.max {
		e := c.lru.front()
		if e == nil {
			return nil
		}
		if e.dirty {
			// Flush it, and every dirty entry written before it, to keep the
			// flushed sequence in write order. It stays cached, clean, and
			// the next round evicts it unless a reader touched it meanwhile.
			if err := c.flushLocked(e, c.max/evictFlushFraction); err != nil {
				return err
			}
			continue
		}
		c.remove(e)
	}
	return nil
}

// evictFlushFraction sets how much an eviction flushes: when the entry to
// evict is dirty, at least 1/evictFlushFraction of maxBytes of the oldest
// updates go out with it. Flushing only through the evicted entry would, once
// the cache is full, send one update per write — each its own onFlush call
// and store batch. Flushing everything, as Kafka Streams does, would cut
// collapsing short for every hot key at once. The entries flushed early stay
// cached, clean, and leave later without a flush.
const evictFlushFraction = 8

// evictClean makes room for need more bytes by dropping clean entries from the
// least recently used end, stopping at the first dirty one. It reports whether
// the room is there. It never flushes, so reads may use it.
func (c *Cache) evictClean(need int) bool {
	for c.size+need > c.max {
		e := c.lru.front()
		if e == nil || e.dirty {
			return false
		}
		c.remove(e)
	}
	return true
}

// flushLocked flushes the oldest dirty entries: through upTo and on until
// their sizes add up to minBytes, or all of them if upTo is nil. It releases
// c.mu while onFlush runs.
func (c *Cache) flushLocked(upTo *cacheEntry, minBytes int) error {
	var batch []*cacheEntry
	size, reached := 0, false
	for e := c.dirty.front(); e != nil; e = e.links[dirtyList].next {
		if upTo != nil && reached && size >= minBytes {
			break
		}
		batch = append(batch, e)
		size += e.size()
		reached = reached || e == upTo
	}
	if len(batch) == 0 {
		return nil
	}
	updates := make([]Dirty, len(batch))
	muts := make([]Mutation, len(batch))
	for i, e := range batch {
		if !e.oldKnown {
			old, err := c.store.Get(e.key)
			if err != nil {
				return fmt.Errorf("state: cache flush: read old value: %w", err)
			}
			c.size -= e.size()
			e.old, e.oldKnown = old, true
			c.size += e.size()
		}
		updates[i] = Dirty{Key: e.key, Value: e.value, Old: e.old, Delete: !e.present}
		muts[i] = Mutation{Key: e.key, Value: e.value, Delete: !e.present}
	}
	if err := c.callOnFlush(updates); err != nil {
		return fmt.Errorf("state: cache flush: %w", err)
	}
	// Writes were refused while onFlush ran, so batch is still exactly the
	// dirty prefix it was.
	if err := c.store.Write(muts); err != nil {
		return fmt.Errorf("state: cache flush: %w", err)
	}
	c.epoch++
	for _, e := range batch {
		c.dirty.remove(e)
		c.size -= e.size()
		e.dirty, e.old, e.oldKnown = false, nil, false
		c.size += e.size()
	}
	return nil
}

// callOnFlush runs onFlush without holding c.mu, so that it can read the
// cache, and with flushing set, so that it cannot write to it. The deferred
// relock also runs if onFlush panics, leaving the cache consistent for the
// task boundary that recovers the panic.
func (c *Cache) callOnFlush(updates []Dirty) error {
	c.flushing = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.flushing = false
	}()
	return c.onFlush(updates)
}

// Flush flushes every dirty entry (see Cache) and then flushes the store, so
// that on return the cache's writes are in the store and durable.
func (c *Cache) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	if err := c.flushLocked(nil, 0); err != nil {
		return err
	}
	return c.store.Flush()
}

// DeleteRange removes [start, end) from the cache and the store without
// reporting the deletions to onFlush: this is data ageing out, not updates.
// Dirty entries in the range are updates, though, so it flushes them first.
func (c *Cache) DeleteRange(start, end []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	if emptyRange(start, end) {
		return nil
	}
	var doomed []*cacheEntry
	flushed := false
	for cur := c.index.cursor(start, end); ; {
		n := cur.next()
		if n == nil {
			break
		}
		if n.val.dirty && !flushed {
			// Flushing everything, not just the range, keeps write order.
			if err := c.flushLocked(nil, 0); err != nil {
				return err
			}
			flushed = true
		}
		doomed = append(doomed, n.val)
	}
	for _, e := range doomed {
		c.remove(e)
	}
	c.epoch++
	return c.store.DeleteRange(start, end)
}

// Close flushes the cache, as Flush does, and closes the store, which it
// closes even if the flush fails.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	err := c.flushLocked(nil, 0)
	if err == nil {
		err = c.store.Flush()
	}
	c.closed = true
	c.entries, c.index = nil, newSkiplist[*cacheEntry]()
	c.lru, c.dirty = entryList{which: lruList}, entryList{which: dirtyList}
	c.size = 0
	if cerr := c.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// Range returns a sorted iterator over [start, end) of the store as the cache
// sees it: cached values, pending deletes and uncached store entries merged.
func (c *Cache) Range(start, end []byte) (Iterator, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if emptyRange(start, end) {
		return emptyIterator{}, nil
	}
	start, end = bytes.Clone(start), bytes.Clone(end)
	sit, err := c.store.Range(start, end)
	if err != nil {
		return nil, err
	}
	return &cacheIterator{
		c: c, start: start, end: end,
		cur: c.index.cursor(start, end), store: sit, epoch: c.epoch,
		needCache: true, needStore: true,
	}, nil
}

// cacheIterator merges the cache's index with an iterator over the store.
// The cache side wins ties: it holds the newer value or a pending delete.
//
// A LevelDB iterator reads a snapshot. If the cache writes to the store while
// the iterator is open (an eviction, say), a flushed entry can leave the cache
// and the snapshot would then show its older value. So when the cache's epoch
// moves, the store side is reopened just past the last key returned.
type cacheIterator struct {
	c          *Cache
	start, end []byte
	cur        *slCursor[*cacheEntry]
	store      Iterator
	epoch      uint64

	// The next candidate from each side, fetched lazily.
	needCache, needStore bool
	cacheOK, storeOK     bool
	ck, cv               []byte
	cPresent             bool

	key, value []byte
	returned   bool // whether key holds a returned key
	err        error
	done       bool
}

func (it *cacheIterator) Next() bool {
	if it.done {
		return false
	}
	for {
		if err := it.fill(); err != nil {
			it.finish(err)
			return false
		}
		if !it.cacheOK && !it.storeOK {
			it.finish(nil)
			return false
		}
		cmp := 1 // which side is next: <= 0 the cache, > 0 the store
		if it.cacheOK {
			cmp = -1
			if it.storeOK {
				cmp = bytes.Compare(it.ck, it.store.Key())
			}
		}
		if cmp > 0 {
			it.key, it.value, it.returned = it.store.Key(), it.store.Value(), true
			it.needStore = true
			return true
		}
		it.needCache = true
		if cmp == 0 {
			it.needStore = true // shadowed by the cache
		}
		if it.cPresent {
			it.key, it.value, it.returned = it.ck, it.cv, true
			return true
		}
		// A pending delete or a cached miss: skip the key.
	}
}

// fill fetches the next candidate of each side that needs one.
func (it *cacheIterator) fill() error {
	c := it.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	stale := c.epoch != it.epoch
	it.epoch = c.epoch
	if it.needCache {
		it.needCache = false
		it.cacheOK = false
		if n := it.cur.next(); n != nil {
			// Entry slices are replaced on write, never modified: safe to
			// use after unlocking.
			it.ck, it.cv, it.cPresent, it.cacheOK = n.key, n.val.value, n.val.present, true
		}
	}
	var reopened Iterator
	var err error
	if stale {
		from := it.start
		if it.returned {
			from = append(bytes.Clone(it.key), 0) // the first key after it
		}
		reopened, err = c.store.Range(from, it.end)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if reopened != nil {
		if it.returned {
			it.key = bytes.Clone(it.key) // it may point into the old iterator
		}
		_ = it.store.Close()
		it.store, it.needStore = reopened, true
	}
	if it.needStore {
		it.needStore = false
		it.storeOK = it.store.Next()
		if !it.storeOK {
			if err := it.store.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (it *cacheIterator) finish(err error) {
	it.done, it.err = true, err
	it.key, it.value = nil, nil
	if cerr := it.store.Close(); it.err == nil {
		it.err = cerr
	}
}

func (it *cacheIterator) Key() []byte   { return it.key }
func (it *cacheIterator) Value() []byte { return it.value }
func (it *cacheIterator) Err() error    { return it.err }

func (it *cacheIterator) Close() error {
	if !it.done {
		it.finish(nil)
	}
	return it.err
}

// The two intrusive lists an entry can be on.
const (
	lruList = iota
	dirtyList
)

type entryLink struct {
	prev, next *cacheEntry
	inList     bool
}

// entryList is an intrusive doubly linked list over one of an entry's links.
type entryList struct {
	which      int
	head, tail *cacheEntry
}

func (l *entryList) front() *cacheEntry { return l.head }

func (l *entryList) pushBack(e *cacheEntry) {
	ln := &e.links[l.which]
	ln.prev, ln.next, ln.inList = l.tail, nil, true
	if l.tail != nil {
		l.tail.links[l.which].next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *entryList) remove(e *cacheEntry) {
	ln := &e.links[l.which]
	if !ln.inList {
		return
	}
	if ln.prev != nil {
		ln.prev.links[l.which].next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		ln.next.links[l.which].prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	*ln = entryLink{}
}

func (l *entryList) moveToBack(e *cacheEntry) {
	if l.tail == e {
		return
	}
	l.remove(e)
	l.pushBack(e)
}
