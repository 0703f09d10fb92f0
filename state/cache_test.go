package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weir-io/weir/state"
)

// recorder collects what onFlush receives, one string per call.
type recorder struct{ calls []string }

func (r *recorder) onFlush(entries []state.Dirty) error {
	var parts []string
	for _, d := range entries {
		parts = append(parts, fmtDirty(d))
	}
	r.calls = append(r.calls, strings.Join(parts, " "))
	return nil
}

// fmtDirty renders an update as key:old->new, with "-" for absent.
func fmtDirty(d state.Dirty) string {
	show := func(b []byte) string {
		if b == nil {
			return "-"
		}
		return string(b)
	}
	if d.Delete != (d.Value == nil) {
		return "INCONSISTENT"
	}
	return string(d.Key) + ":" + show(d.Old) + "->" + show(d.Value)
}

func put(t testing.TB, s state.Store, kvs ...string) {
	t.Helper()
	for i := 0; i < len(kvs); i += 2 {
		if err := s.Put([]byte(kvs[i]), []byte(kvs[i+1])); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCacheCollapsesAndReportsOldValues(t *testing.T) {
	store := state.NewMemory()
	put(t, store, "k", "v0")
	var r recorder
	c := state.NewCache(store, 1<<20, r.onFlush)

	put(t, c, "k", "v1", "k", "v2", "n", "x", "n", "y")
	if v, _ := store.Get([]byte("k")); string(v) != "v0" {
		t.Fatalf("store saw %q before flush; the cache is write-back", v)
	}
	wantGet(t, c, "k", "v2")
	must(t, c.Flush())
	must(t, c.Put([]byte("k"), []byte("v3")))
	must(t, c.Delete([]byte("n")))
	must(t, c.Flush())
	must(t, c.Flush()) // nothing dirty: no call
	must(t, c.Delete([]byte("never-existed")))
	must(t, c.Flush())

	want := []string{
		"k:v0->v2 n:-->y",
		"k:v2->v3 n:y->-",
		"never-existed:-->-",
	}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("onFlush calls:\n%q\nwant\n%q", r.calls, want)
	}
	wantGet(t, store, "k", "v3")
	if v, _ := store.Get([]byte("n")); v != nil {
		t.Fatalf("store still has n=%q", v)
	}
}

func TestCacheFlushOrderIsLastWrite(t *testing.T) {
	var r recorder
	c := state.NewCache(state.NewMemory(), 1<<20, r.onFlush)
	put(t, c, "a", "1", "b", "1", "c", "1", "a", "2", "b", "2")
	must(t, c.Flush())
	if want := "c:-->1 a:-->2 b:-->2"; r.calls[0] != want {
		t.Fatalf("flush order %q, want %q", r.calls[0], want)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var r recorder
	// Entries here cost 128 bytes of overhead plus one-byte key and value.
	c := state.NewCache(state.NewMemory(), 3*130, r.onFlush)
	put(t, c, "a", "1", "b", "1", "c", "1")
	if len(r.calls) != 0 {
		t.Fatalf("flushed before full: %q", r.calls)
	}
	put(t, c, "d", "1") // a is least recently used
	wantGet(t, c, "b", "1")
	put(t, c, "e", "1") // now c is; b was written before c, so it goes too
	want := []string{"a:-->1", "b:-->1 c:-->1"}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("eviction flushes %q, want %q", r.calls, want)
	}
	// Evicted keys still read through from the store.
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		wantGet(t, c, k, "1")
	}
	if c.Size() > 3*130 {
		t.Fatalf("Size %d over maxBytes", c.Size())
	}
}

// Evicting a dirty entry flushes at least an eighth of the cache's bytes of
// the oldest updates, so a full cache does not flush one update per write.
func TestCacheEvictionFlushesInBatches(t *testing.T) {
	var r recorder
	c := state.NewCache(state.NewMemory(), 16*131, r.onFlush) // 16 entries; an eighth is 2
	for i := range 17 {
		put(t, c, fmt.Sprintf("%02d", i), "v")
	}
	if want := []string{"00:-->v 01:-->v"}; !slices.Equal(r.calls, want) {
		t.Fatalf("eviction flushed %q, want %q", r.calls, want)
	}
	// 01 was flushed early but stays cached, clean: evicting it needs no flush.
	put(t, c, "17", "v")
	if len(r.calls) != 1 {
		t.Fatalf("evicting a clean entry flushed %q", r.calls[1:])
	}
	wantGet(t, c, "01", "v")
}

func TestCacheZeroBytesFlushesEveryWrite(t *testing.T) {
	var r recorder
	store := state.NewMemory()
	c := state.NewCache(store, 0, r.onFlush)
	put(t, c, "a", "1", "a", "2")
	must(t, c.Delete([]byte("a")))
	want := []string{"a:-->1", "a:1->2", "a:2->-"}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("onFlush calls %q, want %q", r.calls, want)
	}
	if c.Size() != 0 {
		t.Fatalf("Size = %d with maxBytes 0", c.Size())
	}
	put(t, c, "b", "1")
	wantGet(t, store, "b", "1")
}

func TestCacheRangeMergesCacheAndStore(t *testing.T) {
	for _, maxBytes := range []int{1 << 20, 0} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			store := state.NewMemory()
			put(t, store, "a", "1", "b", "2", "c", "3", "e", "5")
			c := state.NewCache(store, maxBytes, nil)
			put(t, c, "b", "20", "d", "4")
			must(t, c.Delete([]byte("c")))
			_, _ = c.Get([]byte("zz")) // a cached miss is not a key

			want := []string{"a=1", "b=20", "d=4", "e=5"}
			if got := rangeEntries(t, c, nil, nil); !slices.Equal(got, want) {
				t.Fatalf("merged range %q, want %q", got, want)
			}
			if got := rangeEntries(t, c, []byte("b"), []byte("e")); !slices.Equal(got, want[1:3]) {
				t.Fatalf("merged range [b,e) %q", got)
			}
			must(t, c.Flush())
			if got := rangeEntries(t, store, nil, nil); !slices.Equal(got, want) {
				t.Fatalf("store after flush %q, want %q", got, want)
			}
		})
	}
}

// A LevelDB iterator reads a snapshot. When eviction moves a dirty entry into
// the store mid-iteration, the merged view must still show its new value.
func TestCacheRangeSurvivesEvictionMidIteration(t *testing.T) {
	store := openLevelDB(t, t.TempDir())
	put(t, store, "a", "1", "k", "old")
	c := state.NewCache(store, 2*140, nil)
	defer c.Close()
	// b comes first so that the iterator has not looked ahead to k yet.
	put(t, c, "b", "new", "k", "new")

	it, err := c.Range(nil, nil)
	must(t, err)
	defer it.Close()
	if !it.Next() || string(it.Key()) != "a" {
		t.Fatalf("first key %q", it.Key())
	}
	put(t, c, "z1", "x", "z2", "x", "z3", "x") // evicts b and k to the store
	var got []string
	for it.Next() {
		got = append(got, string(it.Key())+"="+string(it.Value()))
	}
	must(t, it.Err())
	if len(got) < 2 || got[0] != "b=new" || got[1] != "k=new" {
		t.Fatalf("after eviction the iterator shows %q, want b=new k=new first", got)
	}
	if !slices.IsSorted(got) {
		t.Fatalf("iteration out of order: %q", got)
	}
}

func TestCacheOnFlushMayReadButNotWrite(t *testing.T) {
	var c *state.Cache
	var seen []byte
	var writeErr error
	c = state.NewCache(state.NewMemory(), 1<<20, func(entries []state.Dirty) error {
		seen, _ = c.Get([]byte("k"))
		writeErr = c.Put([]byte("other"), []byte("x"))
		return nil
	})
	put(t, c, "k", "v")
	must(t, c.Flush())
	if string(seen) != "v" {
		t.Fatalf("Get in onFlush = %q, want the flushed value", seen)
	}
	if !errors.Is(writeErr, state.ErrReentrant) {
		t.Fatalf("Put in onFlush = %v, want ErrReentrant", writeErr)
	}
}

func TestCacheFlushErrorKeepsEntriesDirty(t *testing.T) {
	boom := errors.New("changelog unavailable")
	fail := true
	var r recorder
	store := state.NewMemory()
	c := state.NewCache(store, 1<<20, func(entries []state.Dirty) error {
		if fail {
			return boom
		}
		return r.onFlush(entries)
	})
	put(t, c, "k", "v")
	if err := c.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the onFlush error", err)
	}
	if v, _ := store.Get([]byte("k")); v != nil {
		t.Fatal("store written although onFlush failed")
	}
	fail = false
	must(t, c.Flush())
	if !slices.Equal(r.calls, []string{"k:-->v"}) {
		t.Fatalf("retry flushed %q", r.calls)
	}
}

func TestCachePanicInOnFlushLeavesCacheUsable(t *testing.T) {
	c := state.NewCache(state.NewMemory(), 1<<20, func([]state.Dirty) error { panic("bug") })
	put(t, c, "k", "v")
	func() {
		defer func() { _ = recover() }()
		_ = c.Flush()
	}()
	wantGet(t, c, "k", "v") // no deadlock, entry still there
}

// countingStore counts the reads the cache makes of its store.
type countingStore struct {
	state.Store
	gets int
}

func (s *countingStore) Get(key []byte) ([]byte, error) {
	s.gets++
	return s.Store.Get(key)
}

func TestCacheReadThenWriteReadsStoreOnce(t *testing.T) {
	store := &countingStore{Store: state.NewMemory()}
	var r recorder
	c := state.NewCache(store, 1<<20, r.onFlush)
	for range 3 { // an aggregation: read, then write, repeatedly
		v, err := c.Get([]byte("k"))
		must(t, err)
		must(t, c.Put([]byte("k"), append(v, 'x')))
	}
	must(t, c.Flush())
	if store.gets != 1 {
		t.Fatalf("store read %d times, want 1 (the cached miss gives Old)", store.gets)
	}
	if !slices.Equal(r.calls, []string{"k:-->xxx"}) {
		t.Fatalf("flushed %q", r.calls)
	}
}

func TestCacheDeleteRangeIsNotAnUpdate(t *testing.T) {
	var r recorder
	store := state.NewMemory()
	put(t, store, "old1", "x", "old2", "x")
	c := state.NewCache(store, 1<<20, r.onFlush)
	put(t, c, "old1", "y", "new", "z")
	wantGet(t, c, "old2", "x") // cached clean
	must(t, c.DeleteRange([]byte("old"), []byte("old\xff")))
	// The dirty update inside the range was flushed first; the deletions were not reported.
	if !slices.Equal(r.calls, []string{"old1:x->y new:-->z"}) {
		t.Fatalf("onFlush calls %q", r.calls)
	}
	for _, k := range []string{"old1", "old2"} {
		if v, _ := c.Get([]byte(k)); v != nil {
			t.Fatalf("%s survived DeleteRange in the cache", k)
		}
		if v, _ := store.Get([]byte(k)); v != nil {
			t.Fatalf("%s survived DeleteRange in the store", k)
		}
	}
}

func TestCacheCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	var r recorder
	c := state.NewCache(openLevelDB(t, dir), 1<<20, r.onFlush)
	put(t, c, "k", "v")
	must(t, c.Close())
	if len(r.calls) != 1 {
		t.Fatalf("Close flushed %q", r.calls)
	}
	s := openLevelDB(t, dir)
	defer s.Close()
	wantGet(t, s, "k", "v")
}

// FuzzCache drives a small cache with random operations and checks it against
// a map (what reads return) and a downstream replica fed only by onFlush:
// every update's Old is what downstream last saw for the key, and after a
// final Flush downstream, store and model agree.
func FuzzCache(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint16(300))
	f.Add(bytes.Repeat([]byte{0, 17, 34, 51}, 40), uint16(0))
	f.Fuzz(func(t *testing.T, ops []byte, maxBytes uint16) {
		store := state.NewMemory()
		model := map[string]string{}
		downstream := map[string]string{}
		c := state.NewCache(store, int(maxBytes), func(entries []state.Dirty) error {
			seen := map[string]bool{}
			for _, d := range entries {
				k := string(d.Key)
				if seen[k] {
					return fmt.Errorf("key %q twice in one flush", k)
				}
				seen[k] = true
				prev, ok := downstream[k]
				if (d.Old != nil) != ok || string(d.Old) != prev {
					return fmt.Errorf("key %q: Old=%q but downstream had %q (%v)", k, d.Old, prev, ok)
				}
				if d.Delete {
					delete(downstream, k)
				} else {
					downstream[k] = string(d.Value)
				}
			}
			return nil
		})
		for i, op := range ops {
			k := []byte{'k', '0' + op%8}
			switch op >> 3 % 4 {
			case 0, 1:
				v := fmt.Sprint(i)
				must(t, c.Put(k, []byte(v)))
				model[string(k)] = v
			case 2:
				must(t, c.Delete(k))
				delete(model, string(k))
			default:
				got, err := c.Get(k)
				must(t, err)
				if want, ok := model[string(k)]; ok != (got != nil) || string(got) != want {
					t.Fatalf("op %d: Get(%s) = %q, want %q", i, k, got, want)
				}
			}
			if op>>5 == 7 {
				must(t, c.Flush())
			}
		}
		var want []string
		for k, v := range model {
			want = append(want, k+"="+v)
		}
		slices.Sort(want)
		if got := rangeEntries(t, c, nil, nil); !slices.Equal(got, want) {
			t.Fatalf("cache range %q, model %q", got, want)
		}
		must(t, c.Flush())
		if got := rangeEntries(t, store, nil, nil); !slices.Equal(got, want) {
			t.Fatalf("store %q, model %q", got, want)
		}
		var down []string
		for k, v := range downstream {
			down = append(down, k+"="+v)
		}
		slices.Sort(down)
		if !slices.Equal(down, want) {
			t.Fatalf("downstream %q, model %q", down, want)
		}
	})
}

func rangeEntries(t testing.TB, s state.Store, start, end []byte) []string {
	t.Helper()
	it, err := s.Range(start, end)
	must(t, err)
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	must(t, it.Err())
	return out
}

func wantGet(t testing.TB, s state.Store, key, want string) {
	t.Helper()
	got, err := s.Get([]byte(key))
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Interactive queries read a task's cache from other goroutines while the task
// writes, evicts and flushes; run under -race this checks the locking.
func TestCacheConcurrentReaders(t *testing.T) {
	for _, backing := range []string{"memory", "leveldb"} {
		t.Run(backing, func(t *testing.T) {
			s := state.NewMemory()
			if backing == "leveldb" {
				s = openLevelDB(t, t.TempDir())
			}
			var c *state.Cache
			c = state.NewCache(s, 4000, func([]state.Dirty) error {
				_, err := c.Get([]byte("k0")) // a downstream read during the flush
				return err
			})
			defer c.Close()

			done := make(chan struct{})
			errs := make(chan error, 4)
			for r := range 4 {
				go func() {
					for i := 0; ; i++ {
						select {
						case <-done:
							errs <- nil
							return
						default:
						}
						if r%2 == 0 {
							if _, err := c.Get(fmt.Appendf(nil, "k%d", i%50)); err != nil {
								errs <- err
								return
							}
							continue
						}
						it, err := c.Range(nil, nil)
						if err != nil {
							errs <- err
							return
						}
						var last []byte
						for it.Next() {
							if last != nil && bytes.Compare(it.Key(), last) <= 0 {
								errs <- fmt.Errorf("range out of order: %q after %q", it.Key(), last)
								it.Close()
								return
							}
							last = bytes.Clone(it.Key())
						}
						if err := it.Close(); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			for i := range 5000 {
				k := fmt.Appendf(nil, "k%d", i%50)
				if i%7 == 0 {
					must(t, c.Delete(k))
				} else {
					must(t, c.Put(k, fmt.Appendf(nil, "v%d", i)))
				}
				if i%500 == 0 {
					must(t, c.Flush())
				}
			}
			close(done)
			for range 4 {
				must(t, <-errs)
			}
		})
	}
}
