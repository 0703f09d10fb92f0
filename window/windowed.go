package window

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/weir-io/weir/serde"
)

// Windowed is the key of a windowed aggregation's result: the record key and
// the window the result is for.
type Windowed[K any] struct {
	Key    K
	Window Window
}

// String formats w as "key@[start,end)", the key printed with %v.
func (w Windowed[K]) String() string {
	return fmt.Sprintf("%v@%s", w.Key, w.Window)
}

// WindowedSerde returns the serde for windowed keys of windows of the given
// size, byte-compatible with Kafka Streams' TimeWindowedSerializer: the
// serialized key followed by the window start as 8 bytes big-endian
// milliseconds since the epoch.
//
// As in Kafka, the end is not stored: Deserialize computes it as start + size,
// so readers must know the window size — the same value the spec was built
// with. Kafka consumers read these keys with
// WindowedSerdes.timeWindowedSerdeFrom(keyClass, sizeMs).
func WindowedSerde[K any](key serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	sizeMs := size.Milliseconds()
	return serde.Serde[Windowed[K]]{
		Name: "windowed(" + key.Name + ")",
		Serialize: func(w Windowed[K]) ([]byte, error) {
			if sizeMs <= 0 {
				return nil, serde.EncodeError(fmt.Sprintf("window: windowed serde with window size %v", size), ErrInvalidSpec)
			}
			k, err := key.Serialize(w.Key)
			if err != nil {
				return nil, err
			}
			out := make([]byte, len(k), len(k)+8)
			copy(out, k)
			return binary.BigEndian.AppendUint64(out, uint64(w.Window.Start.UnixMilli())), nil
		},
		Deserialize: func(b []byte) (Windowed[K], error) {
			var w Windowed[K]
			if sizeMs <= 0 {
				return w, serde.DecodeError(fmt.Sprintf("window: windowed serde with window size %v", size), ErrInvalidSpec)
			}
			if len(b) < 8 {
				return w, serde.DecodeError(fmt.Sprintf("window: windowed key needs at least 8 bytes, got %d", len(b)), nil)
			}
			n := len(b) - 8
			k, err := key.Deserialize(b[:n:n]) // capped, so appends cannot touch the start
			if err != nil {
				return w, err
			}
			start := int64(binary.BigEndian.Uint64(b[n:]))
			w.Key, w.Window = k, Window{Start: fromMillis(start), End: fromMillis(start + sizeMs)}
			return w, nil
		},
	}
}
