package window_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// BenchmarkStorePut writes 1,000 keys into consecutive one-second windows:
// the write pattern of a windowed aggregation.
func BenchmarkStorePut(b *testing.B) {
	for _, backing := range []string{"memory", "leveldb", "cache+leveldb"} {
		b.Run(backing, func(b *testing.B) {
			var s state.Store = state.NewMemory()
			if backing != "memory" {
				l, err := state.OpenLevelDB(b.TempDir())
				must(b, err)
				s = l
			}
			if backing == "cache+leveldb" {
				s = state.NewCache(s, 10<<20, nil)
			}
			defer s.Close()
			ws := window.NewStore(s, time.Hour)
			keys := make([][]byte, 1000)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "user-%04d", i)
			}
			value := make([]byte, 8)
			for i := 0; b.Loop(); i++ {
				start := time.UnixMilli(int64(i/len(keys)) * 1000)
				if err := ws.Put(keys[i%len(keys)], start, value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreFetch fetches one key's windows over ten window starts, with
// 1,000 keys per start.
func BenchmarkStoreFetch(b *testing.B) {
	s, err := state.OpenLevelDB(b.TempDir())
	must(b, err)
	defer s.Close()
	ws := window.NewStore(s, 0)
	for start := range int64(100) {
		for k := range 1000 {
			must(b, ws.Put(fmt.Appendf(nil, "user-%04d", k), time.UnixMilli(start*1000), []byte("v")))
		}
	}
	for i := 0; b.Loop(); i++ {
		from := time.UnixMilli(int64(i%90) * 1000)
		it, err := ws.Fetch(fmt.Appendf(nil, "user-%04d", i%1000), from, from.Add(10*time.Second))
		must(b, err)
		n := 0
		for it.Next() {
			n++
		}
		must(b, it.Close())
		if n != 10 {
			b.Fatalf("fetched %d windows, want 10", n)
		}
	}
}
