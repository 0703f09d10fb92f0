package serde

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Every value the encoder produces must pass the pre-decode check.
func TestCheckMsgpackAcceptsEncoderOutput(t *testing.T) {
	type inner struct {
		B []byte
		T time.Time
	}
	values := []any{
		nil, true, false, 0, 1, -1, -33, 127, 128, 255, 256, 65535, 65536, math.MaxInt64, math.MinInt64,
		uint64(math.MaxUint64), float32(1.5), 2.5, math.Inf(-1),
		"", "short", strings.Repeat("x", 31), strings.Repeat("x", 32), strings.Repeat("x", 300), strings.Repeat("x", 70000),
		[]byte{}, []byte{1, 2, 3}, bytes.Repeat([]byte{7}, 300), bytes.Repeat([]byte{7}, 70000),
		[]int{}, make([]int, 15), make([]int, 16), make([]int, 70000),
		map[string]int{}, map[string]int{"a": 1}, bigMap(16), bigMap(70000),
		map[string]any{"nested": []any{map[string]any{"deep": []any{1, "two", nil}}}},
		time.Unix(1, 0), time.Unix(1<<34, 5), time.Unix(-1, 5), // the three timestamp ext sizes
		inner{B: []byte("x"), T: time.Unix(1700000000, 42)},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %T: %v", v, err)
		}
		if err := checkMsgpack(b); err != nil {
			t.Errorf("checkMsgpack rejects encoding of %T (% x...): %v", v, b[:min(len(b), 8)], err)
		}
	}
}

func bigMap(n int) map[string]int {
	m := make(map[string]int, n)
	for i := range n {
		m[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune(i))] = i
	}
	return m
}

// Inputs that made the decoder allocate gigabytes or recurse without bound.
func TestMsgpackHostileInput(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, 1<<20) // a million nested one-element arrays
	deep = append(deep, 0x01)
	tests := []struct {
		name string
		in   []byte
	}{
		{"map32 of 4G entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
		{"array32 of 4G elements", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"str32 of 4G bytes", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}},
		{"bin32 of 4G bytes", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}},
		{"ext32 of 4G bytes", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"nested lengths", []byte{0x92, 0xdd, 0x00, 0x01, 0x00, 0x00, 0xdd, 0x00, 0x01, 0x00, 0x00}},
		{"deep nesting", deep},
		{"reserved code", []byte{0xc1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Msgpack[any]().Deserialize(tt.in)
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("Deserialize = %v, want ErrDecode", err)
			}
		})
	}
}

func FuzzCheckMsgpack(f *testing.F) {
	f.Add([]byte{0x81, 0xa1, 'a', 0x01})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever the check accepts, the decoder must handle without a
		// length mismatch: both agree on where the value ends.
		if checkMsgpack(b) != nil {
			return
		}
		var v any
		r := bytes.NewReader(b)
		dec := msgpack.NewDecoder(r)
		if err := dec.Decode(&v); err == nil && r.Len() != 0 {
			t.Fatalf("check accepted %x but the decoder left %d bytes", b, r.Len())
		}
	})
}
