package streams

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/weir-io/weir/examples/windowed-revenue/revenue"
	"github.com/weir-io/weir/examples/wordcount/wordcount"
)

// GokaConfig is what a goka processor of this package needs.
type GokaConfig struct {
	Brokers     []string
	Group       string // the goka group: its table is <group>-table, its loop topic <group>-loop
	Input       string
	Output      string
	StorageDir  string // LevelDB stores of the group table
	Replication int    // of the topics goka creates
	// Options are appended to the processor's, e.g. goka.WithTester in
	// tests.
	Options []goka.ProcessorOption
}

// processor builds a goka processor for the group graph edges with LevelDB
// storage and goka's default client settings, except that a new group reads
// its input from the start: the benchmark starts the processor before the
// first input record, and a reset to the newest offset could skip some.
func (c GokaConfig) processor(edges ...goka.Edge) (*goka.Processor, error) {
	cfg := goka.DefaultConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication, tm.Stream.Replication = c.Replication, c.Replication
	opts := []goka.ProcessorOption{
		goka.WithStorageBuilder(storage.DefaultBuilder(c.StorageDir)),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, tm)),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(cfg)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(cfg)),
		goka.WithLogger(quietLogger{}),
	}
	return goka.NewProcessor(c.Brokers, goka.DefineGroup(goka.Group(c.Group), edges...), append(opts, c.Options...)...)
}

// GokaWordCount is wordcount.Topology as goka's word count is written:
// the input callback splits a line and loops each word back keyed by
// itself (goka's way to repartition), the loop callback counts in the
// group table and emits the new count to the output topic.
func GokaWordCount(c GokaConfig) (*goka.Processor, error) {
	split := func(ctx goka.Context, msg any) {
		for _, w := range wordcount.Words(msg.(string)) {
			ctx.Loopback(w, "")
		}
	}
	count := func(ctx goka.Context, _ any) {
		var n int64
		if v := ctx.Value(); v != nil {
			n = v.(int64)
		}
		n++
		ctx.SetValue(n)
		ctx.Emit(goka.Stream(c.Output), ctx.Key(), strconv.FormatInt(n, 10))
	}
	return c.processor(
		goka.Input(goka.Stream(c.Input), new(codec.String), split),
		goka.Loop(new(codec.String), count),
		goka.Persist(new(codec.Int64)),
		goka.Output(goka.Stream(c.Output), new(codec.String)),
	)
}

// regionWindows is the group-table value of GokaWindowedRevenue: a
// region's open windows by start (epoch ms) and its stream time.
type regionWindows struct {
	StreamTime int64                    `json:"stream_time"`
	Open       map[int64]revenue.Totals `json:"open"`
}

// GokaWindowedRevenue is revenue.Topology hand-written for goka, which has
// no windows: the input callback loops each order back keyed by region,
// and the loop callback keeps the region's open windows in its table
// value, adds the order to its window unless that window has closed, and
// emits and forgets every window that the order's time closes. Stream time
// is per region here (per task in weir); with orders of every region
// arriving throughout, the two close the same windows.
func GokaWindowedRevenue(c GokaConfig) (*goka.Processor, error) {
	size, grace := revenue.Window.Size().Milliseconds(), revenue.Window.GracePeriod().Milliseconds()
	byRegion := func(ctx goka.Context, msg any) {
		o := msg.(*revenue.Order)
		ctx.Loopback(o.Region, o)
	}
	aggregate := func(ctx goka.Context, msg any) {
		o := msg.(*revenue.Order)
		st := &regionWindows{Open: make(map[int64]revenue.Totals)}
		if v := ctx.Value(); v != nil {
			st = v.(*regionWindows)
		}
		st.StreamTime = max(st.StreamTime, o.TS)
		if start := o.TS - o.TS%size; start+size+grace > st.StreamTime {
			t := st.Open[start]
			st.Open[start] = revenue.Totals{Orders: t.Orders + 1, Revenue: t.Revenue + o.Amount}
		}
		for start, t := range st.Open {
			if start+size+grace <= st.StreamTime {
				res := revenue.NewResult(ctx.Key(), time.UnixMilli(start), time.UnixMilli(start+size), t)
				ctx.Emit(goka.Stream(c.Output), ctx.Key(), &res)
				delete(st.Open, start)
			}
		}
		ctx.SetValue(st)
	}
	return c.processor(
		goka.Input(goka.Stream(c.Input), jsonCodec[revenue.Order]{}, byRegion),
		goka.Loop(jsonCodec[revenue.Order]{}, aggregate),
		goka.Persist(jsonCodec[regionWindows]{}),
		goka.Output(goka.Stream(c.Output), jsonCodec[revenue.Result]{}),
	)
}

// jsonCodec is a goka codec of *T as JSON.
type jsonCodec[T any] struct{}

func (jsonCodec[T]) Encode(v any) ([]byte, error) {
	t, ok := v.(*T)
	if !ok {
		return nil, fmt.Errorf("json codec: %T is not %T", v, t)
	}
	return json.Marshal(t)
}

func (jsonCodec[T]) Decode(data []byte) (any, error) {
	t := new(T)
	if err := json.Unmarshal(data, t); err != nil {
		return nil, err
	}
	return t, nil
}

// quietLogger drops goka's informational logs, which would interleave with
// the benchmark's progress line; failures still reach the caller as the
// processor's error.
type quietLogger struct{}

func (quietLogger) Print(...any)          {}
func (quietLogger) Println(...any)        {}
func (quietLogger) Printf(string, ...any) {}
