package serde_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/weir-io/weir/serde"
)

type order struct {
	ID     string            `json:"id" msgpack:"id"`
	Amount float64           `json:"amount" msgpack:"amount"`
	Items  []string          `json:"items,omitempty" msgpack:"items,omitempty"`
	Tags   map[string]string `json:"tags,omitempty" msgpack:"tags,omitempty"`
}

func TestStringBytes(t *testing.T) {
	s := serde.String()
	for _, in := range []string{"", "hello", "héllo wörld", "\xff\xfe not utf-8"} {
		b, err := s.Serialize(in)
		if err != nil || b == nil || string(b) != in {
			t.Fatalf("String().Serialize(%q) = %q, %v; want non-nil bytes of the string", in, b, err)
		}
		out, err := s.Deserialize(b)
		if err != nil || out != in {
			t.Fatalf("String() round trip of %q = %q, %v", in, out, err)
		}
	}
	if out, err := s.Deserialize(nil); err != nil || out != "" {
		t.Fatalf("String().Deserialize(nil) = %q, %v; want \"\", nil", out, err)
	}

	raw := serde.Bytes()
	if b, err := raw.Serialize(nil); err != nil || b != nil {
		t.Fatalf("Bytes().Serialize(nil) = %v, %v; want nil (a tombstone)", b, err)
	}
	in := []byte{0, 1, 2}
	if b, _ := raw.Serialize(in); &b[0] != &in[0] {
		t.Fatal("Bytes().Serialize copied its input; it is documented not to")
	}
	if b, err := raw.Deserialize(in); err != nil || !bytes.Equal(b, in) {
		t.Fatalf("Bytes().Deserialize = %v, %v", b, err)
	}
}

func TestFixedWidthNumbers(t *testing.T) {
	tests := []struct {
		name string
		run  func() ([]byte, error) // serialize
		want []byte                 // Kafka's bytes for the same value
	}{
		{"int64 0", func() ([]byte, error) { return serde.Int64().Serialize(0) }, []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{"int64 1", func() ([]byte, error) { return serde.Int64().Serialize(1) }, []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{"int64 -1", func() ([]byte, error) { return serde.Int64().Serialize(-1) }, bytes.Repeat([]byte{0xff}, 8)},
		{"int64 max", func() ([]byte, error) { return serde.Int64().Serialize(math.MaxInt64) }, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"float64 1.5", func() ([]byte, error) { return serde.Float64().Serialize(1.5) }, []byte{0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
		{"float64 -0", func() ([]byte, error) { return serde.Float64().Serialize(math.Copysign(0, -1)) }, []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("got %x, %v; want %x", got, err, tt.want)
			}
		})
	}

	for _, v := range []int64{0, 1, -1, 42, math.MinInt64, math.MaxInt64} {
		b, _ := serde.Int64().Serialize(v)
		if got, err := serde.Int64().Deserialize(b); err != nil || got != v {
			t.Fatalf("int64 round trip of %d = %d, %v", v, got, err)
		}
	}
	for _, v := range []float64{0, 1.5, -2.25, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64} {
		b, _ := serde.Float64().Serialize(v)
		if got, err := serde.Float64().Deserialize(b); err != nil || got != v {
			t.Fatalf("float64 round trip of %v = %v, %v", v, got, err)
		}
	}
	nan, _ := serde.Float64().Serialize(math.NaN())
	if got, err := serde.Float64().Deserialize(nan); err != nil || !math.IsNaN(got) {
		t.Fatalf("float64 NaN round trip = %v, %v", got, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		decode  func([]byte) error
		in      []byte
		wantMsg string // exact message, or "" to only check errors.Is
	}{
		{"int64 nil", errOf(serde.Int64()), nil, "serde: int64 needs 8 bytes, got 0"},
		{"int64 short", errOf(serde.Int64()), []byte{1, 2, 3}, "serde: int64 needs 8 bytes, got 3"},
		{"int64 long", errOf(serde.Int64()), make([]byte, 9), "serde: int64 needs 8 bytes, got 9"},
		{"float64 short", errOf(serde.Float64()), []byte{1}, "serde: float64 needs 8 bytes, got 1"},
		{"json empty", errOf(serde.JSON[order]()), nil, "serde: json serde_test.order: empty input"},
		{"json garbage", errOf(serde.JSON[order]()), []byte("{nope"), ""},
		{"json trailing", errOf(serde.JSON[order]()), []byte(`{"id":"a"} x`), ""},
		{"json wrong type", errOf(serde.JSON[order]()), []byte(`{"amount":"ten"}`), ""},
		{"msgpack empty", errOf(serde.Msgpack[order]()), []byte{}, "serde: msgpack serde_test.order: empty input"},
		{"msgpack truncated", errOf(serde.Msgpack[order]()), []byte{0x81, 0xa2, 'i'}, ""},
		{"msgpack trailing", errOf(serde.Msgpack[int64]()), []byte{0x01, 0x02}, "serde: msgpack int64: 1 trailing bytes"},
		{"msgpack json bytes", errOf(serde.Msgpack[order]()), []byte(`{"id":"a"}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			if !errors.Is(err, serde.ErrDecode) {
				t.Fatalf("error %v does not wrap serde.ErrDecode", err)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Fatalf("error = %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

func errOf[T any](s serde.Serde[T]) func([]byte) error {
	return func(b []byte) error {
		_, err := s.Deserialize(b)
		return err
	}
}

func TestStructRoundTrip(t *testing.T) {
	in := order{ID: "o-1", Amount: 12.5, Items: []string{"a", "b"}, Tags: map[string]string{"k": "v"}}
	for _, s := range []serde.Serde[order]{serde.JSON[order](), serde.Msgpack[order]()} {
		t.Run(s.Name, func(t *testing.T) {
			b, err := s.Serialize(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Deserialize(b)
			if err != nil {
				t.Fatal(err)
			}
			if out.ID != in.ID || out.Amount != in.Amount || len(out.Items) != 2 || out.Tags["k"] != "v" {
				t.Fatalf("round trip = %+v, want %+v", out, in)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	_, err := serde.JSON[chan int]().Serialize(make(chan int))
	if !errors.Is(err, serde.ErrEncode) {
		t.Fatalf("JSON of a channel: %v does not wrap ErrEncode", err)
	}
	_, err = serde.Msgpack[chan int]().Serialize(make(chan int))
	if !errors.Is(err, serde.ErrEncode) {
		t.Fatalf("Msgpack of a channel: %v does not wrap ErrEncode", err)
	}
}

func TestNames(t *testing.T) {
	names := map[string]string{
		serde.String().Name: "string", serde.Bytes().Name: "bytes",
		serde.Int64().Name: "int64", serde.Float64().Name: "float64",
		serde.JSON[int]().Name: "json", serde.Msgpack[int]().Name: "msgpack",
	}
	for got, want := range names {
		if got != want {
			t.Errorf("serde name %q, want %q", got, want)
		}
	}
	if len(names) != 6 {
		t.Fatalf("serde names are not distinct: %v", names)
	}
}

func TestDecodeErrorUnwraps(t *testing.T) {
	cause := errors.New("boom")
	err := serde.DecodeError("mine: bad", cause)
	if !errors.Is(err, serde.ErrDecode) || !errors.Is(err, cause) || errors.Is(err, serde.ErrEncode) {
		t.Fatalf("DecodeError classification wrong: %v", err)
	}
	if err.Error() != "mine: bad: boom" {
		t.Fatalf("message %q", err)
	}
}
