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
	for _, bad := range [][]byte{nil, {}, {byte(EntryBatch)}, {0}, {99, 1, 2}} {
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
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("error %v does not wrap ErrBadEntry", err)
			}
			return
		}
		if e.Type != EntryBatch || !bytes.Equal(EncodeBatch(e.Batch), b) {
			t.Fatalf("decoded %v does not re-encode to the input", e.Type)
		}
	})
}
