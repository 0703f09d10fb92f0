package replica

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
)

// entries returns a sequence of raft entries mixing appends, duplicates,
// refusals and non-command entries.
func entries(t testing.TB) []*raft.Log {
	t.Helper()
	p0 := mkBatch(t, 5, 0, 0, 2, "p0")
	var logs []*raft.Log
	add := func(typ raft.LogType, data []byte) {
		logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 2, Type: typ, Data: data})
	}
	add(raft.LogConfiguration, []byte("ignored"))
	add(raft.LogCommand, EncodeBatch(p0))
	add(raft.LogCommand, EncodeBatch(mkBatch(t, -1, -1, -1, 3, "plain")))
	add(raft.LogCommand, EncodeBatch(p0))                                 // duplicate
	add(raft.LogCommand, EncodeBatch(mkBatch(t, 5, 0, 7, 1, "gap")))      // refused
	add(raft.LogCommand, []byte{0xff, 1})                                 // bad entry
	add(raft.LogCommand, EncodeBatch(mkBatch(t, 5, 0, 2, 2, "p1")))       // continues
	add(raft.LogCommand, EncodeBatch(mkBatch(t, -1, -1, -1, 1, "plain"))) // identical plain batches both append
	add(raft.LogCommand, EncodeBatch(mkBatch(t, -1, -1, -1, 1, "plain")))
	add(raft.LogNoop, nil)
	add(raft.LogCommand, EncodeBatch(mkBatch(t, 5, 0, 2, 2, "p1"))) // duplicate again
	add(raft.LogCommand, EncodeBatch(mkBatch(t, 6, 0, 0, 4, "q")))
	return logs
}

func openFSM(t testing.TB, dir string) *FSM {
	t.Helper()
	f, err := OpenFSM(dir, logConfig())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func apply(f *FSM, l *raft.Log) any {
	// Apply a private copy, as raft's stores would after a round trip.
	c := *l
	c.Data = bytes.Clone(l.Data)
	if c.Type == raft.LogCommand && c.Index%2 == 1 {
		return f.Apply(&c) // raft uses ApplyBatch; exercise both
	}
	return f.ApplyBatch([]*raft.Log{&c})[0]
}

func TestFSMApply(t *testing.T) {
	f := openFSM(t, t.TempDir())
	defer f.Close()
	want := []any{
		nil,
		Result{Base: 0},
		Result{Base: 2},
		Result{Base: 0, Duplicate: true},
		kerr.OutOfOrderSequenceNumber,
		ErrBadEntry,
		Result{Base: 5},
		Result{Base: 7},
		Result{Base: 8},
		nil,
		Result{Base: 5, Duplicate: true},
		Result{Base: 9},
	}
	for i, l := range entries(t) {
		got := apply(f, l)
		if w, ok := want[i].(error); ok {
			r, _ := got.(Result)
			if !errors.Is(r.Err, w) {
				t.Fatalf("entry %d: %#v, want error %v", l.Index, got, w)
			}
			continue
		}
		if got != want[i] {
			t.Fatalf("entry %d: %#v, want %#v", l.Index, got, want[i])
		}
	}
	if f.HighWatermark() != 13 || f.Log().EndOffset() != 13 || f.AppliedIndex() != 12 {
		t.Fatalf("hw %d end %d applied %d", f.HighWatermark(), f.Log().EndOffset(), f.AppliedIndex())
	}
	// Stored batches carry the entry's term as leader epoch.
	bs, err := batch.Split(readAll(t, f.Log(), 13))
	if err != nil || len(bs) != 6 {
		t.Fatalf("%d batches, %v", len(bs), err)
	}
	for _, b := range bs {
		if h, err := batch.Validate(b); err != nil || h.LeaderEpoch != 2 {
			t.Fatalf("leader epoch %d, %v", h.LeaderEpoch, err)
		}
	}
}

// TestFSMRestartReplay reopens the FSM on its directory after a crash
// (log closed without a final checkpoint) and replays the whole raft log:
// nothing is appended twice and every answer is the same.
func TestFSMRestartReplay(t *testing.T) {
	logs := entries(t)
	for _, ckAt := range []int{0, 4, 7, len(logs)} { // entries applied before the last checkpoint
		dir := t.TempDir()
		f := openFSM(t, dir)
		var first []any
		for i, l := range logs {
			if i == ckAt && ckAt > 0 {
				if err := f.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			first = append(first, apply(f, l))
		}
		if ckAt == len(logs) {
			if err := f.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		end := f.Log().EndOffset()
		data := readAll(t, f.Log(), end)
		f.Log().Close() // crash: no checkpoint

		f = openFSM(t, dir)
		if hw := f.HighWatermark(); hw > end {
			t.Fatalf("checkpoint %d: hw %d after reopen", ckAt, hw)
		}
		for i, l := range logs {
			got := apply(f, l)
			if uint64(i) < uint64(ckAt) {
				continue // skipped: covered by the checkpoint
			}
			if r, ok := first[i].(Result); ok && r.Err == nil && got != first[i] {
				t.Fatalf("checkpoint %d: entry %d replayed as %#v, first %#v", ckAt, l.Index, got, first[i])
			}
		}
		if f.Log().EndOffset() != end || f.HighWatermark() != end {
			t.Fatalf("checkpoint %d: end %d hw %d after replay, want %d", ckAt, f.Log().EndOffset(), f.HighWatermark(), end)
		}
		if !bytes.Equal(readAll(t, f.Log(), end), data) {
			t.Fatalf("checkpoint %d: log changed by replay", ckAt)
		}
		// The producer windows survived: a retry is a duplicate, the next
		// sequence appends at the end.
		if r := apply(f, &raft.Log{Index: 100, Term: 3, Type: raft.LogCommand, Data: EncodeBatch(mkBatch(t, 6, 0, 0, 4, "q"))}); r != (Result{Base: 9, Duplicate: true}) {
			t.Fatalf("checkpoint %d: retry after restart %#v", ckAt, r)
		}
		if r := apply(f, &raft.Log{Index: 101, Term: 3, Type: raft.LogCommand, Data: EncodeBatch(mkBatch(t, 6, 0, 4, 1, "q2"))}); r != (Result{Base: end}) {
			t.Fatalf("checkpoint %d: next after restart %#v", ckAt, r)
		}
		f.Close()
	}
}

func TestFSMReplayDivergence(t *testing.T) {
	dir := t.TempDir()
	f := openFSM(t, dir)
	apply(f, &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: EncodeBatch(mkBatch(t, -1, -1, -1, 1, "a"))})
	f.Log().Close()
	f = openFSM(t, dir)
	defer f.Close()
	r := apply(f, &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: EncodeBatch(mkBatch(t, -1, -1, -1, 1, "other"))}).(Result)
	if !errors.Is(r.Err, ErrDiverged) {
		t.Fatalf("%#v", r)
	}
	r = apply(f, &raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: EncodeBatch(mkBatch(t, -1, -1, -1, 1, "b"))}).(Result)
	if !errors.Is(r.Err, ErrDiverged) {
		t.Fatalf("not sticky: %#v", r)
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	f := openFSM(t, dir)
	for _, l := range entries(t) {
		apply(f, l)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil || s.cancelled {
		t.Fatal(err)
	}
	snap.Release()
	head := s.Bytes()
	if f.Log().DurableOffset() < 13 {
		t.Fatalf("snapshot did not sync: durable %d", f.Log().DurableOffset())
	}

	// A follower with an empty log cannot restore it from the head alone.
	empty := openFSM(t, t.TempDir())
	defer empty.Close()
	if err := empty.Restore(io.NopCloser(bytes.NewReader(head))); !errors.Is(err, ErrSnapshotStreaming) {
		t.Fatalf("restore on empty log: %v", err)
	}

	// A replica whose log holds the data adopts the snapshot's state,
	// producer windows included. (Drop the checkpoint to make it behind
	// the snapshot.)
	f.Log().Close()
	if err := os.Remove(filepath.Join(dir, checkpointFile)); err != nil {
		t.Fatal(err)
	}
	g := openFSM(t, dir)
	defer g.Close()
	if g.AppliedIndex() != 0 || g.HighWatermark() != 0 {
		t.Fatalf("reopened at %d/%d", g.AppliedIndex(), g.HighWatermark())
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader(head))); err != nil {
		t.Fatal(err)
	}
	if g.AppliedIndex() != 12 || g.HighWatermark() != 13 {
		t.Fatalf("restored at %d/%d", g.AppliedIndex(), g.HighWatermark())
	}
	if r := apply(g, &raft.Log{Index: 13, Term: 3, Type: raft.LogCommand, Data: EncodeBatch(mkBatch(t, 5, 0, 2, 2, "p1"))}); r != (Result{Base: 5, Duplicate: true}) {
		t.Fatalf("retry after restore %#v", r)
	}
	// An older snapshot than the local state changes nothing.
	if err := g.Restore(io.NopCloser(bytes.NewReader(head))); err != nil || g.AppliedIndex() != 13 {
		t.Fatalf("stale restore: %v, applied %d", err, g.AppliedIndex())
	}
}
