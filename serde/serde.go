package serde

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Serde converts values of type T to bytes and back.
//
// Both functions must be safe for concurrent use: the runtime calls one Serde from
// several tasks at once. Deserialize must not retain its input after returning
// unless the serde documents it (see [Bytes]).
type Serde[T any] struct {
	// Name identifies the byte format, for tools that decode stored bytes by name:
	// "string", "bytes", "int64", "float64", "json" or "msgpack" for the built-ins.
	Name string
	// Serialize encodes v. Errors wrap ErrEncode.
	Serialize func(v T) ([]byte, error)
	// Deserialize decodes b. Errors wrap ErrDecode.
	Deserialize func(b []byte) (T, error)
}

// String returns the serde for UTF-8 strings, byte-compatible with Kafka's
// StringSerializer.
//
// Serialize returns the string's bytes (an empty, non-nil slice for ""). Deserialize
// returns the bytes as a string, "" for nil or empty input; it does not check that
// they are valid UTF-8, so every byte sequence round-trips unchanged.
func String() Serde[string] {
	return Serde[string]{
		Name: "string",
		Serialize: func(s string) ([]byte, error) {
			return append([]byte{}, s...), nil
		},
		Deserialize: func(b []byte) (string, error) {
			return string(b), nil
		},
	}
}

// Bytes returns the identity serde for raw bytes, like Kafka's ByteArraySerializer.
//
// Neither direction copies: Serialize returns its argument and Deserialize returns
// its input, so a nil slice stays nil (a tombstone when used as a record value) and
// the caller must not modify a slice it has handed over.
func Bytes() Serde[[]byte] {
	return Serde[[]byte]{
		Name:        "bytes",
		Serialize:   func(b []byte) ([]byte, error) { return b, nil },
		Deserialize: func(b []byte) ([]byte, error) { return b, nil },
	}
}

// Int64 returns the serde for int64 as 8 bytes big-endian two's complement,
// byte-compatible with Kafka's LongSerializer.
//
// Deserialize fails unless its input is exactly 8 bytes; nil is an error because
// Kafka's null (a tombstone) has no int64 value.
func Int64() Serde[int64] {
	return Serde[int64]{
		Name: "int64",
		Serialize: func(v int64) ([]byte, error) {
			return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
		},
		Deserialize: func(b []byte) (int64, error) {
			if len(b) != 8 {
				return 0, DecodeError(fmt.Sprintf("serde: int64 needs 8 bytes, got %d", len(b)), nil)
			}
			return int64(binary.BigEndian.Uint64(b)), nil
		},
	}
}

// Float64 returns the serde for float64 as its 8-byte IEEE 754 bit pattern,
// big-endian, byte-compatible with Kafka's DoubleSerializer.
//
// Every bit pattern round-trips, including NaN payloads and negative zero.
// Deserialize fails unless its input is exactly 8 bytes.
func Float64() Serde[float64] {
	return Serde[float64]{
		Name: "float64",
		Serialize: func(v float64) ([]byte, error) {
			return binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(v)), nil
		},
		Deserialize: func(b []byte) (float64, error) {
			if len(b) != 8 {
				return 0, DecodeError(fmt.Sprintf("serde: float64 needs 8 bytes, got %d", len(b)), nil)
			}
			return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
		},
	}
}
