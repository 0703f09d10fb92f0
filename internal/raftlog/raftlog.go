// Package raftlog opens the durable Raft log and stable store every Raft
// group of a broker uses: raft-wal (DESIGN.md measured it well ahead of
// raft-boltdb for whole-batch entries) behind a raft.LogCache.
package raftlog

import (
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// DefaultCache is the number of recent Raft entries kept in memory in
// front of raft-wal. Followers and the leader's replication read the
// entries they just wrote; DESIGN.md measured 98 → 131 MB/s with a cache
// for three voters. Entries are whole produce batches, so this bounds the
// memory per group to a few MiB for typical batch sizes.
const DefaultCache = 128

// Options tune a Store; zero values take the defaults.
type Options struct {
	// Cache is the number of entries cached in memory: 0 means
	// DefaultCache, negative none.
	Cache int
	// SegmentBytes is raft-wal's segment size; 0 means its default (64 MiB).
	SegmentBytes int
	// Logger receives raft-wal's logs; nil discards them.
	Logger hclog.Logger
}

// Store is one Raft group's durable log and stable store.
type Store struct {
	wal  *wal.WAL
	meta *metadb.BoltMetaDB
	// Logs is the log store to give raft (the WAL behind the cache).
	Logs raft.LogStore
	// Stable is the stable store to give raft.
	Stable raft.StableStore
}

// Open opens (or creates) the store in dir. The WAL's metadata store is
// created here so that Close can close it: WAL.Close leaves its bolt file
// open (and locked), which would make the directory impossible to reopen
// in the same process.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = wal.DefaultSegmentSize
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithLogger(o.Logger.Named("wal")), wal.WithSegmentSize(o.SegmentBytes))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
	}
	s := &Store{wal: w, meta: meta, Logs: w, Stable: w}
	if o.Cache == 0 {
		o.Cache = DefaultCache
	}
	if o.Cache > 0 {
		if s.Logs, err = raft.NewLogCache(o.Cache, w); err != nil {
			s.Close()
			return nil, fmt.Errorf("raftlog: cache: %w", err)
		}
	}
	return s, nil
}

// Close closes the WAL and then its metadata store. Shut raft down first.
func (s *Store) Close() error {
	return errors.Join(s.wal.Close(), s.meta.Close())
}
