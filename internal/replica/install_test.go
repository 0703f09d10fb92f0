package replica

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leaderWithData returns an FSM holding entries(t) plus more batches
// (several segments), its applied state and that state's full stream.
func leaderWithData(t *testing.T) (*FSM, fsmState, []byte) {
	t.Helper()
	f := openFSM(t, t.TempDir())
	t.Cleanup(func() { f.Close() })
	logs := entries(t)
	for i := range 40 {
		logs = append(logs, batchLog(uint64(len(logs)+1), mkBatch(t, 6, 0, int32(4+i), 1, "more")))
	}
	for _, l := range logs {
		apply(f, l)
	}
	f.mu.Lock()
	st := f.state()
	f.mu.Unlock()
	return f, st, streamOf(t, f, st)
}

// behind returns the directory of a closed FSM that applied a prefix of
// what the leader did and then something else on its own (a diverged
// tail), which an install must replace entirely.
func behind(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f := openFSM(t, dir)
	for _, l := range entries(t)[:3] {
		apply(f, l)
	}
	apply(f, batchLog(4, mkBatch(t, -1, -1, -1, 9, "stale")))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkInstalled checks that the FSM in dir is the leader's state.
func checkInstalled(t *testing.T, g *FSM, ld *FSM, st fsmState) {
	t.Helper()
	if g.AppliedIndex() != st.Index || g.HighWatermark() != st.LogEnd || g.Log().EndOffset() != st.LogEnd {
		t.Fatalf("installed at index %d hw %d end %d, want %d/%d", g.AppliedIndex(), g.HighWatermark(), g.Log().EndOffset(), st.Index, st.LogEnd)
	}
	if err := ld.Log().Sync(st.LogEnd); err != nil {
		t.Fatal(err)
	}
	want, got := segmentBytes(t, ld.dir), segmentBytes(t, g.dir)
	if len(got) != len(want) {
		t.Fatalf("%d segments, want %d", len(got), len(want))
	}
	for n, b := range want {
		if !bytes.Equal(got[n], b) {
			t.Fatalf("segment %s differs", n)
		}
	}
	for _, n := range []string{stageDir, installMarker} {
		if _, err := os.Stat(filepath.Join(g.dir, n)); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", n, err)
		}
	}
	// Producer windows came with the state: a retry is a duplicate.
	if r := apply(g, batchLog(st.Index+1, mkBatch(t, 6, 0, 43, 1, "more"))); !r.(Result).Duplicate {
		t.Fatalf("retry after install: %#v", r)
	}
}

// TestRestoreFromStream restores a behind FSM from a stream carrying the
// data, as raft does through a store that keeps whole streams.
func TestRestoreFromStream(t *testing.T) {
	ld, st, stream := leaderWithData(t)
	g := openFSM(t, behind(t))
	defer g.Close()
	if err := g.Restore(io.NopCloser(bytes.NewReader(stream))); err != nil {
		t.Fatal(err)
	}
	if g.installs.Load() != 1 {
		t.Fatal("not installed")
	}
	checkInstalled(t, g, ld, st)
}

// TestInstallKeepsLogConfig: a config set after the FSM opened applies to
// the log an install opens, not only to the one it replaced.
func TestInstallKeepsLogConfig(t *testing.T) {
	_, _, stream := leaderWithData(t)
	g := openFSM(t, behind(t))
	defer g.Close()
	cfg := g.Log().Config()
	cfg.RetentionTime = 12345 * time.Millisecond
	g.SetLogConfig(cfg)
	if err := g.Restore(io.NopCloser(bytes.NewReader(stream))); err != nil {
		t.Fatal(err)
	}
	if g.installs.Load() != 1 {
		t.Fatal("not installed")
	}
	if got := g.Log().Config().RetentionTime; got != 12345*time.Millisecond {
		t.Fatalf("installed log has retention %v, want the 12.345s set before the install", got)
	}
}

// TestInstallCrash interrupts the swap of a staged install after every
// step and reopens: OpenFSM finishes it.
func TestInstallCrash(t *testing.T) {
	ld, st, stream := leaderWithData(t)
	for k := 0; ; k++ {
		dir := behind(t)
		r := bytes.NewReader(stream)
		head, _, err := readStreamHead(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := stage(dir, logConfig(), r, head); err != nil {
			t.Fatal(err)
		}
		ops := swapSteps(t, dir)
		if k > len(ops) {
			break
		}
		for _, op := range ops[:k] {
			if err := op(); err != nil {
				t.Fatal(err)
			}
		}
		g := openFSM(t, dir)
		if k == 0 {
			// Staged but not swapped: the old state stands, and raft's
			// restore at startup would install it.
			if g.AppliedIndex() != 4 || !staged(dir, &st) {
				t.Fatalf("step 0: applied %d, staged %v", g.AppliedIndex(), staged(dir, &st))
			}
			g.Close()
			continue
		}
		checkInstalled(t, g, ld, st)
		g.Close()
	}
}

// swapSteps returns swapStage's steps one by one: write the marker, remove
// each old file, move each staged file in, remove the stage, remove the
// marker.
func swapSteps(t *testing.T, dir string) []func() error {
	t.Helper()
	stage := filepath.Join(dir, stageDir)
	staged, err := os.ReadDir(stage)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range staged {
		names = append(names, e.Name())
	}
	ops := []func() error{func() error {
		return writeFileAtomic(dir, installMarker, []byte(strings.Join(names, "\n")))
	}}
	for _, e := range old {
		if e.Type().IsRegular() {
			p := filepath.Join(dir, e.Name())
			ops = append(ops, func() error { return os.Remove(p) })
		}
	}
	for _, n := range names {
		ops = append(ops, func() error { return os.Rename(filepath.Join(stage, n), filepath.Join(dir, n)) })
	}
	return append(ops,
		func() error { return os.RemoveAll(stage) },
		func() error { return os.Remove(filepath.Join(dir, installMarker)) })
}
