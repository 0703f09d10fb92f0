package state_test

import (
	"testing"

	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/state/statetest"
)

func TestMemoryConformance(t *testing.T) {
	statetest.Run(t, func(testing.TB) state.Store { return state.NewMemory() })
}

func TestLevelDBConformance(t *testing.T) {
	statetest.Run(t, func(t testing.TB) state.Store { return openLevelDB(t, t.TempDir()) })
}

// The cache must behave as a Store whatever its size: all in memory, always
// evicting, or with nothing cached at all.
func TestCacheConformance(t *testing.T) {
	for _, tt := range []struct {
		name     string
		maxBytes int
		leveldb  bool
	}{
		{"Large/Memory", 1 << 20, false},
		{"Small/Memory", 600, false},
		{"Zero/Memory", 0, false},
		{"Large/LevelDB", 1 << 20, true},
		{"Small/LevelDB", 600, true},
		{"Zero/LevelDB", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			statetest.Run(t, func(t testing.TB) state.Store {
				var s state.Store = state.NewMemory()
				if tt.leveldb {
					s = openLevelDB(t, t.TempDir())
				}
				return state.NewCache(s, tt.maxBytes, nil)
			})
		})
	}
}

func openLevelDB(t testing.TB, dir string) state.Store {
	t.Helper()
	s, err := state.OpenLevelDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPrefixRange(t *testing.T) {
	tests := []struct {
		prefix, start, end []byte
	}{
		{nil, []byte{}, nil},
		{[]byte("ab"), []byte("ab"), []byte("ac")},
		{[]byte{'a', 0xff}, []byte{'a', 0xff}, []byte("b")},
		{[]byte{0xff, 0xff}, []byte{0xff, 0xff}, nil},
	}
	for _, tt := range tests {
		start, end := state.PrefixRange(tt.prefix)
		if string(start) != string(tt.start) || string(end) != string(tt.end) || (end == nil) != (tt.end == nil) {
			t.Errorf("PrefixRange(%x) = %x, %x; want %x, %x", tt.prefix, start, end, tt.start, tt.end)
		}
	}
}
