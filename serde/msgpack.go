package serde

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack returns a serde that encodes T as MessagePack with
// github.com/vmihailenco/msgpack/v5: structs become maps keyed by field name (or
// the `msgpack:"name"` tag), which is compact, schemaless and tolerant of added
// fields. It is the default serde for Go structs.
//
// Deserialize rejects empty input and trailing bytes after the encoded value, which
// catches most records written with a different serde. Before decoding it checks
// that the input is well formed, that no length prefix claims more elements than
// the input could hold and that containers nest at most 1000 deep, so a corrupt
// or hostile record costs an error, not memory or a crashed process.
func Msgpack[T any]() Serde[T] {
	prefix := "serde: msgpack " + reflect.TypeFor[T]().String()
	return Serde[T]{
		Name: "msgpack",
		Serialize: func(v T) ([]byte, error) {
			b, err := msgpack.Marshal(v)
			if err != nil {
				return nil, EncodeError(prefix, err)
			}
			return b, nil
		},
		Deserialize: func(b []byte) (T, error) {
			return decodeMsgpack[T](prefix, b)
		},
	}
}

func decodeMsgpack[T any](prefix string, b []byte) (T, error) {
	var v, zero T
	if len(b) == 0 {
		return zero, DecodeError(prefix+": empty input", nil)
	}
	if err := checkMsgpack(b); err != nil {
		return zero, DecodeError(prefix, err)
	}
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r)
	// As msgpack.Unmarshal does: preallocation stays under the decoder's
	// allocation limit, so a hostile length prefix cannot allocate gigabytes.
	dec.UsePreallocateValues(true)
	if err := dec.Decode(&v); err != nil {
		return zero, DecodeError(prefix, err)
	}
	if r.Len() != 0 { // checkMsgpack agrees on the value's extent; belt and braces
		return zero, DecodeError(fmt.Sprintf("%s: %d trailing bytes", prefix, r.Len()), nil)
	}
	return v, nil
}
