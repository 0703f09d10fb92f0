package batch

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// sampleRecords covers null and empty keys and values, headers with null
// values, negative and large timestamp deltas, and offset gaps.
func sampleRecords() []Record {
	return []Record{
		{OffsetDelta: 0, TimestampDelta: 0, Key: []byte("k0"), Value: []byte("v0")},
		{OffsetDelta: 1, TimestampDelta: -5, Key: nil, Value: []byte{}},
		{OffsetDelta: 2, TimestampDelta: 1 << 40, Key: []byte{}, Value: nil,
			Headers: []RecordHeader{{Key: "h1", Value: []byte("x")}, {Key: "", Value: nil}}},
		{OffsetDelta: 7, TimestampDelta: 3, Key: []byte("k3"), Value: bytes.Repeat([]byte("abc"), 1000), Attributes: 0},
	}
}

func buildOpts(c Codec) BuildOptions {
	o := DefaultBuildOptions()
	o.BaseOffset = 42
	o.LeaderEpoch = 3
	o.Codec = c
	o.BaseTimestamp = 1_700_000_000_000
	o.ProducerID, o.ProducerEpoch, o.BaseSequence = 9, 1, 100
	return o
}

func TestRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs := sampleRecords()
			b, err := Build(buildOpts(c), recs)
			if err != nil {
				t.Fatal(err)
			}
			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			want := Header{
				BaseOffset: 42, Length: int32(len(b) - 12), LeaderEpoch: 3, Magic: 2, CRC: h.CRC,
				Attributes: int16(c), LastOffsetDelta: 7,
				BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000 + 1<<40,
				ProducerID: 9, ProducerEpoch: 1, BaseSequence: 100, NumRecords: 4,
			}
			if h != want {
				t.Fatalf("header\n got %+v\nwant %+v", h, want)
			}
			if h.Codec() != c || h.LastOffset() != 49 || h.Size() != len(b) || h.LastSequence() != 107 {
				t.Fatalf("derived fields wrong: %v %d %d %d", h.Codec(), h.LastOffset(), h.Size(), h.LastSequence())
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, recs) {
				t.Fatalf("records\n got %+v\nwant %+v", got, recs)
			}
		})
	}
}

func TestBuildEmptyAndFlags(t *testing.T) {
	for _, c := range allCodecs {
		o := buildOpts(c)
		o.Attributes = AttrTransactional | AttrLogAppendTime | AttrCodecMask // codec bits ignored; empty batches are never compressed
		o.MaxTimestamp = 77
		o.LastOffsetDelta = 9
		b, err := Build(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Transactional() || !h.LogAppendTime() || h.Control() || h.Codec() != CodecNone || h.MaxTimestamp != 77 ||
			h.NumRecords != 0 || h.LastOffsetDelta != 9 || len(b) != HeaderSize {
			t.Fatalf("%s: %+v", c, h)
		}
		recs, err := Records(b)
		if err != nil || len(recs) != 0 {
			t.Fatalf("%s: %v %v", c, recs, err)
		}
	}
}

func TestBuildRejectsDisorder(t *testing.T) {
	recs := []Record{{OffsetDelta: 1}, {OffsetDelta: 1}}
	if _, err := Build(DefaultBuildOptions(), recs); err == nil {
		t.Fatal("duplicate offset delta accepted")
	}
	if _, err := Build(BuildOptions{Codec: 5}, nil); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("codec 5: %v", err)
	}
}

func TestCRCFailure(t *testing.T) {
	b, err := Build(buildOpts(CodecNone), sampleRecords())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{offCRC, offAttributes, offNumRecords + 3, HeaderSize, len(b) - 1} {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := Validate(c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: %v", i, err)
		}
	}
	// Fields outside the CRC may change freely.
	c := bytes.Clone(b)
	SetBaseOffset(c, 1<<40)
	SetLeaderEpoch(c, 99)
	h, err := Validate(c)
	if err != nil || h.BaseOffset != 1<<40 || h.LeaderEpoch != 99 {
		t.Fatalf("after stamping: %+v %v", h, err)
	}
}

func TestTruncated(t *testing.T) {
	for _, c := range allCodecs {
		b, err := Build(buildOpts(c), sampleRecords())
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := Validate(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: prefix %d: %v", c, n, err)
			}
			if _, err := Records(b[:n]); err == nil {
				t.Fatalf("%s: records of prefix %d decoded", c, n)
			}
			if _, err := Split(b[:n]); n > 0 && !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s: split prefix %d: %v", c, n, err)
			}
		}
	}
}

func TestValidateRejects(t *testing.T) {
	good, err := Build(buildOpts(CodecNone), sampleRecords())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"magic 1", func(b []byte) []byte { b[offMagic] = 1; return b }, ErrUnsupportedMagic},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt},
		{"short length", func(b []byte) []byte { b[offLength+3] = 10; b[offLength+2] = 0; return b }, ErrCorrupt},
		{"negative count", func(b []byte) []byte { b[offNumRecords] = 0xff; UpdateCRC(b); return b }, ErrCorrupt},
		{"count above range", func(b []byte) []byte { b[offNumRecords+3] = 9; UpdateCRC(b); return b }, ErrCorrupt},
		{"codec 6", func(b []byte) []byte { b[offAttributes+1] |= 6; UpdateCRC(b); return b }, ErrUnsupportedCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Validate(tt.edit(bytes.Clone(good))); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckProduce(t *testing.T) {
	recs := []Record{{OffsetDelta: 0, Value: []byte("a")}, {OffsetDelta: 1, Value: []byte("b")}}
	b, _ := Build(DefaultBuildOptions(), recs)
	h, _ := Validate(b)
	if err := h.CheckProduce(); err != nil {
		t.Fatal(err)
	}
	gap, _ := Build(DefaultBuildOptions(), []Record{{OffsetDelta: 0}, {OffsetDelta: 2}})
	h, _ = Validate(gap)
	if err := h.CheckProduce(); err == nil {
		t.Fatal("gap accepted for produce")
	}
	o := DefaultBuildOptions()
	o.Attributes = AttrControl
	ctl, _ := Build(o, recs)
	h, _ = Validate(ctl)
	if err := h.CheckProduce(); err == nil {
		t.Fatal("control batch accepted for produce")
	}
}

func TestSplit(t *testing.T) {
	var all []byte
	var parts [][]byte
	for i, c := range allCodecs {
		o := buildOpts(c)
		o.BaseOffset = int64(i)
		b, err := Build(o, sampleRecords())
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
		all = append(all, b...)
	}
	got, err := Split(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(parts) {
		t.Fatalf("%d batches, want %d", len(got), len(parts))
	}
	for i := range got {
		if !bytes.Equal(got[i], parts[i]) || cap(got[i]) != len(got[i]) {
			t.Fatalf("batch %d differs or capacity not clipped", i)
		}
		if _, err := Validate(got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Split(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	if _, err := Split(append(bytes.Clone(all), 1, 2, 3)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing garbage: %v", err)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	b, _ := Build(buildOpts(CodecLZ4), sampleRecords())
	SetLogAppendTime(b, 123)
	h, err := Validate(b)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 123 {
		t.Fatalf("%+v %v", h, err)
	}
}

func TestSnappyRawAndXerial(t *testing.T) {
	raw := bytes.Repeat([]byte("hello snappy "), 10000) // > one 32 KiB xerial chunk
	for name, enc := range map[string][]byte{
		"xerial": mustCompress(t, CodecSnappy, raw),
		"raw":    snappyRaw(raw),
	} {
		got, err := unsnappy(enc)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func mustCompress(t testing.TB, c Codec, raw []byte) []byte {
	b, err := compress(nil, c, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecompressionBomb(t *testing.T) {
	old := MaxUncompressedBytes
	MaxUncompressedBytes = 1 << 16
	defer func() { MaxUncompressedBytes = old }()
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4} {
		o := buildOpts(c)
		recs := []Record{{Value: make([]byte, 1<<17)}}
		b, err := Build(o, recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Records(b); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v", c, err)
		}
	}
}

func TestCodecString(t *testing.T) {
	for c, s := range map[Codec]string{CodecNone: "none", CodecGzip: "gzip", CodecSnappy: "snappy", CodecLZ4: "lz4", CodecZstd: "zstd", 7: "codec(7)"} {
		if c.String() != s {
			t.Errorf("%d: %q", c, c.String())
		}
	}
}

func TestEachStops(t *testing.T) {
	b, _ := Build(buildOpts(CodecNone), sampleRecords())
	stop := fmt.Errorf("stop")
	n := 0
	err := Each(b, func(r *Record) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("%v %d", err, n)
	}
}

func BenchmarkValidate(b *testing.B) {
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), Value: bytes.Repeat([]byte{byte(i)}, 100)}
	}
	bt, _ := Build(DefaultBuildOptions(), recs)
	b.SetBytes(int64(len(bt)))
	for b.Loop() {
		if _, err := Validate(bt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecords(b *testing.B) {
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprint(i)), Value: bytes.Repeat([]byte{byte(i)}, 100)}
	}
	for _, c := range allCodecs {
		o := DefaultBuildOptions()
		o.Codec = c
		bt, _ := Build(o, recs)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(bt)))
			for b.Loop() {
				if err := Each(bt, func(*Record) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
