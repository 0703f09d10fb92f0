package batch

import (
	"bytes"
	"hash/crc32"
	"io"
	"reflect"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests cross-check the codec against franz-go's kmsg, which
// franz-go's client uses to produce and consume, with compression done
// independently here (snappy as a raw block, as franz-go writes it).

func snappyRaw(b []byte) []byte { return s2.EncodeSnappy(nil, b) }

func testCompress(t *testing.T, c Codec, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case CodecNone:
		return raw
	case CodecSnappy:
		return snappyRaw(raw)
	case CodecGzip:
		w = gzip.NewWriter(&buf)
	case CodecLZ4:
		w = lz4.NewWriter(&buf)
	case CodecZstd:
		e, _ := zstd.NewWriter(nil)
		return e.EncodeAll(raw, nil)
	}
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}

func testDecompress(t *testing.T, c Codec, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case CodecNone:
		return b
	case CodecSnappy:
		out, err := unsnappy(b) // xerial framing; raw decoding is covered separately
		if err != nil {
			t.Fatal(err)
		}
		return out
	case CodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case CodecLZ4:
		r = lz4.NewReader(bytes.NewReader(b))
	case CodecZstd:
		d, _ := zstd.NewReader(nil)
		out, err := d.DecodeAll(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func toKmsg(recs []Record) []kmsg.Record {
	out := make([]kmsg.Record, len(recs))
	for i, r := range recs {
		k := kmsg.Record{Attributes: r.Attributes, TimestampDelta: int32(r.TimestampDelta), TimestampDelta64: r.TimestampDelta, OffsetDelta: r.OffsetDelta, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			k.Headers = append(k.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		k.Length = int32(recordBodySize(&r)) // kmsg leaves Length to the caller
		out[i] = k
	}
	return out
}

func TestKmsgToOurs(t *testing.T) {
	recs := sampleRecords()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			var raw []byte
			for _, k := range toKmsg(recs) {
				raw = k.AppendTo(raw)
			}
			kb := kmsg.RecordBatch{
				FirstOffset: 5, PartitionLeaderEpoch: 2, Magic: 2, Attributes: int16(c),
				LastOffsetDelta: 7, FirstTimestamp: 1000, MaxTimestamp: 1000 + 1<<40,
				ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(recs)),
				Records: testCompress(t, c, raw),
			}
			kb.Length = int32(49 + len(kb.Records))
			b := kb.AppendTo(nil)
			kb.CRC = int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
			b = kb.AppendTo(nil)

			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset != 5 || h.NumRecords != 4 || h.Codec() != c {
				t.Fatalf("%+v", h)
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, recs) {
				t.Fatalf("got %+v\nwant %+v", got, recs)
			}
		})
	}
}

func TestOursToKmsg(t *testing.T) {
	recs := sampleRecords()
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b, err := Build(buildOpts(c), recs)
			if err != nil {
				t.Fatal(err)
			}
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			if uint32(kb.CRC) != crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) {
				t.Fatal("kmsg sees a wrong CRC")
			}
			if kb.FirstOffset != 42 || kb.LastOffsetDelta != 7 || kb.NumRecords != 4 || kb.ProducerID != 9 || kb.FirstSequence != 100 {
				t.Fatalf("%+v", kb)
			}
			raw := testDecompress(t, c, kb.Records)
			want := toKmsg(recs)
			for i := range want {
				var kr kmsg.Record
				n, m := varintPrefix(raw)
				if err := kr.ReadFrom(raw[:n+m]); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				raw = raw[n+m:]
				if !reflect.DeepEqual(kr, want[i]) {
					t.Fatalf("record %d\n got %+v\nwant %+v", i, kr, want[i])
				}
			}
			if len(raw) != 0 {
				t.Fatalf("%d trailing bytes", len(raw))
			}
		})
	}
}

// varintPrefix returns the size of a record's length prefix and the
// length it holds.
func varintPrefix(b []byte) (int, int) {
	d := decoder{b: b}
	v, _ := d.varint()
	return len(b) - len(d.b), int(v)
}
