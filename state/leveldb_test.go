package state_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-io/weir/state"
)

func TestLevelDBPersists(t *testing.T) {
	dir := t.TempDir()
	s := openLevelDB(t, dir)
	put(t, s, "k", "v", "empty", "")
	must(t, s.Flush())
	must(t, s.Close())

	s = openLevelDB(t, dir)
	defer s.Close()
	wantGet(t, s, "k", "v")
	if v, err := s.Get([]byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value after reopen = %#v, %v", v, err)
	}
}

func TestLevelDBRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := openLevelDB(t, dir)
	defer s.Close()
	if s2, err := state.OpenLevelDB(dir); err == nil {
		s2.Close()
		t.Fatal("opened a store directory that is already open")
	}
}

func TestLevelDBOptions(t *testing.T) {
	s, err := state.OpenLevelDB(t.TempDir(), state.WriteBufferSize(64<<10), state.BlockCacheSize(1<<20), state.OpenFilesLimit(16))
	must(t, err)
	defer s.Close()
	for i := range 5000 { // several write buffers' worth, so tables get written
		must(t, s.Put(fmt.Appendf(nil, "k%05d", i), make([]byte, 64)))
	}
	wantGet(t, s, "k04999", string(make([]byte, 64)))
}

// fillLevelDB writes enough to a store for LevelDB to create table files,
// as well as a journal and a manifest.
func fillLevelDB(t *testing.T, dir string) {
	t.Helper()
	s, err := state.OpenLevelDB(dir, state.WriteBufferSize(64<<10))
	must(t, err)
	for i := range 5000 {
		must(t, s.Put(fmt.Appendf(nil, "k%05d", i), make([]byte, 64)))
	}
	must(t, s.Flush())
	must(t, s.Close())
}

func overwrite(t *testing.T, dir, glob string, data []byte) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, glob))
	if len(files) == 0 {
		t.Fatalf("no %s files in %s", glob, dir)
	}
	for _, f := range files {
		must(t, os.WriteFile(f, data, 0o644))
	}
}

// A damaged store must fail loudly — at open, or at the first read of a
// damaged table — with ErrCorrupt, never open with data silently missing.
// Recovery is deleting the directory.
func TestLevelDBCorruption(t *testing.T) {
	garbage := []byte("this is not leveldb data, not in the least, no")
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		lazy   bool // detected at the first read rather than at open
	}{
		{name: "garbage CURRENT", damage: func(t *testing.T, dir string) { overwrite(t, dir, "CURRENT", garbage) }},
		{name: "garbage manifest", damage: func(t *testing.T, dir string) { overwrite(t, dir, "MANIFEST-*", garbage) }},
		{name: "garbage journal", damage: func(t *testing.T, dir string) { overwrite(t, dir, "*.log", garbage) }},
		{name: "garbage tables", lazy: true, damage: func(t *testing.T, dir string) { overwrite(t, dir, "*.ldb", garbage) }},
		{name: "missing tables", damage: func(t *testing.T, dir string) {
			files, _ := filepath.Glob(filepath.Join(dir, "*.ldb"))
			for _, f := range files {
				must(t, os.Remove(f))
			}
		}},
		{name: "journal without manifest", damage: func(t *testing.T, dir string) {
			for _, glob := range []string{"CURRENT*", "MANIFEST-*", "*.ldb"} {
				files, _ := filepath.Glob(filepath.Join(dir, glob))
				for _, f := range files {
					must(t, os.Remove(f))
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fillLevelDB(t, dir)
			tt.damage(t, dir)

			s, err := state.OpenLevelDB(dir)
			if err == nil {
				if !tt.lazy {
					s.Close()
					t.Fatal("opened a damaged store")
				}
				_, err = s.Get([]byte("k00001"))
				s.Close()
			}
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			t.Log(err)

			// The documented recovery: delete the directory, start empty.
			must(t, os.RemoveAll(dir))
			s = openLevelDB(t, dir)
			defer s.Close()
			if v, err := s.Get([]byte("k00001")); err != nil || v != nil {
				t.Fatalf("fresh store: %q, %v", v, err)
			}
		})
	}
}
