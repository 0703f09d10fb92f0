// Command windowed-revenue sums revenue and counts orders per region in
// one-minute tumbling windows (10 s grace), emitting each window's final
// result once it closes. Orders are JSON {order_id, product, region,
// amount, ts} with ts in epoch milliseconds (the event time); results are
// keyed by region with a JSON value {region, window_start, window_end,
// orders, revenue}. The topology is package revenue (revenue/revenue.go).
// Without --brokers it starts an embedded broker and an order generator
// and checks the results against a reference computation (check.go).
package main

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/weir-io/weir/examples/internal/demo"
	"github.com/weir-io/weir/examples/windowed-revenue/revenue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := demo.Run(ctx, demo.Example{
		Name: "windowed revenue", Input: revenue.Input, Output: revenue.Output, AppID: "windowed-revenue",
		// One input partition keeps event-time order, and so which orders
		// are late, deterministic for the reference check.
		Partitions: 1,
		Topology:   revenue.Topology,
		Demo:       check,
	})
	if err != nil {
		log.Fatal(err)
	}
}
