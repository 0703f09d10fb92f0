// Package revenue is the topology of examples/windowed-revenue: orders in,
// per region and one-minute tumbling window (10 s grace) the order count
// and revenue out, each window's final result once it closes. It is a
// package of its own so that other programs can import it: the example
// runs it, and `weir bench windowed-revenue` measures it (cmd/weir,
// against bench/streams' hand-written goka version).
package revenue

import (
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
	"github.com/weir-io/weir/window"
)

// The example's default topics.
const (
	Input  = "orders"             // key = order id, value = an Order as JSON
	Output = "revenue-per-region" // key = region, value = a Result as JSON
)

// Store names the window store; its changelog topic is
// <application id>-revenue-changelog.
const Store = "revenue"

// Order is one input record.
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

// Window: one minute; orders up to 10 s late still count.
var Window = window.Tumbling(time.Minute).Grace(10 * time.Second)

// Topology: orders re-keyed by region, revenue summed per region in
// tumbling windows, each window's final result emitted once it closes,
// keyed by region.
func Topology(input, output string) *stream.Builder {
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
			}, serde.JSON[Totals](), stream.Named(Store)).
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
