package partlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

// txnBatch is one transactional batch of producer pid with keyed records.
func txnBatch(t testing.TB, pid int64, kvs ...kv) []byte {
	t.Helper()
	recs := make([]batch.Record, len(kvs))
	for i, r := range kvs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Key: []byte(r.key), Value: r.value}
	}
	o := batch.DefaultBuildOptions()
	o.ProducerID, o.ProducerEpoch, o.BaseSequence = pid, 0, 0
	o.Attributes = batch.AttrTransactional
	o.BaseTimestamp = 5
	b, err := batch.Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marker(t testing.TB, pid int64, commit bool) []byte {
	t.Helper()
	b, err := batch.BuildMarker(batch.Marker{ProducerID: pid, Commit: commit, CoordinatorEpoch: 3, Timestamp: 5})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTxnLastStableAndAborted(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig())
	mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{"a", []byte("1")})) // 0
	mustAppend(t, l, txnBatch(t, 7, kv{"b", []byte("t7")}))                // 1: txn 7 opens
	mustAppend(t, l, txnBatch(t, 8, kv{"c", []byte("t8")}))                // 2: txn 8 opens
	if got := l.LastStable(l.EndOffset()); got != 1 {
		t.Fatalf("LSO with two open txns = %d, want 1", got)
	}
	mustAppend(t, l, marker(t, 7, false)) // 3: abort 7
	if got := l.LastStable(3); got != 1 {
		t.Fatalf("LSO before the abort marker is below the high watermark = %d, want 1", got)
	}
	if got := l.LastStable(4); got != 2 {
		t.Fatalf("LSO after abort of 7 = %d, want 2 (txn 8 open)", got)
	}
	mustAppend(t, l, marker(t, 8, true)) // 4: commit 8
	if got := l.LastStable(5); got != 5 {
		t.Fatalf("LSO with nothing open = %d, want 5", got)
	}
	want := []AbortedTxn{{ProducerID: 7, FirstOffset: 1, LastOffset: 3}}
	if got := l.AbortedTxns(0, 5); !slices.Equal(got, want) {
		t.Fatalf("AbortedTxns = %+v, want %+v", got, want)
	}
	if got := l.AbortedTxns(4, 5); len(got) != 0 {
		t.Fatalf("AbortedTxns past the marker = %+v, want none", got)
	}
	if got := l.AbortedTxns(0, 1); len(got) != 0 {
		t.Fatalf("AbortedTxns before the first batch = %+v, want none", got)
	}
	// A marker for a producer with nothing open adds no entry.
	mustAppend(t, l, marker(t, 9, false))
	if got := l.AbortedTxns(0, l.EndOffset()); len(got) != 1 {
		t.Fatalf("stray marker indexed: %+v", got)
	}
	if open := l.OpenTxns(); len(open) != 0 {
		t.Fatalf("OpenTxns = %v, want none", open)
	}
}

// fillTxns writes, across many segments, aborted and committed
// transactions interleaved with plain batches, and leaves one open.
func fillTxns(t *testing.T, l *Log) (aborted []AbortedTxn, openFirst int64) {
	big := bytes.Repeat([]byte("x"), 300)
	for i := range 20 {
		pid := int64(100 + i%3)
		first := mustAppend(t, l, txnBatch(t, pid, kv{fmt.Sprint("k", i), big}))
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{"plain", big}))
		mustAppend(t, l, txnBatch(t, pid, kv{fmt.Sprint("k", i), big}))
		m := mustAppend(t, l, marker(t, pid, i%2 == 0))
		if i%2 != 0 {
			aborted = append(aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: m})
		}
	}
	openFirst = mustAppend(t, l, txnBatch(t, 42, kv{"open", big}))
	return aborted, openFirst
}

func TestTxnIndexSurvivesReopen(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			aborted, openFirst := fillTxns(t, l)
			if err := l.Sync(l.EndOffset()); err != nil {
				t.Fatal(err)
			}
			if len(l.segs) < 5 {
				t.Fatalf("want many segments, have %d", len(l.segs))
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
			if len(files) < len(l.segs)-1 {
				t.Fatalf("%d .txnindex files for %d sealed segments", len(files), len(l.segs)-1)
			}
			if crash {
				// No clean shutdown: the active segment's view comes from
				// scanning it; also lose one sealed segment's index.
				// The abandoned Log never writes its clean-shutdown marker.
				os.Remove(files[1])
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			r := openLog(t, dir, testConfig())
			if got := r.AbortedTxns(0, r.EndOffset()); !slices.Equal(got, aborted) {
				t.Fatalf("after reopen AbortedTxns = %+v\nwant %+v", got, aborted)
			}
			if got := r.LastStable(r.EndOffset()); got != openFirst {
				t.Fatalf("after reopen LSO = %d, want %d", got, openFirst)
			}
			mustAppend(t, r, marker(t, 42, true))
			if got := r.LastStable(r.EndOffset()); got != r.EndOffset() {
				t.Fatalf("after commit LSO = %d, want %d", got, r.EndOffset())
			}
		})
	}
}

func TestCompactTransactions(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig())
	big := bytes.Repeat([]byte("v"), 300)
	mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{"k", []byte("committed")}))
	// An aborted write of k must not erase the committed value.
	mustAppend(t, l, txnBatch(t, 7, kv{"k", []byte("aborted")}))
	mustAppend(t, l, marker(t, 7, false))
	// A committed transaction's write of j supersedes the plain one.
	mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{"j", []byte("old")}))
	mustAppend(t, l, txnBatch(t, 8, kv{"j", []byte("new")}))
	mustAppend(t, l, marker(t, 8, true))
	for i := range 20 {
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{fmt.Sprint("f", i), big}))
	}
	// An open transaction stops compaction at its first offset.
	open := mustAppend(t, l, txnBatch(t, 9, kv{"f0", []byte("open")}))
	for i := range 20 {
		mustAppend(t, l, mkKeyed(t, batch.CodecNone, 5, kv{fmt.Sprint("f", i), big}))
	}
	if err := l.Compact(time.UnixMilli(10)); err != nil {
		t.Fatal(err)
	}
	kept := map[string][]string{}
	for _, s := range l.segs[:len(l.segs)-1] {
		if err := s.eachBatch(s.size, func(h batch.Header, b []byte) error {
			if h.Control() {
				return nil
			}
			return batch.Each(b, func(r *batch.Record) error {
				kept[string(r.Key)] = append(kept[string(r.Key)], string(r.Value))
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(kept["k"], []string{"committed"}) {
		t.Fatalf("k kept %q, want only the committed value (aborted dropped, not superseding)", kept["k"])
	}
	if !slices.Equal(kept["j"], []string{"new"}) {
		t.Fatalf("j kept %q, want the committed transaction's value", kept["j"])
	}
	after := 0
	for _, s := range l.segs {
		if err := s.eachBatch(s.size, func(h batch.Header, b []byte) error {
			if h.BaseOffset >= open {
				after += int(h.NumRecords)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if after != 21 {
		t.Fatalf("%d records kept from the open transaction on, want all 21", after)
	}
	if got := l.AbortedTxns(0, l.EndOffset()); len(got) != 1 || got[0].ProducerID != 7 {
		t.Fatalf("aborted index after compaction: %+v", got)
	}
}

func TestDecodeTxnIndexRejectsDamage(t *testing.T) {
	good := encodeTxnIndex([]AbortedTxn{{ProducerID: 1, FirstOffset: 3, LastOffset: 9}}, []openTxn{{pid: 2, first: 11}})
	if a, o, err := decodeTxnIndex(good, 0, 20); err != nil || len(a) != 1 || len(o) != 1 {
		t.Fatalf("decode good: %v %v %v", a, o, err)
	}
	if _, _, err := decodeTxnIndex(good, 10, 20); err == nil {
		t.Fatal("entry before the segment accepted")
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, _, err := decodeTxnIndex(bad, 0, 20); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(encodeTxnIndex(nil, nil), int64(0), int64(10))
	f.Add(encodeTxnIndex([]AbortedTxn{{ProducerID: 1, FirstOffset: 3, LastOffset: 9}}, []openTxn{{pid: 2, first: 11}}), int64(0), int64(20))
	f.Fuzz(func(t *testing.T, b []byte, base, next int64) {
		a, o, err := decodeTxnIndex(b, base, next)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeTxnIndex(a, o), b) {
			t.Fatal("decoded index does not re-encode to the same bytes")
		}
	})
}
