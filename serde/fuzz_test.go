package serde_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/weir-io/weir/serde"
)

// fuzzDecoder checks the invariants every deserializer keeps on arbitrary input:
// it never panics; a failure wraps serde.ErrDecode; a success re-encodes to bytes
// that decode to an equal value (equal by reencoding, so NaN and maps compare).
func fuzzDecoder[T any](f *testing.F, s serde.Serde[T], seeds ...[]byte) {
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize(b)
		if err != nil {
			if !errors.Is(err, serde.ErrDecode) {
				t.Fatalf("error %v does not wrap ErrDecode", err)
			}
			return
		}
		again, err := s.Serialize(v)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", v, err)
		}
		v2, err := s.Deserialize(again)
		if err != nil {
			t.Fatalf("re-encoded bytes %x do not decode: %v", again, err)
		}
		third, err := s.Serialize(v2)
		if err != nil || !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable: %x then %x (%v)", again, third, err)
		}
	})
}

func FuzzString(f *testing.F) { fuzzDecoder(f, serde.String(), nil, []byte("hi"), []byte{0xff}) }

func FuzzBytes(f *testing.F) { fuzzDecoder(f, serde.Bytes(), nil, []byte{0, 1}) }

func FuzzInt64(f *testing.F) {
	fuzzDecoder(f, serde.Int64(), nil, []byte{1, 2, 3}, make([]byte, 8), bytes.Repeat([]byte{0xff}, 8))
}

func FuzzFloat64(f *testing.F) {
	nan, _ := serde.Float64().Serialize(math.NaN())
	fuzzDecoder(f, serde.Float64(), nil, make([]byte, 8), nan, []byte{1})
}

func FuzzJSON(f *testing.F) {
	fuzzDecoder(f, serde.JSON[order](), nil, []byte(`{"id":"a","amount":1.5,"items":["x"],"tags":{"k":"v"}}`),
		[]byte(`null`), []byte(`{"id":1}`))
}

func FuzzMsgpack(f *testing.F) {
	seed, _ := serde.Msgpack[order]().Serialize(order{ID: "a", Amount: 1.5, Items: []string{"x"}, Tags: map[string]string{"k": "v"}})
	fuzzDecoder(f, serde.Msgpack[order](), nil, seed, []byte{0xc0}, []byte{0xdd, 0xff, 0xff, 0xff, 0xff})
}

// FuzzMsgpackAny decodes into an interface, the path the `weir state` tooling
// uses for stores it has no Go type for.
func FuzzMsgpackAny(f *testing.F) {
	seed, _ := serde.Msgpack[any]().Serialize(map[string]any{"a": []any{int64(1), "x", 2.5, nil}})
	f.Add(seed)
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := serde.Msgpack[any]().Deserialize(b); err != nil && !errors.Is(err, serde.ErrDecode) {
			t.Fatalf("error %v does not wrap ErrDecode", err)
		}
	})
}
