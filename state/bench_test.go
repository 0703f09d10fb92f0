package state_test

import (
	"encoding/binary"
	"testing"

	"github.com/weir-io/weir/state"
)

func benchKey(i int) []byte {
	return binary.BigEndian.AppendUint64([]byte("key-"), uint64(i)*0x9e3779b97f4a7c15) // scattered order
}

func BenchmarkLevelDBPut(b *testing.B) {
	s := openLevelDB(b, b.TempDir())
	defer s.Close()
	value := make([]byte, 100)
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.Put(benchKey(i), value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLevelDBGet(b *testing.B) {
	s := openLevelDB(b, b.TempDir())
	defer s.Close()
	const n = 100_000
	batch := make([]state.Mutation, 0, 1000)
	for i := range n {
		batch = append(batch, state.Mutation{Key: benchKey(i), Value: make([]byte, 100)})
		if len(batch) == cap(batch) {
			must(b, s.Write(batch))
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if v, err := s.Get(benchKey(i % n)); err != nil || v == nil {
			b.Fatal(v, err)
		}
	}
}

func BenchmarkLevelDBWriteBatch(b *testing.B) {
	s := openLevelDB(b, b.TempDir())
	defer s.Close()
	batch := make([]state.Mutation, 1000)
	b.SetBytes(100 * int64(len(batch)))
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j] = state.Mutation{Key: benchKey(i*len(batch) + j), Value: make([]byte, 100)}
		}
		must(b, s.Write(batch))
	}
}

// BenchmarkCachePutCollapsing is the aggregation pattern: many updates to a
// small set of hot keys, flushed at every 10,000th write as a commit would.
func BenchmarkCachePutCollapsing(b *testing.B) {
	for _, backing := range []string{"memory", "leveldb"} {
		b.Run(backing, func(b *testing.B) {
			s := state.NewMemory()
			if backing == "leveldb" {
				s = openLevelDB(b, b.TempDir())
			}
			flushed := 0
			c := state.NewCache(s, 10<<20, func(d []state.Dirty) error { flushed += len(d); return nil })
			defer c.Close()
			value := make([]byte, 100)
			keys := make([][]byte, 1000)
			for i := range keys {
				keys[i] = benchKey(i)
			}
			for i := 0; b.Loop(); i++ {
				if err := c.Put(keys[i%len(keys)], value); err != nil {
					b.Fatal(err)
				}
				if i%10_000 == 9_999 {
					must(b, c.Flush())
				}
			}
			b.ReportMetric(float64(flushed)/float64(b.N), "flushed/op")
		})
	}
}

// BenchmarkCacheGetPut is read-modify-write on keys that mostly miss the
// cache, with the cache evicting continuously.
func BenchmarkCacheGetPutEvicting(b *testing.B) {
	s := openLevelDB(b, b.TempDir())
	c := state.NewCache(s, 1<<20, nil)
	defer c.Close()
	value := make([]byte, 100)
	for i := 0; b.Loop(); i++ {
		k := benchKey(i % 100_000)
		if _, err := c.Get(k); err != nil {
			b.Fatal(err)
		}
		if err := c.Put(k, value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryPut(b *testing.B) {
	s := state.NewMemory()
	value := make([]byte, 100)
	for i := 0; b.Loop(); i++ {
		if err := s.Put(benchKey(i%1_000_000), value); err != nil {
			b.Fatal(err)
		}
	}
}
