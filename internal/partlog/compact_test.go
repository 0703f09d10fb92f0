package partlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

// latestValues reads the log and returns, per key, the value and offset of
// its last record, and the total number of records.
func latestValues(t *testing.T, l *Log) (map[string][]byte, map[string]int64, int) {
	t.Helper()
	vals := map[string][]byte{}
	offs := map[string]int64{}
	n := 0
	off := l.StartOffset()
	for off < l.EndOffset() {
		data, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			break
		}
		parts, _ := batch.Split(data)
		for _, p := range parts {
			h, err := batch.Validate(p)
			if err != nil {
				t.Fatal(err)
			}
			err = batch.Each(p, func(r *batch.Record) error {
				o := h.BaseOffset + int64(r.OffsetDelta)
				if prev, ok := offs[string(r.Key)]; ok && prev >= o {
					t.Fatalf("key %s: offset %d after %d", r.Key, o, prev)
				}
				vals[string(r.Key)], offs[string(r.Key)] = bytes.Clone(r.Value), o
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			off = h.NextOffset()
		}
	}
	return vals, offs, n
}

func compactConfig() Config {
	cfg := testConfig()
	cfg.Cleanup = Compact
	cfg.SegmentBytes = 2048
	cfg.DeleteRetention = time.Hour
	return cfg
}

func TestCompactLatestWins(t *testing.T) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, compactConfig())
			rng := rand.New(rand.NewPCG(1, 2)) // incompressible values, so every codec rolls segments
			ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
			for round := range 20 {
				var kvs []kv
				for k := range 8 {
					kvs = append(kvs, kv{fmt.Sprintf("key-%d", k), fmt.Appendf(nil, "value-%d-%d-%x", k, round, rng.Uint64())})
				}
				mustAppend(t, l, mkKeyed(t, codec, ts+int64(round), kvs...))
			}
			wantVals, wantOffs, before := latestValues(t, l)
			leo, sizeBefore := l.EndOffset(), l.Size()
			if len(l.segs) < 3 {
				t.Fatalf("%d segments", len(l.segs))
			}
			if err := l.Compact(time.UnixMilli(ts)); err != nil {
				t.Fatal(err)
			}
			gotVals, gotOffs, after := latestValues(t, l)
			if !mapsEqual(gotVals, wantVals) || !mapsEqualInt(gotOffs, wantOffs) {
				t.Fatalf("latest values or offsets changed")
			}
			if after >= before || l.Size() >= sizeBefore {
				t.Fatalf("records %d -> %d, size %d -> %d", before, after, sizeBefore, l.Size())
			}
			if l.EndOffset() != leo {
				t.Fatalf("LEO changed %d -> %d", leo, l.EndOffset())
			}
			// Rewritten batches keep their codec.
			err := l.Batches(0, func(h batch.Header) error {
				if h.Codec() != codec {
					return fmt.Errorf("batch %d has codec %s", h.BaseOffset, h.Codec())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Compacting again changes nothing; the result survives a
			// restart without recovery noise.
			if err := l.Compact(time.UnixMilli(ts)); err != nil {
				t.Fatal(err)
			}
			if _, _, again := latestValues(t, l); again != after {
				t.Fatalf("second pass: %d records, want %d", again, after)
			}
			l.Close()
			l2 := openLog(t, dir, compactConfig())
			gotVals, _, n := latestValues(t, l2)
			if !mapsEqual(gotVals, wantVals) || n != after {
				t.Fatal("state differs after reopen")
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, "*.cleaned"))
			swaps, _ := filepath.Glob(filepath.Join(dir, "*.swap"))
			if len(leftovers)+len(swaps) > 0 {
				t.Fatalf("staging files left: %v %v", leftovers, swaps)
			}
		})
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) || (v == nil) != (w == nil) {
			return false
		}
	}
	return true
}

func mapsEqualInt(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func TestCompactTombstones(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig())
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	big := bytes.Repeat([]byte("v"), 300)
	mustAppend(t, l, mkKeyed(t, batch.CodecNone, ts.UnixMilli(), kv{"a", big}, kv{"b", big}))
	mustAppend(t, l, mkKeyed(t, batch.CodecNone, ts.UnixMilli(), kv{"a", nil})) // delete a
	for i := range 20 {                                                         // push the tombstone out of the active segment
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, ts.UnixMilli(), kv{fmt.Sprint("filler", i), big}))
	}
	now := ts.Add(time.Minute)
	if err := l.Compact(now); err != nil {
		t.Fatal(err)
	}
	vals, offs, _ := latestValues(t, l)
	if v, ok := vals["a"]; !ok || v != nil {
		t.Fatalf("tombstone for a not kept: %q %v", v, ok)
	}
	if offs["a"] != 2 {
		t.Fatalf("tombstone at offset %d", offs["a"])
	}
	// The tombstone's batch now carries a delete horizon.
	var horizon int64
	l.Batches(2, func(h batch.Header) error {
		if h.BaseOffset == 2 {
			if !h.HasDeleteHorizon() {
				t.Fatal("no delete horizon stamped")
			}
			horizon, _ = h.DeleteHorizon()
		}
		return nil
	})
	if horizon != now.Add(time.Hour).UnixMilli() {
		t.Fatalf("horizon %d, want %d", horizon, now.Add(time.Hour).UnixMilli())
	}
	// Record timestamps survive the re-basing.
	data, _ := l.Read(2, 1, l.EndOffset())
	h, _ := batch.ParseHeader(data)
	recs, _ := batch.Records(data[:h.Size()])
	if got := h.BaseTimestamp + recs[0].TimestampDelta; got != ts.UnixMilli() {
		t.Fatalf("tombstone timestamp %d, want %d", got, ts.UnixMilli())
	}
	// Before the horizon it stays; after, it goes.
	if err := l.Compact(now.Add(59 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if vals, _, _ := latestValues(t, l); vals["a"] != nil || !hasKey(vals, "a") {
		t.Fatal("tombstone dropped before its horizon")
	}
	if err := l.Compact(now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	vals, _, _ = latestValues(t, l)
	if hasKey(vals, "a") || !bytes.Equal(vals["b"], big) {
		t.Fatalf("after horizon: a present %v, b %q", hasKey(vals, "a"), vals["b"])
	}
}

func hasKey(m map[string][]byte, k string) bool { _, ok := m[k]; return ok }

func TestCompactKeepsProducerAndControlBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig())
	big := bytes.Repeat([]byte("v"), 300)
	// An idempotent producer's batch whose only record gets superseded.
	o := batch.DefaultBuildOptions()
	o.ProducerID, o.ProducerEpoch, o.BaseSequence = 7, 2, 40
	o.BaseTimestamp = 1
	idem, err := batch.Build(o, []batch.Record{{OffsetDelta: 0, Key: []byte("k"), Value: big}, {OffsetDelta: 1, Key: []byte("k"), Value: big}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, idem)
	// A committed transaction's batch is cleaned like any other (its
	// superseded record goes, its producer identity stays); the COMMIT
	// marker is kept.
	o.Attributes = batch.AttrTransactional
	o.BaseSequence = 42
	txn, _ := batch.Build(o, []batch.Record{{Key: []byte("k"), Value: []byte("txn")}})
	mustAppend(t, l, txn)
	o.Attributes = batch.AttrTransactional | batch.AttrControl
	o.BaseSequence = -1
	ctl, _ := batch.Build(o, []batch.Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	mustAppend(t, l, ctl)
	mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{"k", []byte("final")}))
	for i := range 20 {
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{fmt.Sprint("f", i), big}))
	}
	if err := l.Compact(time.UnixMilli(10)); err != nil {
		t.Fatal(err)
	}
	var hs []batch.Header
	l.Batches(0, func(h batch.Header) error { hs = append(hs, h); return nil })
	if hs[0].BaseOffset != 0 || hs[0].NumRecords != 0 || hs[0].LastOffsetDelta != 1 || hs[0].ProducerID != 7 || hs[0].BaseSequence != 40 {
		t.Fatalf("producer batch not kept as empty batch: %+v", hs[0])
	}
	if hs[1].BaseOffset != 2 || !hs[1].Transactional() || hs[1].NumRecords != 0 || hs[1].ProducerID != 7 {
		t.Fatalf("transactional batch: %+v", hs[1])
	}
	if hs[2].BaseOffset != 3 || !hs[2].Control() {
		t.Fatalf("control batch: %+v", hs[2])
	}
	// Reading offset 0 returns the empty batch; offsets stay continuous.
	if data, err := l.Read(0, 1, l.EndOffset()); err != nil || len(data) != batch.HeaderSize {
		t.Fatalf("read empty batch: %d bytes, %v", len(data), err)
	}
}

func TestCompactDropsEmptySegmentsAndGaps(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig())
	big := bytes.Repeat([]byte("v"), 400)
	for range 12 {
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, 1, kv{"same", big}))
	}
	nsegs := len(l.segs)
	if err := l.Compact(time.UnixMilli(2)); err != nil {
		t.Fatal(err)
	}
	if len(l.segs) >= nsegs {
		t.Fatalf("segments %d -> %d", nsegs, len(l.segs))
	}
	// Only the active segment's records remain: it is never compacted.
	active := l.segs[len(l.segs)-1].base
	vals, offs, n := latestValues(t, l)
	if n != int(12-active) || offs["same"] != 11 || !bytes.Equal(vals["same"], big) {
		t.Fatalf("n=%d offs=%v active=%d", n, offs, active)
	}
	// Reading from an offset that compaction removed skips ahead.
	data, err := l.Read(0, 1<<20, l.EndOffset())
	if err != nil || len(data) == 0 {
		t.Fatalf("read: %v", err)
	}
	h, _ := batch.ParseHeader(data)
	if h.BaseOffset != active {
		t.Fatalf("first batch %d, want %d", h.BaseOffset, active)
	}
	if _, _, ok := l.OffsetForTime(0); !ok {
		t.Fatal("no offset for time")
	}
}

func TestCompactMinLagAndPolicy(t *testing.T) {
	cfg := compactConfig()
	cfg.Cleanup = Delete
	l := openLog(t, t.TempDir(), cfg)
	big := bytes.Repeat([]byte("v"), 400)
	for i := range 12 {
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, int64(1000+i), kv{"same", big}))
	}
	size := l.Size()
	if err := l.Compact(time.UnixMilli(5000)); err != nil || l.Size() != size {
		t.Fatalf("delete policy compacted: %v", err)
	}
	cfg.Cleanup = CompactDelete
	cfg.MinCompactionLag = time.Hour
	l.SetConfig(cfg)
	if err := l.Compact(time.UnixMilli(5000)); err != nil || l.Size() != size {
		t.Fatalf("min lag ignored: %v", err)
	}
	if err := l.Compact(time.UnixMilli(5000).Add(2 * time.Hour)); err != nil || l.Size() >= size {
		t.Fatalf("not compacted after lag: %v", err)
	}
}

func TestCompactConcurrentWithReads(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig())
	big := bytes.Repeat([]byte("v"), 200)
	for i := range 40 {
		mustAppend(t, l, mkKeyed(t, batch.CodecLZ4, int64(i), kv{fmt.Sprint("k", i%5), big}))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			if err := l.Compact(time.UnixMilli(int64(100 + i))); err != nil {
				t.Error(err)
			}
			mustAppendErr(t, l, mkKeyed(t, batch.CodecLZ4, 50, kv{"k1", big}))
		}
	}()
	for {
		select {
		case <-done:
			vals, _, _ := latestValues(t, l)
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"k0", "k1", "k2", "k3", "k4"}) {
				t.Fatal(keys)
			}
			return
		default:
			latestValues(t, l)
		}
	}
}

func mustAppendErr(t *testing.T, l *Log, b []byte) {
	if _, err := l.Append(b); err != nil {
		t.Error(err)
	}
}

func TestCompactSwapCrashRecovery(t *testing.T) {
	// A crash after ".cleaned" became ".swap" but before the final rename
	// must end with the cleaned segment in place.
	dir := t.TempDir()
	l, err := Open(dir, compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("v"), 400)
	for i := range 12 {
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, int64(i), kv{fmt.Sprint("k", i%2), big}))
	}
	if err := l.Compact(time.UnixMilli(100)); err != nil {
		t.Fatal(err)
	}
	wantVals, wantOffs, _ := latestValues(t, l)
	l.Close()
	// Simulate: cleaned first segment sits in .swap, original still there
	// with its pre-compaction content from another (uncompacted) copy.
	base := segmentName(0, logSuffix)
	cleaned, _ := os.ReadFile(filepath.Join(dir, base))
	os.WriteFile(filepath.Join(dir, base+swapSuffix), cleaned, 0o644)
	os.WriteFile(filepath.Join(dir, base), append(bytes.Clone(cleaned), "torn"...), 0o644)
	l2 := openLog(t, dir, compactConfig())
	gotVals, gotOffs, _ := latestValues(t, l2)
	if !mapsEqual(gotVals, wantVals) || !mapsEqualInt(gotOffs, wantOffs) {
		t.Fatal("swap not completed")
	}
}
