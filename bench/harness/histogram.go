package harness

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// maxLatency is the largest latency a Histogram tracks; larger values are
// recorded as this.
const maxLatency = 10 * time.Minute

// Histogram records latencies with microsecond resolution and three
// significant digits. It is safe for concurrent use.
type Histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, maxLatency.Microseconds(), 3)}
}

// Record adds one latency. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	switch {
	case us < 0:
		us = 0
	case us > maxLatency.Microseconds():
		us = maxLatency.Microseconds()
	}
	h.mu.Lock()
	h.h.RecordValue(us) // cannot fail: us is within the tracked range
	h.mu.Unlock()
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Quantile returns the latency at percentile p (0 to 100).
func (h *Histogram) Quantile(p float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the histogram's count, mean, p50, p99, p99.9 and max.
func (h *Histogram) Summary() Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return Latency{}
	}
	ps := h.h.ValueAtPercentiles([]float64{50, 99, 99.9})
	ms := func(us int64) float64 { return float64(us) / 1e3 }
	return Latency{
		Count: h.h.TotalCount(),
		Mean:  h.h.Mean() / 1e3,
		P50:   ms(ps[50]),
		P99:   ms(ps[99]),
		P999:  ms(ps[99.9]),
		Max:   ms(h.h.Max()),
	}
}

// Percentile is one point of a latency distribution.
type Percentile struct {
	P  float64 `json:"p"`  // percent, 0 to 100
	Ms float64 `json:"ms"` // latency at P
}

// CDF returns the latency at percentiles spaced evenly on a log scale of
// 1/(1-p) — 0, 20.6, 36.9, 50, ... 90, ... 99, ... 99.999 — then the
// maximum: the spacing of an HDR percentile plot, dense in the tail.
func (h *Histogram) CDF() []Percentile {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return nil
	}
	const steps = 50 // ten per decade up to 99.999
	var out []Percentile
	for k := range steps + 1 {
		p := 100 * (1 - math.Pow(10, -float64(k)/10))
		out = append(out, Percentile{P: p, Ms: float64(h.h.ValueAtPercentile(p)) / 1e3})
	}
	return append(out, Percentile{P: 100, Ms: float64(h.h.Max()) / 1e3})
}
