package window_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// eachBacking runs fn over a window store on every kind of state.Store.
func eachBacking(t *testing.T, retention time.Duration, fn func(t *testing.T, ws *window.Store, s state.Store)) {
	backings := []struct {
		name string
		open func(t *testing.T) state.Store
	}{
		{"Memory", func(*testing.T) state.Store { return state.NewMemory() }},
		{"LevelDB", func(t *testing.T) state.Store {
			s, err := state.OpenLevelDB(t.TempDir())
			must(t, err)
			return s
		}},
		{"Cache", func(*testing.T) state.Store { return state.NewCache(state.NewMemory(), 1<<20, nil) }},
		{"SmallCache", func(*testing.T) state.Store { return state.NewCache(state.NewMemory(), 500, nil) }},
	}
	for _, b := range backings {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			defer s.Close()
			fn(t, window.NewStore(s, retention), s)
		})
	}
}

func TestStorePutGetDelete(t *testing.T) {
	eachBacking(t, 0, func(t *testing.T, ws *window.Store, _ state.Store) {
		must(t, ws.Put([]byte("k"), ms(60_000), []byte("a")))
		must(t, ws.Put([]byte("k"), ms(120_000), []byte("b")))
		must(t, ws.Put([]byte("k2"), ms(60_000), []byte("c")))
		must(t, ws.Put([]byte("k"), ms(-60_000), []byte("before 1970")))
		for _, tt := range []struct {
			key   string
			start int64
			want  string
		}{{"k", 60_000, "a"}, {"k", 120_000, "b"}, {"k2", 60_000, "c"}, {"k", -60_000, "before 1970"}} {
			got, err := ws.Get([]byte(tt.key), ms(tt.start))
			if err != nil || string(got) != tt.want {
				t.Errorf("Get(%s, %d) = %q, %v; want %q", tt.key, tt.start, got, err, tt.want)
			}
		}
		if got, err := ws.Get([]byte("k"), ms(180_000)); err != nil || got != nil {
			t.Errorf("absent window = %q, %v", got, err)
		}
		must(t, ws.Delete([]byte("k"), ms(60_000)))
		if got, _ := ws.Get([]byte("k"), ms(60_000)); got != nil {
			t.Errorf("deleted window = %q", got)
		}
	})
}

// collect(t)(ws.Fetch(...)) drains an iterator into "key@start=value" strings.
func collect(t *testing.T) func(window.Iterator, error) []string {
	return func(it window.Iterator, err error) []string {
		t.Helper()
		must(t, err)
		defer it.Close()
		var out []string
		for it.Next() {
			out = append(out, fmt.Sprintf("%s@%d=%s", it.Key(), it.Start().UnixMilli(), it.Value()))
		}
		must(t, it.Err())
		return out
	}
}

func TestStoreFetchAndFetchAll(t *testing.T) {
	eachBacking(t, 0, func(t *testing.T, ws *window.Store, _ state.Store) {
		// Keys that are prefixes of one another, and a key whose bytes look
		// like a start, must not bleed into each other's windows.
		keys := []string{"", "a", "a\x00", "ab", "b", "\xff\xff\xff\xff\xff\xff\xff\xff"}
		for _, start := range []int64{-10, 0, 10, 20, 30} {
			for _, k := range keys {
				must(t, ws.Put([]byte(k), ms(start), fmt.Appendf(nil, "%d", start)))
			}
		}
		for _, k := range keys {
			got := collect(t)(ws.Fetch([]byte(k), ms(0), ms(30)))
			want := []string{k + "@0=0", k + "@10=10", k + "@20=20"}
			if !slices.Equal(got, want) {
				t.Errorf("Fetch(%q, [0,30)) = %q, want %q", k, got, want)
			}
		}
		if got := collect(t)(ws.Fetch([]byte("zz"), ms(-100), ms(100))); len(got) != 0 {
			t.Errorf("Fetch of an absent key = %q", got)
		}
		if got := collect(t)(ws.Fetch([]byte("a"), ms(30), ms(10))); len(got) != 0 {
			t.Errorf("Fetch of an inverted range = %q", got)
		}

		got := collect(t)(ws.FetchAll(ms(10), ms(30)))
		var want []string
		for _, start := range []int64{10, 20} {
			for _, k := range keys { // sorted already
				want = append(want, fmt.Sprintf("%s@%d=%d", k, start, start))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("FetchAll([10,30)) =\n%q\nwant\n%q", got, want)
		}
		if got := collect(t)(ws.FetchAll(ms(-10), ms(-9))); len(got) != len(keys) {
			t.Errorf("FetchAll of the pre-1970 window = %q", got)
		}
	})
}

// Fetch's skip scan must find exactly what a brute-force filter finds,
// whatever the mix of keys and starts.
func TestStoreFetchMatchesFilter(t *testing.T) {
	eachBacking(t, 0, func(t *testing.T, ws *window.Store, _ state.Store) {
		rng := rand.New(rand.NewPCG(3, 4))
		model := map[string]map[int64]bool{} // key -> starts
		for range 2000 {
			k, start := fmt.Sprintf("k%d", rng.IntN(30)), int64(rng.IntN(50))*7
			must(t, ws.Put([]byte(k), ms(start), []byte("v")))
			if model[k] == nil {
				model[k] = map[int64]bool{}
			}
			model[k][start] = true
		}
		found := 0
		for range 100 {
			k := fmt.Sprintf("k%d", rng.IntN(32)) // k30, k31 do not exist
			from, to := int64(rng.IntN(400)-20), int64(rng.IntN(400))
			var want []string
			for start := from; start < to; start++ {
				if model[k][start] {
					want = append(want, fmt.Sprintf("%s@%d=v", k, start))
				}
			}
			got := collect(t)(ws.Fetch([]byte(k), ms(from), ms(to)))
			if !slices.Equal(got, want) {
				t.Fatalf("Fetch(%s, [%d,%d)) = %q, want %q", k, from, to, got, want)
			}
			found += len(got)
		}
		if found < 100 {
			t.Fatalf("only %d windows found over all fetches; the test is too sparse", found)
		}
	})
}

func TestStoreExpire(t *testing.T) {
	eachBacking(t, 60*time.Millisecond, func(t *testing.T, ws *window.Store, _ state.Store) {
		for start := int64(0); start < 100; start += 10 {
			must(t, ws.Put([]byte("k"), ms(start), []byte("v")))
		}
		must(t, ws.Expire(ms(100))) // cutoff 40: starts 0..30 go, 40 stays
		got := collect(t)(ws.FetchAll(ms(-1000), ms(1000)))
		if len(got) != 6 || got[0] != "k@40=v" {
			t.Fatalf("after Expire(100): %q", got)
		}
		if v, _ := ws.Get([]byte("k"), ms(30)); v != nil {
			t.Fatal("expired window still readable")
		}
		if err := ws.Put([]byte("k"), ms(30), []byte("late")); !errors.Is(err, window.ErrExpired) {
			t.Fatalf("Put into an expired window = %v, want ErrExpired", err)
		}
		must(t, ws.Put([]byte("k"), ms(40), []byte("still open")))

		must(t, ws.Expire(ms(50))) // stream time never goes back: no-op
		must(t, ws.Expire(ms(1000)))
		if got := collect(t)(ws.FetchAll(ms(-1000), ms(1000))); len(got) != 0 {
			t.Fatalf("after Expire(1000): %q", got)
		}
	})
}

func TestStoreWithoutRetentionKeepsEverything(t *testing.T) {
	ws := window.NewStore(state.NewMemory(), 0)
	must(t, ws.Put([]byte("k"), ms(0), []byte("v")))
	must(t, ws.Expire(ms(1<<50)))
	if v, _ := ws.Get([]byte("k"), ms(0)); string(v) != "v" {
		t.Fatal("retention 0 expired a window")
	}
}

// Expiry is ageing, not an update: through a cache, the windows' last updates
// reach onFlush but their removal does not.
func TestStoreExpireThroughCacheIsNotAnUpdate(t *testing.T) {
	var deletes, updates int
	c := state.NewCache(state.NewMemory(), 1<<20, func(entries []state.Dirty) error {
		for _, d := range entries {
			if d.Delete {
				deletes++
			} else {
				updates++
			}
		}
		return nil
	})
	ws := window.NewStore(c, 10*time.Millisecond)
	for start := int64(0); start < 50; start += 10 {
		must(t, ws.Put([]byte("k"), ms(start), []byte("v")))
	}
	must(t, ws.Expire(ms(45))) // deletes starts 0..30
	must(t, c.Flush())
	if deletes != 0 || updates != 5 {
		t.Fatalf("onFlush saw %d updates and %d deletes; want 5 and 0", updates, deletes)
	}
}

func TestKeyEncoding(t *testing.T) {
	for _, tt := range []struct {
		key   string
		start int64
	}{{"", 0}, {"k", 1}, {"k", -1}, {"\x00\xff", 1_700_000_000_000}, {"k", -1 << 62}} {
		b := window.EncodeKey([]byte(tt.key), ms(tt.start))
		key, start, err := window.DecodeKey(b)
		if err != nil || string(key) != tt.key || start.UnixMilli() != tt.start {
			t.Errorf("round trip of %q@%d = %q@%v, %v", tt.key, tt.start, key, start, err)
		}
	}
	// Start-first order: every key at an earlier start sorts first.
	a := window.EncodeKey([]byte("zzz"), ms(-1))
	b := window.EncodeKey(nil, ms(0))
	c := window.EncodeKey([]byte("a"), ms(1))
	if bytes.Compare(a, b) >= 0 || bytes.Compare(b, c) >= 0 {
		t.Fatal("store keys do not sort by start first")
	}
	if _, _, err := window.DecodeKey([]byte{1, 2, 3}); !errors.Is(err, serde.ErrDecode) {
		t.Fatalf("short key: %v", err)
	}
}

func FuzzDecodeKey(f *testing.F) {
	f.Add(window.EncodeKey([]byte("k"), ms(60_000)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		key, start, err := window.DecodeKey(b)
		if err != nil {
			if !errors.Is(err, serde.ErrDecode) || len(b) >= 8 {
				t.Fatalf("DecodeKey(% x) = %v", b, err)
			}
			return
		}
		if again := window.EncodeKey(key, start); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded % x, input % x", again, b)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
