package replica

import (
	"bytes"
	"errors"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	b := mkBatch(t, -1, -1, -1, 2, "k")
	e, err := DecodeEntry(EncodeBatch(b))
	if err != nil || e.Type != EntryBatch || !bytes.Equal(e.Batch, b) {
		t.Fatalf("%v %v", e.Type, err)
	}
	for _, off := range []int64{-1, 0, 1 << 40} {
		e, err := DecodeEntry(EncodeDeleteRecords(off))
		if err != nil || e.Type != EntryDeleteRecords || e.Offset != off {
			t.Fatalf("delete %d: %+v %v", off, e, err)
		}
	}
	for _, bad := range [][]byte{
		nil, {}, {byte(EntryBatch)}, {0}, {99, 1, 2},
		{byte(EntryDeleteRecords)}, EncodeDeleteRecords(-2), append(EncodeDeleteRecords(5), 0),
	} {
		if _, err := DecodeEntry(bad); !errors.Is(err, ErrBadEntry) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(EncodeBatch(mkBatch(f, 3, 0, 0, 2, "k")))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0})
	f.Add(EncodeDeleteRecords(-1))
	f.Add(EncodeDeleteRecords(12345))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("error %v does not wrap ErrBadEntry", err)
			}
			return
		}
		var again []byte
		switch e.Type {
		case EntryBatch:
			again = EncodeBatch(e.Batch)
		case EntryDeleteRecords:
			again = EncodeDeleteRecords(e.Offset)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %v does not re-encode to the input", e.Type)
		}
	})
}
