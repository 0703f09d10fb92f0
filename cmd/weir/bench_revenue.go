package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/bench/harness"
	"github.com/weir-io/weir/examples/windowed-revenue/revenue"
)

// orderStep is the event time between consecutive orders.
const orderStep = time.Millisecond

// windowKey names one region's window by its start in epoch milliseconds.
type windowKey struct {
	region string
	start  int64
}

// revenueTracker generates orders over regions, 1 ms of event time apart
// in production order, and follows the final window results. An order is
// done when its window's result appears.
type revenueTracker struct {
	// start is the event time of the first measured order: a whole minute
	// of the current time, since a broker may delete records whose
	// timestamps are older than the retention time (and windows start with it).
	start   time.Time
	orders  [][]byte // JSON values
	sent    sendTimes
	regions int

	mu      sync.Mutex
	windows map[windowKey][]int32 // the orders of every measured window
	done    int64
	dropped int64
	warm    map[windowKey]bool
}

func newRevenueTracker(n int64, regions int) *revenueTracker {
	t := &revenueTracker{
		start:  time.Now().Truncate(time.Minute),
		orders: make([][]byte, n), sent: make(sendTimes, n), regions: regions,
		windows: make(map[windowKey][]int32),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	products := []string{"kettle", "lamp", "chair", "desk", "mug"}
	size := revenue.Window.Size().Milliseconds()
	for i := range t.orders {
		ts := t.start.Add(time.Duration(i) * orderStep).UnixMilli()
		o := revenue.Order{
			OrderID: fmt.Sprintf("o-%d", i), Product: products[rng.IntN(len(products))],
			Region: regionName(rng.IntN(regions)), Amount: float64(rng.IntN(10000)) / 100, TS: ts,
		}
		t.orders[i], _ = json.Marshal(o) // cannot fail: plain fields
		k := windowKey{o.Region, ts - ts%size}
		t.windows[k] = append(t.windows[k], int32(i))
	}
	return t
}

func regionName(i int) string { return fmt.Sprintf("region-%02d", i) }

func (t *revenueTracker) record(i int64) *kgo.Record {
	return &kgo.Record{Key: fmt.Appendf(nil, "o-%d", i), Value: t.orders[i]}
}

func (t *revenueTracker) times() sendTimes { return t.sent }

// orderAt returns an unmeasured order of region r at event time ts.
func orderAt(id string, r int, ts time.Time) *kgo.Record {
	v, _ := json.Marshal(revenue.Order{OrderID: id, Product: "warmup", Region: regionName(r), Amount: 1, TS: ts.UnixMilli()})
	return &kgo.Record{Key: []byte(id), Value: v}
}

// warmup gives every region an order ten minutes before the measured ones,
// then every region another 75 s later, which closes the first ones'
// windows, so that every region's first window result crosses the whole
// topology. (All first orders go first: a task's stream time is its
// largest timestamp yet, and a second order would make the next region's
// first one late.) The second orders' windows close during the
// measurement; their results are ignored.
func (t *revenueTracker) warmup(partitions int) []*kgo.Record {
	t.warm = make(map[windowKey]bool)
	early := t.start.Add(-10 * time.Minute)
	var first, second []*kgo.Record
	for r := range t.regions {
		t.warm[windowKey{regionName(r), early.UnixMilli()}] = true
		a := orderAt(fmt.Sprintf("warmup-%d-a", r), r, early)
		b := orderAt(fmt.Sprintf("warmup-%d-b", r), r, early.Add(75*time.Second))
		a.Partition, b.Partition = int32(r%partitions), int32(r%partitions)
		first, second = append(first, a), append(second, b)
	}
	return append(first, second...)
}

// sentinels give every region an order two minutes past the last measured
// one, which closes every measured window.
func (t *revenueTracker) sentinels() []*kgo.Record {
	last := t.start.Add(time.Duration(len(t.orders)) * orderStep)
	var recs []*kgo.Record
	for r := range t.regions {
		recs = append(recs, orderAt(fmt.Sprintf("sentinel-%d", r), r, last.Add(2*time.Minute)))
	}
	return recs
}

func (t *revenueTracker) warmedUp() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.warm) == 0
}

func (t *revenueTracker) stats() streamStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return streamStats{dropped: t.dropped}
}

func (t *revenueTracker) observe(_, value []byte, now time.Duration, hist *harness.Histogram) (int64, error) {
	var res revenue.Result
	if err := json.Unmarshal(value, &res); err != nil {
		return 0, fmt.Errorf("undecodable result %q: %v", value, err)
	}
	start, err := time.Parse(time.RFC3339, res.WindowStart)
	if err != nil {
		return 0, fmt.Errorf("result %q: window start: %v", value, err)
	}
	k := windowKey{res.Region, start.UnixMilli()}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.warm[k] {
		delete(t.warm, k)
		return 0, nil
	}
	orders, ok := t.windows[k]
	if !ok {
		return 0, nil // the warm-up's second window
	}
	if res.Orders > int64(len(orders)) {
		return 0, fmt.Errorf("window %s %s has %d orders, but only %d were sent", k.region, res.WindowStart, res.Orders, len(orders))
	}
	delete(t.windows, k) // a window's final result comes once
	for _, i := range orders[:res.Orders] {
		d, err := t.sent.delay(int64(i), now)
		if err != nil {
			return 0, err
		}
		hist.Record(d)
	}
	t.done += res.Orders
	t.dropped += int64(len(orders)) - res.Orders
	return res.Orders, nil
}
