package group

import "sync"

// partWriter serialises the writes of one __consumer_offsets partition. Writes
// queue in the order they are made (under their group's lock), so for any one
// group the log order is the order of the state changes. Everything queued
// while an Append is in flight goes out in the next Append (group commit).
// Completion callbacks run in queue order, each under its group's lock.
type partWriter struct {
	c         *Coordinator
	partition int32

	mu      sync.Mutex
	q       []pendingWrite
	running bool
}

type pendingWrite struct {
	g    *group
	recs []Record
	done func(err error) // run with g.mu held; may be nil
}

// write queues recs for g and calls done (under g.mu) once they are durable or
// failed. g.mu must be held by the caller.
func (g *group) write(recs []Record, done func(error)) {
	w := g.c.writers[g.partition]
	w.mu.Lock()
	w.q = append(w.q, pendingWrite{g: g, recs: recs, done: done})
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

func (w *partWriter) run() {
	for {
		w.mu.Lock()
		batch := w.q
		w.q = nil
		if len(batch) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()

		var recs []Record
		for _, p := range batch {
			recs = append(recs, p.recs...)
		}
		err := w.c.ctx.Err()
		if err == nil && len(recs) > 0 {
			err = w.c.log.Append(w.c.ctx, w.partition, recs)
		}
		if err != nil {
			w.c.logger.Warn("appending to __consumer_offsets failed", "partition", w.partition, "records", len(recs), "err", err)
		}
		for _, p := range batch {
			if p.done == nil {
				continue
			}
			p.g.mu.Lock()
			p.done(err)
			p.g.mu.Unlock()
		}
	}
}
