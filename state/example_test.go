package state_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/weir-io/weir/state"
)

func Example() {
	dir, _ := os.MkdirTemp("", "weir-state")
	defer os.RemoveAll(dir)

	s, err := state.OpenLevelDB(filepath.Join(dir, "counts"))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	_ = s.Put([]byte("apple"), []byte("3"))
	_ = s.Put([]byte("banana"), []byte("5"))
	_ = s.Put([]byte("cherry"), []byte("7"))

	v, _ := s.Get([]byte("banana"))
	fmt.Printf("banana=%s\n", v)
	if v, _ := s.Get([]byte("durian")); v == nil {
		fmt.Println("durian is absent")
	}

	it, _ := s.Range([]byte("b"), nil) // from "b" to the end
	defer it.Close()
	for it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		panic(err)
	}
	// Output:
	// banana=5
	// durian is absent
	// banana=5
	// cherry=7
}

// The cache collapses updates to a key between flushes and hands each
// surviving update, with the value it replaces, to onFlush.
func ExampleNewCache() {
	store := state.NewMemory()
	_ = store.Put([]byte("clicks"), []byte("10"))

	cache := state.NewCache(store, 10<<20, func(updates []state.Dirty) error {
		for _, u := range updates {
			fmt.Printf("forward %s: %s -> %s\n", u.Key, u.Old, u.Value)
		}
		return nil
	})
	for _, n := range []string{"11", "12", "13"} {
		_ = cache.Put([]byte("clicks"), []byte(n))
	}
	_ = cache.Put([]byte("views"), []byte("1"))

	_ = cache.Flush() // at commit
	v, _ := store.Get([]byte("clicks"))
	fmt.Printf("store: clicks=%s\n", v)
	// Output:
	// forward clicks: 10 -> 13
	// forward views:  -> 1
	// store: clicks=13
}

func ExampleWriteCheckpoint() {
	dir, _ := os.MkdirTemp("", "weir-checkpoint")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, ".checkpoint")

	cp := state.Checkpoint{state.CheckpointKey("wordcount-counts-changelog", 2): 1042}
	if err := state.WriteCheckpoint(path, cp); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))

	back, _ := state.ReadCheckpoint(path)
	fmt.Println(back["wordcount-counts-changelog-2"])
	// Output:
	// 0
	// 1
	// wordcount-counts-changelog 2 1042
	// 1042
}
