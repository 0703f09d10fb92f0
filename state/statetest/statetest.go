// Package statetest is the conformance suite for state.Store implementations.
//
// Every Store in weir — LevelDB, memory, the record cache over either — passes
// Run, so code written against the interface behaves the same on all of them.
// A new implementation (Pebble, say) should too:
//
//	func TestConformance(t *testing.T) {
//		statetest.Run(t, func(t testing.TB) state.Store { return mystore.Open(t.TempDir()) })
//	}
package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weir-io/weir/state"
)

// Opener returns a new, empty store for one test. Run closes it, except in
// tests that close it themselves.
type Opener func(t testing.TB) state.Store

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"GetAbsentAndEmpty", testGetAbsentAndEmpty},
		{"PutOverwriteDelete", testPutOverwriteDelete},
		{"CopiesBuffers", testCopiesBuffers},
		{"RangeBounds", testRangeBounds},
		{"RangeWhileDeleting", testRangeWhileDeleting},
		{"WriteBatchLastWins", testWriteBatchLastWins},
		{"DeleteRange", testDeleteRange},
		{"MatchesModel", testMatchesModel},
		{"Flush", testFlush},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tt.fn(t, s)
		})
	}
	t.Run("Closed", func(t *testing.T) { testClosed(t, open(t)) })
}

func testGetAbsentAndEmpty(t *testing.T, s state.Store) {
	if v, err := s.Get([]byte("missing")); err != nil || v != nil {
		t.Fatalf("Get(absent) = %q, %v; want nil, nil", v, err)
	}
	must(t, s.Put([]byte("empty"), nil))
	if v, err := s.Get([]byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get(present, empty) = %#v, %v; want non-nil empty slice", v, err)
	}
	must(t, s.Put([]byte{}, []byte("empty key")))
	if v, err := s.Get(nil); err != nil || string(v) != "empty key" {
		t.Fatalf("Get(empty key) = %q, %v", v, err)
	}
}

func testPutOverwriteDelete(t *testing.T, s state.Store) {
	k := []byte("k")
	must(t, s.Put(k, []byte("v1")))
	must(t, s.Put(k, []byte("v2")))
	wantGet(t, s, "k", "v2")
	must(t, s.Delete(k))
	wantAbsent(t, s, "k")
	must(t, s.Delete(k)) // deleting an absent key is fine
	must(t, s.Delete([]byte("never")))
}

func testCopiesBuffers(t *testing.T, s state.Store) {
	k, v := []byte("key"), []byte("value")
	must(t, s.Put(k, v))
	k[0], v[0] = 'X', 'X'
	wantGet(t, s, "key", "value")

	got, err := s.Get([]byte("key"))
	must(t, err)
	got[0] = 'Y'
	wantGet(t, s, "key", "value")

	batch := []state.Mutation{{Key: []byte("b"), Value: []byte("bv")}}
	must(t, s.Write(batch))
	batch[0].Key[0], batch[0].Value[0] = 'Z', 'Z'
	wantGet(t, s, "b", "bv")
}

func testRangeBounds(t *testing.T, s state.Store) {
	for _, k := range []string{"a", "b", "ba", "c", "d\x00", "d\xff", "e"} {
		must(t, s.Put([]byte(k), []byte("v"+k)))
	}
	tests := []struct {
		start, end []byte
		want       []string
	}{
		{nil, nil, []string{"a", "b", "ba", "c", "d\x00", "d\xff", "e"}},
		{[]byte("b"), []byte("c"), []string{"b", "ba"}},
		{[]byte("b"), nil, []string{"b", "ba", "c", "d\x00", "d\xff", "e"}},
		{nil, []byte("b"), []string{"a"}},
		{[]byte("bb"), []byte("zz"), []string{"c", "d\x00", "d\xff", "e"}},
		{[]byte("c"), []byte("c"), nil}, // empty
		{[]byte("d"), []byte("c"), nil}, // inverted
		{[]byte{}, []byte{}, nil},       // empty end: nothing sorts below it
		{[]byte{}, []byte("a\x00"), []string{"a"}},
		{[]byte("f"), nil, nil},
	}
	for _, tt := range tests {
		if got := keys(t, s, tt.start, tt.end); !slices.Equal(got, tt.want) {
			t.Errorf("Range(%q, %q) = %q, want %q", tt.start, tt.end, got, tt.want)
		}
	}
	pstart, pend := state.PrefixRange([]byte("d"))
	if got := keys(t, s, pstart, pend); !slices.Equal(got, []string{"d\x00", "d\xff"}) {
		t.Errorf("PrefixRange(d) keys = %q", got)
	}
	// Values come with their keys.
	it, err := s.Range([]byte("c"), []byte("c\x00"))
	must(t, err)
	defer it.Close()
	if !it.Next() || string(it.Key()) != "c" || string(it.Value()) != "vc" {
		t.Fatalf("Range(c) first = %q=%q", it.Key(), it.Value())
	}
	if it.Next() {
		t.Fatalf("Range(c) has a second key %q", it.Key())
	}
	must(t, it.Close())
}

func testRangeWhileDeleting(t *testing.T, s state.Store) {
	for i := range 100 {
		must(t, s.Put(fmt.Appendf(nil, "k%03d", i), []byte("v")))
	}
	it, err := s.Range(nil, nil)
	must(t, err)
	n := 0
	var last []byte
	for it.Next() {
		if last != nil && bytes.Compare(it.Key(), last) <= 0 {
			t.Fatalf("key %q after %q", it.Key(), last)
		}
		last = bytes.Clone(it.Key())
		must(t, s.Delete(it.Key()))
		n++
	}
	must(t, it.Close())
	if n != 100 {
		t.Fatalf("iterated %d keys while deleting them, want 100", n)
	}
	if got := keys(t, s, nil, nil); len(got) != 0 {
		t.Fatalf("keys left after deleting all: %q", got)
	}
}

func testWriteBatchLastWins(t *testing.T, s state.Store) {
	must(t, s.Put([]byte("gone"), []byte("x")))
	must(t, s.Write([]state.Mutation{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("2")},
		{Key: []byte("b"), Value: []byte("1")},
		{Key: []byte("b"), Delete: true},
		{Key: []byte("gone"), Delete: true},
		{Key: []byte("c"), Delete: true},
		{Key: []byte("c"), Value: []byte("3")},
	}))
	wantGet(t, s, "a", "2")
	wantAbsent(t, s, "b")
	wantAbsent(t, s, "gone")
	wantGet(t, s, "c", "3")
	must(t, s.Write(nil))
}

func testDeleteRange(t *testing.T, s state.Store) {
	for i := range 3000 { // more than one internal delete chunk
		must(t, s.Put(fmt.Appendf(nil, "k%04d", i), []byte("v")))
	}
	must(t, s.DeleteRange([]byte("k0100"), []byte("k2900")))
	if got := keys(t, s, nil, nil); len(got) != 200 || got[99] != "k0099" || got[100] != "k2900" {
		t.Fatalf("after DeleteRange: %d keys, around the gap %q", len(got), got[98:102])
	}
	must(t, s.DeleteRange([]byte("z"), []byte("a"))) // inverted: nothing
	must(t, s.DeleteRange(nil, []byte("k0050")))
	must(t, s.DeleteRange([]byte("k2950"), nil))
	if got := keys(t, s, nil, nil); len(got) != 100 || got[0] != "k0050" || got[99] != "k2949" {
		t.Fatalf("after open-ended DeleteRange: %d keys %q..%q", len(got), got[0], got[len(got)-1])
	}
	must(t, s.DeleteRange(nil, nil))
	if got := keys(t, s, nil, nil); len(got) != 0 {
		t.Fatalf("after DeleteRange(nil, nil): %q", got)
	}
}

// testMatchesModel runs random operations against the store and a map and
// compares every read.
func testMatchesModel(t *testing.T, s state.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]string{}
	key := func() []byte { return fmt.Appendf(nil, "%02d", rng.IntN(40)) }
	for i := range 3000 {
		switch op := rng.IntN(10); {
		case op < 4:
			k, v := key(), fmt.Appendf(nil, "v%d", i)
			must(t, s.Put(k, v))
			model[string(k)] = string(v)
		case op < 6:
			k := key()
			must(t, s.Delete(k))
			delete(model, string(k))
		case op < 7:
			var batch []state.Mutation
			for range rng.IntN(5) {
				m := state.Mutation{Key: key(), Value: fmt.Appendf(nil, "b%d", i), Delete: rng.IntN(3) == 0}
				batch = append(batch, m)
				if m.Delete {
					delete(model, string(m.Key))
				} else {
					model[string(m.Key)] = string(m.Value)
				}
			}
			must(t, s.Write(batch))
		case op < 8:
			lo, hi := key(), key()
			must(t, s.DeleteRange(lo, hi))
			for k := range model {
				if k >= string(lo) && k < string(hi) {
					delete(model, k)
				}
			}
		case op < 9:
			k := key()
			got, err := s.Get(k)
			must(t, err)
			want, ok := model[string(k)]
			if ok != (got != nil) || string(got) != want {
				t.Fatalf("op %d: Get(%s) = %q, model has %q (%v)", i, k, got, want, ok)
			}
		default:
			lo, hi := key(), key()
			var want []string
			for k, v := range model {
				if k >= string(lo) && k < string(hi) {
					want = append(want, k+"="+v)
				}
			}
			slices.Sort(want)
			if got := entries(t, s, lo, hi); !slices.Equal(got, want) {
				t.Fatalf("op %d: Range(%s, %s) = %q, model has %q", i, lo, hi, got, want)
			}
		}
	}
}

func testFlush(t *testing.T, s state.Store) {
	must(t, s.Flush()) // nothing written yet
	must(t, s.Put([]byte("k"), []byte("v")))
	must(t, s.Flush())
	must(t, s.Delete([]byte("k")))
	must(t, s.Flush())
	wantAbsent(t, s, "k")
	must(t, s.Flush())
}

func testClosed(t *testing.T, s state.Store) {
	must(t, s.Put([]byte("k"), []byte("v")))
	must(t, s.Close())
	for name, err := range map[string]error{
		"Get":         second(s.Get([]byte("k"))),
		"Put":         s.Put([]byte("k"), nil),
		"Delete":      s.Delete([]byte("k")),
		"Write":       s.Write([]state.Mutation{{Key: []byte("k")}}),
		"DeleteRange": s.DeleteRange(nil, nil),
		"Range":       second(s.Range(nil, nil)),
		"Flush":       s.Flush(),
	} {
		if !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func keys(t testing.TB, s state.Store, start, end []byte) []string {
	t.Helper()
	var out []string
	for _, e := range entries(t, s, start, end) {
		k, _, _ := bytes.Cut([]byte(e), []byte("="))
		out = append(out, string(k))
	}
	return out
}

// entries returns "key=value" for each entry in [start, end).
func entries(t testing.TB, s state.Store, start, end []byte) []string {
	t.Helper()
	it, err := s.Range(start, end)
	must(t, err)
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	must(t, it.Err())
	must(t, it.Close())
	return out
}

func wantGet(t testing.TB, s state.Store, key, want string) {
	t.Helper()
	got, err := s.Get([]byte(key))
	if err != nil || string(got) != want || got == nil {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func wantAbsent(t testing.TB, s state.Store, key string) {
	t.Helper()
	if got, err := s.Get([]byte(key)); err != nil || got != nil {
		t.Fatalf("Get(%q) = %q, %v; want absent", key, got, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
