package state_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/state/statetest"
)

// committing commits its TxnStore every few writes, so the conformance
// suite reads keys that live in the overlay, in the store beneath, or in
// both.
type committing struct {
	*state.TxnStore
	t      testing.TB
	writes int
	every  int
}

func (c *committing) tick(err error) error {
	c.writes++
	if err == nil && c.every > 0 && c.writes%c.every == 0 {
		must(c.t, c.TxnStore.Commit())
	}
	return err
}

func (c *committing) Put(k, v []byte) error          { return c.tick(c.TxnStore.Put(k, v)) }
func (c *committing) Delete(k []byte) error          { return c.tick(c.TxnStore.Delete(k)) }
func (c *committing) Write(b []state.Mutation) error { return c.tick(c.TxnStore.Write(b)) }
func (c *committing) DeleteRange(s, e []byte) error  { return c.tick(c.TxnStore.DeleteRange(s, e)) }

func TestTxnStoreConformance(t *testing.T) {
	for _, tt := range []struct {
		name    string
		every   int // commit every so many writes; 0: never
		leveldb bool
	}{
		{"Uncommitted/Memory", 0, false},
		{"Uncommitted/LevelDB", 0, true},
		{"Commit7/Memory", 7, false},
		{"Commit7/LevelDB", 7, true},
		{"Commit1/LevelDB", 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			statetest.Run(t, func(t testing.TB) state.Store {
				var base state.Store = state.NewMemory()
				if tt.leveldb {
					base = openLevelDB(t, t.TempDir())
				}
				return &committing{TxnStore: state.NewTxnStore(base), t: t, every: tt.every}
			})
		})
	}
}

// A cache over a transactional store is what an exactly-once task uses.
func TestTxnStoreUnderCacheConformance(t *testing.T) {
	statetest.Run(t, func(t testing.TB) state.Store {
		return state.NewCache(state.NewTxnStore(openLevelDB(t, t.TempDir())), 600, nil)
	})
}

func TestTxnStoreCommitAndAbort(t *testing.T) {
	base := state.NewMemory()
	put(t, base, "a", "0", "b", "0", "c", "0")
	s := state.NewTxnStore(base)
	defer s.Close()

	put(t, s, "a", "1", "d", "1")
	must(t, s.Delete([]byte("b")))
	// Read-your-writes over the base, which is untouched.
	wantGet(t, s, "a", "1")
	wantMissing(t, s, "b")
	wantGet(t, s, "d", "1")
	if got, want := rangeEntries(t, s, nil, nil), []string{"a=1", "c=0", "d=1"}; !slices.Equal(got, want) {
		t.Fatalf("Range = %q, want %q", got, want)
	}
	if got, want := rangeEntries(t, base, nil, nil), []string{"a=0", "b=0", "c=0"}; !slices.Equal(got, want) {
		t.Fatalf("base before Commit = %q, want %q", got, want)
	}
	if n, _ := s.Uncommitted(); n != 3 {
		t.Fatalf("Uncommitted = %d keys, want 3", n)
	}

	s.Abort()
	if got, want := rangeEntries(t, s, nil, nil), []string{"a=0", "b=0", "c=0"}; !slices.Equal(got, want) {
		t.Fatalf("after Abort = %q, want %q", got, want)
	}

	put(t, s, "a", "2")
	must(t, s.DeleteRange([]byte("b"), nil))
	put(t, s, "e", "2")
	if got, want := rangeEntries(t, s, nil, nil), []string{"a=2", "e=2"}; !slices.Equal(got, want) {
		t.Fatalf("after DeleteRange = %q, want %q", got, want)
	}
	must(t, s.Commit())
	if got, want := rangeEntries(t, base, nil, nil), []string{"a=2", "e=2"}; !slices.Equal(got, want) {
		t.Fatalf("base after Commit = %q, want %q", got, want)
	}
	if n, _ := s.Uncommitted(); n != 0 {
		t.Fatalf("Uncommitted after Commit = %d keys", n)
	}
	s.Abort() // nothing to drop
	wantGet(t, s, "a", "2")
}

// A crash — the process ends without Commit — leaves the store on disk as
// the last Commit left it.
func TestTxnStoreCrashLosesUncommitted(t *testing.T) {
	dir := t.TempDir()
	s := state.NewTxnStore(openLevelDB(t, dir))
	put(t, s, "committed", "yes", "gone", "x")
	must(t, s.Commit())
	put(t, s, "uncommitted", "no", "committed", "overwritten")
	must(t, s.Delete([]byte("gone")))
	must(t, s.Flush()) // not a commit
	must(t, s.Close()) // as a crash: the overlay is dropped

	s = state.NewTxnStore(openLevelDB(t, dir))
	defer s.Close()
	wantGet(t, s, "committed", "yes")
	wantGet(t, s, "gone", "x")
	wantMissing(t, s, "uncommitted")
}

// An iterator open across a Commit or an Abort keeps its place and sees
// each key once.
func TestTxnStoreIteratorAcrossCommit(t *testing.T) {
	s := state.NewTxnStore(openLevelDB(t, t.TempDir()))
	defer s.Close()
	for i := range 20 {
		put(t, s, fmt.Sprintf("k%02d", i), "v")
		if i == 9 {
			must(t, s.Commit())
		}
	}
	it, err := s.Range(nil, nil)
	must(t, err)
	var got []string
	for i := 0; it.Next(); i++ {
		got = append(got, string(it.Key()))
		switch i {
		case 4:
			must(t, s.Commit())
		case 12:
			put(t, s, "k99", "new")
			s.Abort()
		}
	}
	must(t, it.Close())
	if len(got) != 20 || got[0] != "k00" || got[19] != "k19" || !slices.IsSorted(got) {
		t.Fatalf("iterated %q", got)
	}
}

// Random transactions against a model: committed state in the base equals
// the model after each commit, and aborts restore the last commit.
func TestTxnStoreMatchesModel(t *testing.T) {
	base := openLevelDB(t, t.TempDir())
	s := state.NewTxnStore(base)
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	committed, cur := map[string]string{}, map[string]string{}
	key := func() string { return fmt.Sprintf("%02d", rng.IntN(30)) }
	for i := range 2000 {
		switch op := rng.IntN(20); {
		case op < 9:
			k, v := key(), fmt.Sprint(i)
			put(t, s, k, v)
			cur[k] = v
		case op < 14:
			k := key()
			must(t, s.Delete([]byte(k)))
			delete(cur, k)
		case op < 15:
			lo, hi := key(), key()
			must(t, s.DeleteRange([]byte(lo), []byte(hi)))
			for k := range cur {
				if k >= lo && k < hi {
					delete(cur, k)
				}
			}
		case op < 17:
			must(t, s.Commit())
			committed = clone(cur)
			if got, want := rangeEntries(t, base, nil, nil), sortedEntries(committed); !slices.Equal(got, want) {
				t.Fatalf("op %d: base after Commit %q, model %q", i, got, want)
			}
		case op < 18:
			s.Abort()
			cur = clone(committed)
		default:
			if got, want := rangeEntries(t, s, nil, nil), sortedEntries(cur); !slices.Equal(got, want) {
				t.Fatalf("op %d: Range %q, model %q", i, got, want)
			}
		}
	}
}

func wantMissing(t testing.TB, s state.Store, key string) {
	t.Helper()
	if v, err := s.Get([]byte(key)); err != nil || v != nil {
		t.Fatalf("Get(%q) = %q, %v; want absent", key, v, err)
	}
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedEntries(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
