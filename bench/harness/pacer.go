package harness

import (
	"context"
	"time"
)

// Pacer schedules events at a fixed rate from a start time: event i is due
// at start + i/rate. It never lets an event go early; when it falls behind,
// the late events are due at once, so the rate over the run holds.
//
// Latencies measured from an event's due time rather than from when it was
// actually sent include the time the sender was stalled, so a stall shows up
// in the percentiles instead of being hidden (coordinated omission).
type Pacer struct {
	start time.Time
	rate  float64 // events per second; 0 means no pacing
}

// NewPacer returns a pacer of rate events per second starting now. A rate of
// 0 or less means as fast as possible: every event is due at once.
func NewPacer(rate float64) *Pacer {
	return &Pacer{start: time.Now(), rate: rate}
}

// Start is the time the pacer started.
func (p *Pacer) Start() time.Time { return p.start }

// Due returns when event i is due; without a rate it is the current time.
func (p *Pacer) Due(i int64) time.Time {
	if p.rate <= 0 {
		return time.Now()
	}
	return p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
}

// Wait blocks until event i is due and returns its due time.
func (p *Pacer) Wait(ctx context.Context, i int64) (time.Time, error) {
	due := p.Due(i)
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return due, ctx.Err()
		}
	}
	return due, ctx.Err()
}
