package partlog

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/weir-io/weir/internal/batch"
)

// mkBatch builds an uncompressed batch of n records with valueSize-byte
// values and timestamps ts, ts+1, ...
func mkBatch(t testing.TB, n, valueSize int, ts int64) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte{'v'}, valueSize)}
	}
	o := batch.DefaultBuildOptions()
	o.BaseTimestamp = ts
	b, err := batch.Build(o, recs)
	if err != nil {
		panic(err)
	}
	return b
}

// kv is a record for keyed batches; a nil value is a tombstone.
type kv struct {
	key   string
	value []byte
}

func mkKeyed(t testing.TB, c batch.Codec, ts int64, kvs ...kv) []byte {
	t.Helper()
	recs := make([]batch.Record, len(kvs))
	for i, r := range kvs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Key: []byte(r.key), Value: r.value}
	}
	o := batch.DefaultBuildOptions()
	o.Codec = c
	o.BaseTimestamp = ts
	b, err := batch.Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	c.RetentionTime = -1
	return c
}

func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) int64 {
	t.Helper()
	off, err := l.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// readAll reads every batch from offset to the log end and returns their
// headers, checking that each one is valid.
func readAll(t testing.TB, l *Log, from int64) []batch.Header {
	t.Helper()
	var hs []batch.Header
	off := from
	for off < l.EndOffset() {
		data, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(data) == 0 {
			break
		}
		parts, err := batch.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			h, err := batch.Validate(p)
			if err != nil {
				t.Fatalf("batch at %d: %v", h.BaseOffset, err)
			}
			hs = append(hs, h)
			off = h.NextOffset()
		}
	}
	return hs
}

// records returns offset → value for every record in the log.
func records(t testing.TB, l *Log) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
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
			recs, err := batch.Records(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out[string(r.Key)] = append(out[string(r.Key)], h.BaseOffset+int64(r.OffsetDelta))
			}
			off = h.NextOffset()
		}
	}
	return out
}
