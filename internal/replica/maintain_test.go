package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/partlog"
)

func openFSMWith(t testing.TB, dir string, cfg partlog.Config) *FSM {
	t.Helper()
	f, err := OpenFSM(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// replayCase applies logs to a fresh FSM, checkpointing before entry
// ckAt and calling maintain before entry maintainAt, crashes it (log
// closed, no checkpoint) and replays every entry on a reopened FSM: each
// batch entry must be answered as the first time and the high watermark
// must match. It returns the reopened FSM.
func replayCase(t *testing.T, cfg partlog.Config, logs []*raft.Log, ckAt, maintainAt int, maintain func(f *FSM)) *FSM {
	t.Helper()
	dir := t.TempDir()
	f := openFSMWith(t, dir, cfg)
	var first []any
	for i, l := range logs {
		if i == ckAt {
			if err := f.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		if i == maintainAt {
			maintain(f)
		}
		first = append(first, apply(f, l))
	}
	hw := f.HighWatermark()
	if err := f.Log().Close(); err != nil {
		t.Fatal(err)
	}
	f = openFSMWith(t, dir, cfg)
	t.Cleanup(func() { f.Close() })
	for i, l := range logs {
		got := apply(f, l)
		if e, _ := DecodeEntry(l.Data); i < ckAt || e.Type != EntryBatch {
			continue // skipped, or a DeleteRecords answering with today's log start
		}
		w := first[i].(Result)
		if r := got.(Result); r.Base != w.Base || r.Duplicate != w.Duplicate || (r.Err == nil) != (w.Err == nil) {
			t.Fatalf("entry %d replayed as %#v, first %#v", l.Index, got, first[i])
		}
	}
	if f.HighWatermark() != hw {
		t.Fatalf("high watermark %d after replay, want %d", f.HighWatermark(), hw)
	}
	return f
}

// keyedLogs returns n batch entries over a few keys, half of them from
// an idempotent producer, so that compaction has superseded records.
func keyedLogs(t *testing.T, n int) []*raft.Log {
	var logs []*raft.Log
	seq := int32(0)
	for i := range n {
		key := fmt.Sprintf("k%d", i%3)
		var b []byte
		if i%2 == 0 {
			b = mkBatch(t, 77, 0, seq, 2, key)
			seq += 2
		} else {
			b = mkBatch(t, -1, -1, -1, 2, key)
		}
		logs = append(logs, batchLog(uint64(i+1), b))
	}
	return logs
}

// TestFSMReplayAfterCompaction compacts sealed segments holding entries
// applied after the last checkpoint, crashes, and replays: the compacted
// batches are recognized, nothing diverges.
func TestFSMReplayAfterCompaction(t *testing.T) {
	cfg := logConfig()
	cfg.Cleanup = partlog.Compact
	logs := keyedLogs(t, 80)
	changed := false
	replayCase(t, cfg, logs, 10, 60, func(f *FSM) {
		before := segmentBytes(t, f.dir)
		if err := f.Log().Compact(time.Now()); err != nil {
			t.Fatal(err)
		}
		after := segmentBytes(t, f.dir)
		for n, b := range before {
			changed = changed || !bytes.Equal(after[n], b)
		}
	})
	if !changed {
		t.Fatal("compaction changed nothing; the test tests nothing")
	}
}

// TestFSMReplayAfterRetention deletes segments beyond the checkpoint by
// retention, crashes, and replays.
func TestFSMReplayAfterRetention(t *testing.T) {
	cfg := logConfig()
	cfg.RetentionBytes = 12 << 10
	logs := keyedLogs(t, 80)
	f := replayCase(t, cfg, logs, 10, 60, func(f *FSM) {
		if n, err := f.Log().EnforceRetention(time.Now()); err != nil || n == 0 {
			t.Fatalf("retention deleted %d segments, %v", n, err)
		}
	})
	if f.Log().StartOffset() == 0 {
		t.Fatal("log start did not move")
	}
}

// TestFSMMaintain runs Maintain, applies more, and restarts: the
// checkpoint Maintain wrote bounds the replay.
func TestFSMMaintain(t *testing.T) {
	cfg := logConfig()
	cfg.Cleanup = partlog.CompactDelete
	cfg.RetentionBytes = 16 << 10
	logs := keyedLogs(t, 80)
	f := replayCase(t, cfg, logs, 70, 70, func(f *FSM) {
		if err := f.Maintain(time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	if f.Log().StartOffset() == 0 {
		t.Fatal("Maintain deleted nothing")
	}
}

// TestFSMDeleteRecords applies DeleteRecords entries between batches and
// replays them after a crash.
func TestFSMDeleteRecords(t *testing.T) {
	logs := entries(t) // high watermark 13 after them
	add := func(data []byte) {
		logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 2, Type: raft.LogCommand, Data: data})
	}
	add(EncodeDeleteRecords(5))
	add(EncodeDeleteRecords(3)) // below the log start: no-op
	add(EncodeDeleteRecords(14))
	add(EncodeBatch(mkBatch(t, -1, -1, -1, 2, "after")))
	add(EncodeDeleteRecords(-1))
	add(EncodeBatch(mkBatch(t, 6, 0, 4, 1, "q-next")))
	for _, ckAt := range []int{0, 7, 13, 16} {
		f := replayCase(t, logConfig(), logs, ckAt, -1, nil)
		want := []Result{{Base: 5}, {Base: 5}, {Base: -1, Err: kerr.OffsetOutOfRange}, {Base: 13}, {Base: 15}, {Base: 15}}
		g := openFSM(t, t.TempDir())
		for i, l := range logs {
			r, _ := apply(g, l).(Result)
			if k := i - 12; k >= 0 && (r.Base != want[k].Base || !errors.Is(r.Err, want[k].Err)) {
				t.Fatalf("entry %d: %#v, want %#v", l.Index, r, want[k])
			}
		}
		g.Close()
		if s := f.Log().StartOffset(); s != 15 {
			t.Fatalf("checkpoint at %d: log start %d after replay, want 15", ckAt, s)
		}
		// Producer windows survive DeleteRecords and the restart.
		r := apply(f, batchLog(100, mkBatch(t, 6, 0, 4, 1, "q-next")))
		if r != (Result{Base: 15, Duplicate: true}) {
			t.Fatalf("checkpoint at %d: retry %#v", ckAt, r)
		}
	}
}

// TestFSMProducerExpiry drives expiry by record time: a producer idle for
// longer than the expiration (as the batches' timestamps tell) is
// forgotten at the same entry with or without a restart in between.
func TestFSMProducerExpiry(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	old := mkBatchAt(t, 7, 0, 0, 1, "old", baseTime)
	logs := []*raft.Log{
		batchLog(1, old),
		batchLog(2, mkBatchAt(t, 8, 0, 0, 1, "half", baseTime+hour/2)),
		batchLog(3, old), // still known: duplicate
		batchLog(4, mkBatchAt(t, 8, 0, 1, 1, "later", baseTime+2*hour)),
		batchLog(5, old), // forgotten: appended as new
		batchLog(6, mkBatchAt(t, 8, 0, 2, 1, "back", baseTime-hour)), // an old timestamp does not move the clock back
	}
	want := []Result{{Base: 0}, {Base: 1}, {Base: 0, Duplicate: true}, {Base: 2}, {Base: 3}, {Base: 4}}
	for _, ckAt := range []int{0, 2, 4, 5} {
		dir := t.TempDir()
		f := openFSM(t, dir)
		f.SetProducerIDExpiration(time.Hour)
		for i, l := range logs {
			if i == ckAt && ckAt > 0 {
				if err := f.Checkpoint(); err != nil {
					t.Fatal(err)
				}
				f.Log().Close() // crash
				f = openFSM(t, dir)
				f.SetProducerIDExpiration(time.Hour)
				for _, p := range logs[:i] { // raft replays; all covered
					if r, _ := apply(f, p).(Result); !errors.Is(r.Err, errReplayed) {
						t.Fatalf("entry %d not skipped: %#v", p.Index, r)
					}
				}
			}
			if r := apply(f, l); r != want[i] {
				t.Fatalf("checkpoint at %d: entry %d: %#v, want %#v", ckAt, l.Index, r, want[i])
			}
		}
		f.Close()
	}
}

// TestDeleteRecords replicates DeleteRecords through the group and keeps
// the log start across a restart of every replica.
func TestDeleteRecords(t *testing.T) {
	c := newDurableCluster(t, 3)
	p := &producerRun{c: c, pid: 51}
	end := p.produce(t, 0, 20)
	c.converge(end)
	ld := c.leader()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := ld.g.DeleteRecords(ctx, end+1); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("beyond the high watermark: %v", err)
	}
	low, err := ld.g.DeleteRecords(ctx, 7)
	if err != nil || low != 7 {
		t.Fatalf("delete before 7: %d %v", low, err)
	}
	c.awaitStart(7)
	end = p.produce(t, end, 4)
	if low, err = c.leader().g.DeleteRecords(ctx, -1); err != nil || low != end {
		t.Fatalf("delete before the high watermark %d: %d %v", end, low, err)
	}
	c.awaitStart(end)
	for _, nd := range c.nodes {
		c.stop(nd)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	end = p.produce(t, end, 4)
	c.converge(end)
	c.awaitStart(end - 10) // 4 batches of 2 and 3 records
	if _, err := c.leader().g.DeleteRecords(ctx, -2); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("offset -2: %v", err)
	}
}

// awaitStart waits until every live node's log starts at start.
func (c *cluster) awaitStart(start int64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, nd := range c.live() {
		for nd.g.Log().StartOffset() != start {
			if time.Now().After(deadline) {
				c.t.Fatalf("node %s: log start %d, want %d", nd.id, nd.g.Log().StartOffset(), start)
			}
			time.Sleep(2 * time.Millisecond) // polling, bounded by the deadline
		}
	}
}
