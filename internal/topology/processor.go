package topology

import (
	"log/slog"
	"time"

	"github.com/weir-io/weir/state"
)

// Record is one key/value in flight between processors. Key and Value hold
// the typed values the DSL's user functions see.
type Record struct {
	Key, Value any
	// Timestamp is the record's event time in Unix milliseconds.
	Timestamp int64
	Headers   []Header
	// Origin is where the input record that produced this one was read,
	// for error reports and dead-letter headers.
	Origin Origin
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Origin locates an input record.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Context is a processor's view of the task running it.
type Context interface {
	// Forward sends rec to every child of the current node.
	Forward(rec Record) error
	// ForwardTo sends rec to the named child only (branches).
	ForwardTo(child string, rec Record) error
	// Store returns the named store, which the node declared. It is the
	// task's write-back cache over the store: reads see the latest writes,
	// and the cache drives the changelog and, for aggregations, forwarding
	// (see Store.Owner), so processors only read and write.
	Store(name string) state.Store
	// StreamTime is the largest record timestamp the task has seen, in
	// Unix milliseconds; -1 before the first record.
	StreamTime() int64
	// Partition is the task's partition.
	Partition() int32
	// Count adds n to the named task metric (for example
	// "dropped-late-records").
	Count(metric string, n int64)
	Logger() *slog.Logger
}

// Processor is one node's behaviour in one task. The runtime calls Init
// once, Process per record, Punctuate when stream time advances (if the
// processor implements Punctuator), and Close at the end.
type Processor interface {
	Init(ctx Context) error
	Process(rec Record) error
	Close() error
}

// Punctuator is implemented by processors that act when stream time moves
// without a record of their own, such as windows emitting final results.
type Punctuator interface {
	Punctuate(streamTime int64) error
}

// Serializer and Deserializer convert the DSL's typed values at the edges.
type (
	Serializer   func(v any) ([]byte, error)
	Deserializer func(b []byte) (any, error)
)

// Codec pairs the two directions with the serde's name, which tooling uses
// to decode stored bytes.
type Codec struct {
	Name        string
	Serialize   Serializer
	Deserialize Deserializer
}

// TimestampExtractor picks a record's event time; the default is the
// Kafka record timestamp.
type TimestampExtractor func(key, value any, recordTime time.Time) (time.Time, error)

// ProcessorFunc makes a stateless processor from a function; the DSL's
// stateless steps are built with it.
func ProcessorFunc(f func(ctx Context, rec Record) error) func() Processor {
	return func() Processor { return &funcProcessor{f: f} }
}

type funcProcessor struct {
	f   func(ctx Context, rec Record) error
	ctx Context
}

func (p *funcProcessor) Init(ctx Context) error   { p.ctx = ctx; return nil }
func (p *funcProcessor) Process(rec Record) error { return p.f(p.ctx, rec) }
func (p *funcProcessor) Close() error             { return nil }
