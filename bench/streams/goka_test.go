package streams

import (
	"context"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/weir-io/weir/examples/windowed-revenue/revenue"
)

// runGoka starts the processor built by build on goka's in-memory tester.
func runGoka(t *testing.T, build func(GokaConfig) (*goka.Processor, error)) *tester.Tester {
	tt := tester.New(t)
	p, err := build(GokaConfig{Group: "g", Input: "in", Output: "out", Options: []goka.ProcessorOption{goka.WithTester(tt)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	return tt
}

func TestGokaWordCount(t *testing.T) {
	tt := runGoka(t, GokaWordCount)
	out := tt.NewQueueTracker("out")
	tt.Consume("in", "1", "The cat, the HAT")
	want := [][2]string{{"the", "1"}, {"cat", "1"}, {"the", "2"}, {"hat", "1"}}
	for i, w := range want {
		k, v, ok := out.Next()
		if !ok || k != w[0] || v != w[1] {
			t.Fatalf("output %d = %q %v (%v), want %q %q", i, k, v, ok, w[0], w[1])
		}
	}
	if got := tt.TableValue("g-table", "the"); got != int64(2) {
		t.Errorf("table value of the = %v, want 2", got)
	}
}

// TestGokaWindowedRevenue checks the hand-written windows against the
// semantics of weir's: a window closes once stream time reaches its end
// plus grace, its result is emitted once, and later orders for it are
// dropped.
func TestGokaWindowedRevenue(t *testing.T) {
	tt := runGoka(t, GokaWindowedRevenue)
	out := tt.NewQueueTracker("out")
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	order := func(region string, at time.Duration, amount float64) {
		tt.Consume("in", "o", &revenue.Order{Region: region, Amount: amount, TS: t0.Add(at).UnixMilli()})
	}
	order("eu", 0, 10)
	order("eu", 30*time.Second, 5)
	order("us", 10*time.Second, 7)
	order("eu", 69*time.Second, 1)  // within grace: [t0, t0+1m) still open
	order("eu", 70*time.Second, 2)  // stream time reaches end + grace: closes it
	order("eu", 5*time.Second, 100) // late: dropped
	order("eu", 3*time.Minute, 0)   // closes [t0+1m, t0+2m)
	want := []revenue.Result{
		revenue.NewResult("eu", t0, t0.Add(time.Minute), revenue.Totals{Orders: 2, Revenue: 15}),
		revenue.NewResult("eu", t0.Add(time.Minute), t0.Add(2*time.Minute), revenue.Totals{Orders: 2, Revenue: 3}),
	}
	for i, w := range want {
		k, v, ok := out.Next()
		if !ok || k != "eu" || *v.(*revenue.Result) != w {
			t.Fatalf("output %d = %q %+v (%v), want eu %+v", i, k, v, ok, w)
		}
	}
	if k, v, ok := out.Next(); ok {
		t.Errorf("unexpected output %q %+v (us's window stays open: its stream time has not moved)", k, v)
	}
}
