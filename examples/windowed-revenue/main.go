// Command windowed-revenue sums revenue and counts orders per region in
// one-minute tumbling windows (10 s grace), emitting each window's final
// result once it closes. Orders are JSON {order_id, product, region,
// amount, ts} with ts in epoch milliseconds (the event time); results are
// keyed by region with a JSON value {region, window_start, window_end,
// orders, revenue}. Without --brokers it starts an embedded broker and an
// order generator and checks the results against a reference computation.
package main

import (
	"context"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
	"github.com/weir-io/weir/window"
)

// Order is one input record.
type Order struct {
	OrderID string  `json:"order_id"`
	Product string  `json:"product"`
	Region  string  `json:"region"`
	Amount  float64 `json:"amount"`
	TS      int64   `json:"ts"`
}

// Totals is the running aggregate of one region and window.
type Totals struct {
	Orders  int64   `json:"orders"`
	Revenue float64 `json:"revenue"`
}

// Result is one output record's value.
type Result struct {
	Region      string  `json:"region"`
	WindowStart string  `json:"window_start"`
	WindowEnd   string  `json:"window_end"`
	Orders      int64   `json:"orders"`
	Revenue     float64 `json:"revenue"`
}

// Windows of one minute; orders up to 10 s late still count.
var spec = window.Tumbling(time.Minute).Grace(10 * time.Second)

func topology(input, output string) *stream.Builder {
	b := stream.NewBuilder()
	orderTime := stream.WithTimestamp(func(_ string, o Order, _ time.Time) (time.Time, error) {
		return time.UnixMilli(o.TS), nil
	})
	byRegion := stream.From(b, input, serde.String(), serde.JSON[Order](), orderTime).
		GroupBy(func(_ string, o Order) (string, error) { return o.Region, nil }, serde.String(), serde.JSON[Order]())
	stream.WindowedBy(byRegion, spec, stream.EmitFinal()).
		Aggregate(func() (Totals, error) { return Totals{}, nil },
			func(_ string, o Order, t Totals) (Totals, error) {
				return Totals{Orders: t.Orders + 1, Revenue: t.Revenue + o.Amount}, nil
			}, serde.JSON[Totals](), stream.Named("revenue")).
		ToStream().
		Map(func(w window.Windowed[string], t Totals) (string, Result, error) {
			return w.Key, Result{
				Region: w.Key, Orders: t.Orders, Revenue: t.Revenue,
				WindowStart: w.Window.Start.UTC().Format(time.RFC3339),
				WindowEnd:   w.Window.End.UTC().Format(time.RFC3339),
			}, nil
		}).
		To(output, serde.String(), serde.JSON[Result]())
	return b
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}
