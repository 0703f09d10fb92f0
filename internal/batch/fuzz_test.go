package batch

import (
	"bytes"
	"testing"
)

func seedBatches(f *testing.F) {
	for _, c := range allCodecs {
		b, err := Build(buildOpts(c), sampleRecords())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
}

// smallLimit keeps fuzzed decompression from allocating much.
func smallLimit(t testing.TB) {
	old := MaxUncompressedBytes
	MaxUncompressedBytes = 1 << 20
	t.Cleanup(func() { MaxUncompressedBytes = old })
}

func FuzzValidate(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Validate(b)
		if err != nil {
			return
		}
		if h.Size() != len(b) || h.Magic != Magic {
			t.Fatalf("accepted inconsistent batch %+v of %d bytes", h, len(b))
		}
	})
}

func FuzzRecords(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		smallLimit(t)
		if len(b) >= HeaderSize {
			UpdateCRC(b) // let the fuzzer past the checksum
		}
		recs, err := Records(b)
		if err != nil {
			return
		}
		h, _ := ParseHeader(b)
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		// What decodes must re-encode to something that decodes the same.
		o := BuildOptions{BaseOffset: h.BaseOffset, Codec: CodecNone, BaseTimestamp: h.BaseTimestamp,
			LastOffsetDelta: h.LastOffsetDelta, ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence}
		nb, err := Build(o, recs)
		if err != nil {
			return // e.g. offsets out of order: legal to decode, rejected by Build
		}
		again, err := Records(nb)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("rebuilt batch does not decode: %v", err)
		}
		for i := range recs {
			if !bytes.Equal(again[i].Key, recs[i].Key) || !bytes.Equal(again[i].Value, recs[i].Value) ||
				(again[i].Key == nil) != (recs[i].Key == nil) || (again[i].Value == nil) != (recs[i].Value == nil) {
				t.Fatalf("record %d changed", i)
			}
		}
	})
}

func FuzzSplit(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := Split(b)
		if err != nil {
			return
		}
		var joined []byte
		for _, p := range parts {
			h, err := ParseHeader(p)
			if err != nil || h.Size() != len(p) {
				t.Fatalf("split produced a bad part: %v", err)
			}
			joined = append(joined, p...)
		}
		if !bytes.Equal(joined, b) {
			t.Fatal("parts do not reassemble the input")
		}
	})
}

// FuzzControlType: reading a control batch's type never panics, and a
// marker built by BuildMarker reads back as its own type.
func FuzzControlType(f *testing.F) {
	seedBatches(f)
	for _, commit := range []bool{false, true} {
		b, err := BuildMarker(Marker{ProducerID: 7, ProducerEpoch: 1, Commit: commit, CoordinatorEpoch: 3, Timestamp: 1})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, err := ControlType(b)
		if err != nil {
			return
		}
		if typ == ControlCommit || typ == ControlAbort {
			h, _ := ParseHeader(b)
			m, err := BuildMarker(Marker{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, Commit: typ == ControlCommit, Timestamp: h.MaxTimestamp})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ControlType(m); err != nil || got != typ {
				t.Fatalf("rebuilt marker reads %d, %v; want %d", got, err, typ)
			}
		}
	})
}
