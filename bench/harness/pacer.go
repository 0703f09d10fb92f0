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
//
// A Pacer is for one goroutine. At high rates Wait runs once per event and
// shares the CPU with what is measured, so it reuses one timer, looks at
// the context without locking and reads the clock only when an event is
// not yet due by its last reading.
type Pacer struct {
	start time.Time
	rate  float64 // events per second; 0 means no pacing
	timer *time.Timer
	now   time.Time // the last clock reading: events due by then may go
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
	done := ctx.Done()
	if p.rate > 0 && due.After(p.now) {
		p.now = time.Now()
	}
	if d := due.Sub(p.now); p.rate > 0 && d > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d) // since Go 1.23 no stale tick is left in C
		}
		select {
		case p.now = <-p.timer.C:
		case <-done:
			p.timer.Stop()
			return due, ctx.Err()
		}
	}
	select { // a cancelled context's Done is closed; an open one never blocks here
	case <-done:
		return due, ctx.Err()
	default:
		return due, nil
	}
}
