// Package window defines event-time windows and the store that keeps windowed
// aggregates.
//
// # Windows
//
// A [Spec] says how records are grouped: [Tumbling] windows of a fixed size,
// aligned to the Unix epoch like Kafka Streams' TimeWindows, with an optional
// grace period for out-of-order records:
//
//	spec := window.Tumbling(time.Minute).Grace(10 * time.Second)
//	w := spec.WindowFor(ts)            // [12:03:00, 12:04:00)
//	spec.Closed(w, streamTime)         // streamTime >= 12:04:10
//
// Time is event time (record timestamps) and a task's stream time is the
// largest timestamp it has seen. A window closes when stream time reaches its
// end plus the grace period; later records for it are dropped. [Emit] chooses
// between emitting every (cache-smoothed) update and emitting once at close.
//
// A windowed result is keyed by [Windowed], the record key plus its window;
// [WindowedSerde] writes it in Kafka Streams' TimeWindowedSerializer format
// (key bytes, then the start as 8 bytes big-endian milliseconds), so Kafka
// consumers can read windowed output topics.
//
// # Window stores
//
// A [Store] keeps one value per (key, window start) in a [state.Store] — LevelDB,
// memory, or either behind the record cache. It is byte-level so the runtime
// and the `weir state windows` tooling work without the user's types.
//
// Its key layout is start first: 8 bytes of big-endian milliseconds (sign bit
// flipped so pre-1970 times sort first), then the key bytes. The key needs no
// length prefix or escaping because the fixed-width start comes first, and
// [DecodeKey] splits a key with no other information. Each operation maps to
// the store as follows:
//
//   - Put, Get, Delete of one window: a point operation.
//   - FetchAll(from, to), used to emit the results of windows that have just
//     closed: one contiguous range scan, returning exactly the windows asked
//     for, in start order.
//   - Expire(streamTime), retention: one range deletion of the oldest prefix
//     of the keyspace. Its cost is proportional to what it deletes, and it
//     never scans live windows.
//   - Fetch(key, from, to), one key's windows: a skip scan. Within a window
//     start it seeks to the key, and past the key it seeks to the next start.
//     It costs about one seek per distinct window start in [from, to). For
//     aggregations, starts are multiples of the window size, so that is a
//     handful of seeks.
//
// The alternative, key first, makes Fetch one contiguous scan but turns both
// FetchAll and Expire into scans of the entire store. Those two run on every
// window close and every commit, while Fetch serves only interactive queries.
// Kafka Streams resolves the same tension with time segments of key-first data
// and, for emit-on-close, a second time-ordered store. One start-first
// keyspace gets both time operations exact without a second copy of each
// window. It also keeps one store entry per window, which matters because the
// record cache, the changelog and the tooling all see store entries one to one.
//
// Stream-stream joins buffer records at arbitrary timestamps, and for them
// Fetch would seek once per distinct timestamp. A join buffer should use its
// own key-first layout.
package window
