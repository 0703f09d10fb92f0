package state_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-io/weir/state"
)

func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".checkpoint")
	cp, err := state.ReadCheckpoint(path)
	if err != nil || cp == nil || len(cp) != 0 {
		t.Fatalf("missing file = %v, %v; want an empty checkpoint", cp, err)
	}

	cp = state.Checkpoint{
		state.CheckpointKey("app-counts-changelog", 0):  42,
		state.CheckpointKey("app-counts-changelog", 11): 0,
		state.CheckpointKey("a-b-c", 3):                 1 << 40,
	}
	must(t, state.WriteCheckpoint(path, cp))
	got, err := state.ReadCheckpoint(path)
	must(t, err)
	if !maps.Equal(got, cp) {
		t.Fatalf("read %v, wrote %v", got, cp)
	}

	// The file is Kafka's format, entries sorted.
	b, _ := os.ReadFile(path)
	want := "0\n3\na-b-c 3 1099511627776\napp-counts-changelog 0 42\napp-counts-changelog 11 0\n"
	if string(b) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", b, want)
	}

	// Overwriting leaves no temporary files behind.
	must(t, state.WriteCheckpoint(path, state.Checkpoint{}))
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files after rewrite, want 1", len(entries))
	}
	if got, err := state.ReadCheckpoint(path); err != nil || len(got) != 0 {
		t.Fatalf("empty checkpoint read back as %v, %v", got, err)
	}
}

func TestCheckpointRejectsBadKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".checkpoint")
	for _, cp := range []state.Checkpoint{
		{"no-partition": 1},
		{"topic": 1},
		{"-3": 1},
		{"has space-1": 1},
		{"topic-01": 1},
		{"topic-1": -1},
	} {
		if err := state.WriteCheckpoint(path, cp); err == nil {
			t.Errorf("WriteCheckpoint(%v) succeeded", cp)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a rejected checkpoint left a file")
	}
}

func TestCheckpointCorrupt(t *testing.T) {
	tests := map[string]string{
		"empty":           "",
		"bad version":     "1\n0\n",
		"no count":        "0\n",
		"bad count":       "0\nx\n",
		"negative count":  "0\n-1\n",
		"too few entries": "0\n2\nt 0 1\n",
		"too many":        "0\n1\nt 0 1\nt 1 1\n",
		"two fields":      "0\n1\nt 0\n",
		"tab separated":   "0\n1\nt\t0\t1\n",
		"bad partition":   "0\n1\nt x 1\n",
		"neg partition":   "0\n1\nt -1 1\n",
		"bad offset":      "0\n1\nt 0 1x\n",
		"neg offset":      "0\n1\nt 0 -4\n",
		"duplicate":       "0\n2\nt 0 1\nt 0 2\n",
		"huge count":      "0\n99999999999\n",
		"binary":          "\x00\xff\x10",
	}
	dir := t.TempDir()
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			must(t, os.WriteFile(path, []byte(content), 0o644))
			cp, err := state.ReadCheckpoint(path)
			if !errors.Is(err, state.ErrCorruptCheckpoint) {
				t.Fatalf("ReadCheckpoint(%q) = %v, %v; want ErrCorruptCheckpoint", content, cp, err)
			}
		})
	}
}

// FuzzCheckpoint checks that reading never panics, that every failure is
// ErrCorruptCheckpoint, and that whatever reads successfully writes back to a
// file that reads the same.
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte("0\n2\na 0 1\nb 3 4\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n1\nt 0 1\n\n\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "in")
		must(t, os.WriteFile(path, b, 0o644))
		cp, err := state.ReadCheckpoint(path)
		if err != nil {
			if !errors.Is(err, state.ErrCorruptCheckpoint) {
				t.Fatalf("error %v is not ErrCorruptCheckpoint", err)
			}
			return
		}
		out := filepath.Join(dir, "out")
		must(t, state.WriteCheckpoint(out, cp))
		again, err := state.ReadCheckpoint(out)
		if err != nil || !maps.Equal(cp, again) {
			t.Fatalf("round trip of %v gave %v, %v", cp, again, err)
		}
	})
}
