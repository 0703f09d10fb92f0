package window_test

import (
	"fmt"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

func Example() {
	spec := window.Tumbling(time.Minute).Grace(10 * time.Second)

	ts := time.Date(2024, 5, 1, 12, 3, 27, 0, time.UTC)
	w := spec.WindowFor(ts)
	fmt.Println(w)
	fmt.Println(spec.Closed(w, ts.Add(40*time.Second))) // 12:04:07: in grace
	fmt.Println(spec.Closed(w, ts.Add(43*time.Second))) // 12:04:10: closed

	key := window.Windowed[string]{Key: "user-7", Window: w}
	fmt.Println(key)
	// Output:
	// [2024-05-01T12:03:00Z,2024-05-01T12:04:00Z)
	// false
	// true
	// user-7@[2024-05-01T12:03:00Z,2024-05-01T12:04:00Z)
}

func ExampleWindowedSerde() {
	spec := window.Tumbling(time.Minute)
	keys := window.WindowedSerde(serde.String(), spec.Size())

	b, _ := keys.Serialize(window.Windowed[string]{Key: "k", Window: spec.WindowFor(time.UnixMilli(90_000))})
	fmt.Printf("% x\n", b) // "k", then the start (60000 ms) as Kafka writes it

	back, _ := keys.Deserialize(b)
	fmt.Println(back)
	// Output:
	// 6b 00 00 00 00 00 00 ea 60
	// k@[1970-01-01T00:01:00Z,1970-01-01T00:02:00Z)
}

// A windowed count kept in a window store. When stream time passes a window's
// close, its final result is read with FetchAll and the old windows expire.
func ExampleStore() {
	spec := window.Tumbling(time.Minute)
	ws := window.NewStore(state.NewMemory(), spec.Retention())
	counts := serde.Int64()

	add := func(user string, ts time.Time) {
		start := spec.WindowFor(ts).Start
		n := int64(0)
		if b, _ := ws.Get([]byte(user), start); b != nil {
			n, _ = counts.Deserialize(b)
		}
		b, _ := counts.Serialize(n + 1)
		_ = ws.Put([]byte(user), start, b)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	add("ada", t0.Add(5*time.Second))
	add("bob", t0.Add(7*time.Second))
	add("ada", t0.Add(50*time.Second))
	add("ada", t0.Add(70*time.Second)) // the next window

	streamTime := t0.Add(70 * time.Second) // the 12:00 window closed at 12:01
	it, _ := ws.FetchAll(t0, t0.Add(time.Minute))
	for it.Next() {
		n, _ := counts.Deserialize(it.Value())
		fmt.Printf("%s %s %d\n", it.Start().Format("15:04"), it.Key(), n)
	}
	_ = it.Close()

	_ = ws.Expire(streamTime.Add(time.Minute)) // later: 12:00 ages out
	v, _ := ws.Get([]byte("ada"), t0)
	fmt.Println(v == nil)
	// Output:
	// 12:00 ada 2
	// 12:00 bob 1
	// true
}
