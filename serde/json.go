package serde

import (
	"encoding/json"
	"reflect"
)

// JSON returns a serde that encodes T with encoding/json, so struct tags, custom
// MarshalJSON methods and json.RawMessage behave as usual.
//
// Deserialize rejects empty input and trailing bytes after the JSON value; the
// literal null decodes to T's zero value, as json.Unmarshal does.
func JSON[T any]() Serde[T] {
	prefix := "serde: json " + reflect.TypeFor[T]().String()
	return Serde[T]{
		Name: "json",
		Serialize: func(v T) ([]byte, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, EncodeError(prefix, err)
			}
			return b, nil
		},
		Deserialize: func(b []byte) (T, error) {
			var v T
			if len(b) == 0 {
				return v, DecodeError(prefix+": empty input", nil)
			}
			if err := json.Unmarshal(b, &v); err != nil {
				var zero T
				return zero, DecodeError(prefix, err)
			}
			return v, nil
		},
	}
}
