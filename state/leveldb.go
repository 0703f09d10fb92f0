package state

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// LevelDBOpt configures OpenLevelDB.
type LevelDBOpt interface{ apply(*levelDBConfig) }

type levelDBConfig struct {
	writeBuffer int
	blockCache  int
	openFiles   int
}

type levelDBOpt func(*levelDBConfig)

func (f levelDBOpt) apply(c *levelDBConfig) { f(c) }

// WriteBufferSize sets how many bytes of writes LevelDB buffers in memory
// before writing a table file, overriding the default 4 MiB. A store can hold
// two such buffers at once.
func WriteBufferSize(n int) LevelDBOpt {
	return levelDBOpt(func(c *levelDBConfig) { c.writeBuffer = n })
}

// BlockCacheSize sets the bytes of table blocks LevelDB keeps in memory for
// reads, overriding the default 8 MiB. Each store has its own cache, so with
// many tasks per process a smaller cache may be wiser.
func BlockCacheSize(n int) LevelDBOpt { return levelDBOpt(func(c *levelDBConfig) { c.blockCache = n }) }

// OpenFilesLimit sets how many table files a store keeps open, overriding the
// default 100. A process holds this many descriptors per open store at most.
func OpenFilesLimit(n int) LevelDBOpt { return levelDBOpt(func(c *levelDBConfig) { c.openFiles = n }) }

// levelDB is the Store on disk: goleveldb, whose types stay in this file.
type levelDB struct {
	dir string
	db  *leveldb.DB

	// mu orders writes so that last is the most recent mutation applied.
	// Flush makes earlier writes durable by applying it again with fsync: a
	// synced LevelDB write syncs the journal that holds all writes before it,
	// and goleveldb has no sync call of its own. Repeating the newest
	// mutation changes nothing, because nothing has overwritten it since.
	mu       sync.Mutex
	last     Mutation
	unsynced bool
	closed   bool
}

// OpenLevelDB opens the LevelDB store in dir, creating it if needed.
//
// Writes go to LevelDB's journal without fsync, and Flush syncs them. A crash
// loses the unsynced tail, which is why a task writes its changelog checkpoint
// only after Flush.
//
// If the files in dir are damaged, OpenLevelDB (or a later read or write) fails
// with an error that matches ErrCorrupt. The store is a cache of its changelog
// topic, so recovery is to delete dir (os.RemoveAll) and its checkpoint entry
// and let the task restore the store from the changelog. A directory already
// open in this or another process fails to open with an error matching
// ErrLocked.
func OpenLevelDB(dir string, opts ...LevelDBOpt) (Store, error) {
	cfg := levelDBConfig{openFiles: 100}
	for _, o := range opts {
		o.apply(&cfg)
	}
	db, err := leveldb.OpenFile(dir, &opt.Options{
		// Point lookups dominate (aggregations read before they write), and a
		// bloom filter lets most misses skip reading table blocks.
		Filter: filter.NewBloomFilter(10),
		// By default goleveldb drops journal and manifest chunks that fail
		// their checksums and opens anyway, silently missing writes the
		// checkpoint counts as stored. Failing instead sends the task to
		// restore from the changelog. Process crashes leave the journal
		// intact (the kernel still has the writes); only power loss can tear
		// its unsynced tail, and then a full restore is the safe answer.
		Strict:                 opt.DefaultStrict | opt.StrictJournal | opt.StrictManifest,
		WriteBuffer:            cfg.writeBuffer,
		BlockCacheCapacity:     cfg.blockCache,
		OpenFilesCacheCapacity: cfg.openFiles,
	})
	if err != nil {
		return nil, wrapLevelDB(dir, "open", err)
	}
	return &levelDB{dir: dir, db: db}, nil
}

// levelDBError reads as "state: leveldb DIR: OP: CAUSE", matches its sentinel
// (ErrCorrupt, ErrClosed) with errors.Is and unwraps to goleveldb's error.
type levelDBError struct {
	dir, op  string
	sentinel error
	cause    error
}

func (e *levelDBError) Error() string {
	msg := fmt.Sprintf("state: leveldb %s: %s: %v", e.dir, e.op, e.cause)
	if e.sentinel == ErrCorrupt {
		msg += " (the store is corrupt: delete the directory and restore it from its changelog)"
	}
	return msg
}

func (e *levelDBError) Is(target error) bool { return e.sentinel != nil && target == e.sentinel }

func (e *levelDBError) Unwrap() error { return e.cause }

func wrapLevelDB(dir, op string, err error) error {
	if err == nil {
		return nil
	}
	e := &levelDBError{dir: dir, op: op, cause: err}
	switch {
	case lerrors.IsCorrupted(err):
		e.sentinel = ErrCorrupt
	case errors.Is(err, leveldb.ErrClosed):
		e.sentinel = ErrClosed
	case op == "open" && (errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN)):
		// goleveldb takes a non-blocking flock on the directory's LOCK file.
		e.sentinel = ErrLocked
	}
	return e
}

func (s *levelDB) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(key, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, wrapLevelDB(s.dir, "get", err)
	case v == nil:
		return []byte{}, nil // present but empty: keep it distinct from absent
	}
	return v, nil
}

func (s *levelDB) Put(key, value []byte) error {
	return s.Write([]Mutation{{Key: key, Value: value}})
}

func (s *levelDB) Delete(key []byte) error {
	return s.Write([]Mutation{{Key: key, Delete: true}})
}

func (s *levelDB) Write(batch []Mutation) error {
	if len(batch) == 0 {
		return nil
	}
	var b leveldb.Batch
	for _, m := range batch {
		if m.Delete {
			b.Delete(m.Key)
		} else {
			b.Put(m.Key, m.Value)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Write(&b, nil); err != nil {
		return wrapLevelDB(s.dir, "write", err)
	}
	last := batch[len(batch)-1]
	s.last = Mutation{Key: bytes.Clone(last.Key), Value: bytes.Clone(last.Value), Delete: last.Delete}
	s.unsynced = true
	return nil
}

// deleteChunk bounds the batches DeleteRange writes, so deleting a large range
// neither builds one huge batch in memory nor holds the write lock for long.
const deleteChunk = 1024

func (s *levelDB) DeleteRange(start, end []byte) error {
	if emptyRange(start, end) {
		return nil
	}
	// The iterator reads a snapshot, so deleting behind it is safe.
	it := s.db.NewIterator(&util.Range{Start: start, Limit: end}, nil)
	defer it.Release()
	batch := make([]Mutation, 0, deleteChunk)
	for it.Next() {
		batch = append(batch, Mutation{Key: bytes.Clone(it.Key()), Delete: true})
		if len(batch) == deleteChunk {
			if err := s.Write(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := it.Error(); err != nil {
		return wrapLevelDB(s.dir, "delete range", err)
	}
	return s.Write(batch)
}

func (s *levelDB) Range(start, end []byte) (Iterator, error) {
	if emptyRange(start, end) {
		return emptyIterator{}, nil
	}
	it := s.db.NewIterator(&util.Range{Start: start, Limit: end}, nil)
	if err := it.Error(); err != nil {
		it.Release()
		return nil, wrapLevelDB(s.dir, "range", err)
	}
	return &levelDBIterator{dir: s.dir, it: it}, nil
}

func (s *levelDB) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return wrapLevelDB(s.dir, "flush", leveldb.ErrClosed)
	}
	if !s.unsynced {
		return nil
	}
	var b leveldb.Batch
	if s.last.Delete {
		b.Delete(s.last.Key)
	} else {
		b.Put(s.last.Key, s.last.Value)
	}
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return wrapLevelDB(s.dir, "flush", err)
	}
	s.unsynced = false
	return nil
}

func (s *levelDB) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return wrapLevelDB(s.dir, "close", s.db.Close())
}

type levelDBIterator struct {
	dir string
	it  iterator.Iterator
	err error
}

func (i *levelDBIterator) Next() bool {
	if i.err != nil {
		return false
	}
	if i.it.Next() {
		return true
	}
	i.err = wrapLevelDB(i.dir, "iterate", i.it.Error())
	return false
}

func (i *levelDBIterator) Key() []byte   { return i.it.Key() }
func (i *levelDBIterator) Value() []byte { return i.it.Value() }
func (i *levelDBIterator) Err() error    { return i.err }

func (i *levelDBIterator) Close() error {
	i.it.Release()
	if i.err == nil {
		i.err = wrapLevelDB(i.dir, "iterate", i.it.Error())
	}
	return i.err
}
