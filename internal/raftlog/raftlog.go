// Package raftlog opens the durable Raft log and stable store every Raft
// group of a broker uses: raft-wal (DESIGN.md measured it well ahead of
// raft-boltdb for whole-batch entries) behind a raft.LogCache.
package raftlog

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
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
	wal *wal.WAL
	// Logs is the log store to give raft (the WAL behind the cache).
	Logs raft.LogStore
	// Stable is the stable store to give raft.
	Stable raft.StableStore
}

// Open opens (or creates) the store in dir. raft-wal must be v0.4.2 or
// later: v0.4.0 could seal a segment without its index when raft truncated
// the log's tail (hashicorp/raft-wal#31; a follower whose uncommitted
// suffix a new leader overwrites), then panic on the next open, and it left
// its metadata file locked after Close.
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
	w, err := wal.Open(dir, wal.WithLogger(o.Logger.Named("wal")), wal.WithSegmentSize(o.SegmentBytes))
	if err != nil {
		return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
	}
	s := &Store{wal: w, Logs: w, Stable: w}
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

// Close closes the WAL (and its metadata store). Shut raft down first.
func (s *Store) Close() error { return s.wal.Close() }
