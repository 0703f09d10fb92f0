package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/examples/internal/demo"
	"github.com/weir-io/weir/examples/windowed-revenue/revenue"
)

// check feeds the embedded broker generated orders and follows the
// results, each checked against the reference computation.
func check(ctx context.Context, f demo.Flags, brokers string) error {
	orders := generate(f.Records)
	go demo.Produce(ctx, brokers, f.Input, func(i int) *kgo.Record {
		v, _ := json.Marshal(orders[i])
		return &kgo.Record{Key: []byte(orders[i].OrderID), Value: v}
	}, len(orders), 0)
	return follow(ctx, brokers, f.Output, reference(orders))
}

// generate makes n orders over a few minutes of event time, a few of them
// late within the grace period and a few too late to count.
func generate(n int) []revenue.Order {
	rng := rand.New(rand.NewPCG(7, 11))
	regions := []string{"eu", "us", "apac", "latam"}
	products := []string{"kettle", "lamp", "chair", "desk", "mug"}
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixMilli()
	orders := make([]revenue.Order, n)
	for i := range orders {
		ts := start + int64(i)*250
		switch r := rng.IntN(100); {
		case r < 5:
			ts -= 5_000 // late, but inside the 10 s grace
		case r < 7:
			ts -= 90_000 // past grace: dropped
		}
		orders[i] = revenue.Order{
			OrderID: fmt.Sprintf("o-%06d", i), Product: products[rng.IntN(len(products))],
			Region: regions[rng.IntN(len(regions))], Amount: math.Round(rng.Float64()*10000) / 100, TS: ts,
		}
	}
	return orders
}

// windowKey names a region's window.
type windowKey struct {
	region string
	start  int64
}

// reference computes, the plain way, the final result of every window that
// the stream closes: orders in arrival order, stream time the largest
// timestamp seen, a window closed once stream time reaches end + grace.
func reference(orders []revenue.Order) map[windowKey]revenue.Totals {
	size, grace := revenue.Window.Size().Milliseconds(), revenue.Window.GracePeriod().Milliseconds()
	totals := make(map[windowKey]revenue.Totals)
	streamTime := int64(math.MinInt64)
	for _, o := range orders {
		streamTime = max(streamTime, o.TS)
		start := o.TS - o.TS%size
		if start+size+grace <= streamTime {
			continue // late: its window has closed
		}
		k := windowKey{o.Region, start}
		t := totals[k]
		totals[k] = revenue.Totals{Orders: t.Orders + 1, Revenue: t.Revenue + o.Amount}
	}
	for k := range totals {
		if k.start+size+grace > streamTime {
			delete(totals, k) // still open when the input ends
		}
	}
	return totals
}

// follow prints final results as they arrive and returns once every
// closed window has arrived, checking each against the reference.
func follow(ctx context.Context, brokers, topic string, want map[windowKey]revenue.Totals) error {
	got := 0
	var mismatch error
	err := demo.Follow(ctx, brokers, topic, func(r *kgo.Record) bool {
		var res revenue.Result
		if err := json.Unmarshal(r.Value, &res); err != nil {
			mismatch = fmt.Errorf("undecodable result %q: %v", r.Value, err)
			return true
		}
		fmt.Printf("%-6s [%s, %s)  orders %4d  revenue %10.2f\n", res.Region, res.WindowStart, res.WindowEnd, res.Orders, res.Revenue)
		start, _ := time.Parse(time.RFC3339, res.WindowStart)
		ref, ok := want[windowKey{res.Region, start.UnixMilli()}]
		if !ok || ref.Orders != res.Orders || math.Abs(ref.Revenue-res.Revenue) > 0.005 {
			mismatch = fmt.Errorf("window %s %s: got %d orders / %.2f, reference %d / %.2f", res.Region, res.WindowStart, res.Orders, res.Revenue, ref.Orders, ref.Revenue)
			return true
		}
		got++
		return got == len(want)
	})
	if err != nil {
		return err
	}
	if mismatch != nil {
		return mismatch
	}
	fmt.Printf("all %d closed windows match the reference computation (late orders within grace counted, later ones dropped)\n", got)
	return nil
}
