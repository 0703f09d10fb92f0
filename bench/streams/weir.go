package streams

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
	"github.com/weir-io/weir/window"
)

// WordCount is examples/wordcount's topology: lines → words → counts per
// word, written to output as (word, decimal count).
func WordCount(input, output string) *stream.Builder {
	b := stream.NewBuilder()
	stream.From(b, input, serde.String(), serde.String()).
		FlatMapValues(func(_, line string) ([]string, error) { return Words(line), nil }).
		GroupBy(func(_, word string) (string, error) { return word, nil }, serde.String(), serde.String()).
		Count(stream.Named(CountStore)).
		ToStream().
		MapValues(func(_ string, n int64) (string, error) { return strconv.FormatInt(n, 10), nil }).
		To(output, serde.String(), serde.String())
	return b
}

// CountStore names WordCount's store; its changelog topic is
// <application id>-counts-changelog.
const CountStore = "counts"

// Words lower-cases a line and splits it on anything not a letter or digit.
func Words(line string) []string {
	return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Order is one input record of the windowed-revenue workload.
type Order struct {
	OrderID string  `json:"order_id"`
	Product string  `json:"product"`
	Region  string  `json:"region"`
	Amount  float64 `json:"amount"`
	TS      int64   `json:"ts"` // event time, epoch milliseconds
}

// Totals is the running aggregate of one region and window.
type Totals struct {
	Orders  int64   `json:"orders"`
	Revenue float64 `json:"revenue"`
}

// Result is one output record's value: a window's final totals.
type Result struct {
	Region      string  `json:"region"`
	WindowStart string  `json:"window_start"` // RFC 3339, UTC
	WindowEnd   string  `json:"window_end"`
	Orders      int64   `json:"orders"`
	Revenue     float64 `json:"revenue"`
}

// Window is examples/windowed-revenue's: one minute, orders up to 10 s late
// still count.
var Window = window.Tumbling(time.Minute).Grace(10 * time.Second)

// WindowedRevenue is examples/windowed-revenue's topology: orders re-keyed
// by region, revenue summed per region in tumbling windows, each window's
// final result emitted once it closes, keyed by region.
func WindowedRevenue(input, output string) *stream.Builder {
	b := stream.NewBuilder()
	orderTime := stream.WithTimestamp(func(_ string, o Order, _ time.Time) (time.Time, error) {
		return time.UnixMilli(o.TS), nil
	})
	byRegion := stream.From(b, input, serde.String(), serde.JSON[Order](), orderTime).
		GroupBy(func(_ string, o Order) (string, error) { return o.Region, nil }, serde.String(), serde.JSON[Order]())
	stream.WindowedBy(byRegion, Window, stream.EmitFinal()).
		Aggregate(func() (Totals, error) { return Totals{}, nil },
			func(_ string, o Order, t Totals) (Totals, error) {
				return Totals{Orders: t.Orders + 1, Revenue: t.Revenue + o.Amount}, nil
			}, serde.JSON[Totals](), stream.Named("revenue")).
		ToStream().
		Map(func(w window.Windowed[string], t Totals) (string, Result, error) {
			return w.Key, NewResult(w.Key, w.Window.Start, w.Window.End, t), nil
		}).
		To(output, serde.String(), serde.JSON[Result]())
	return b
}

// NewResult is the output value for a region's window.
func NewResult(region string, start, end time.Time, t Totals) Result {
	return Result{
		Region: region, Orders: t.Orders, Revenue: t.Revenue,
		WindowStart: start.UTC().Format(time.RFC3339),
		WindowEnd:   end.UTC().Format(time.RFC3339),
	}
}
