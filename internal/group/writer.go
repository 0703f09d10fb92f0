package group

import "sync"

// partWriter serialises the writes of one __consumer_offsets partition. Writes
// queue in the order they are made (under their group's lock), so for any one
// group the log order is the order of the state changes. Everything queued
// while an Append is in flight goes out in the next Append (group commit),
// except that a transactional write (TxnOffsetCommit) goes in a batch of its
// own producer: consecutive writes of the same kind share one Append or
// AppendTxn, in queue order. Completion callbacks run in queue order, each
// under its group's lock, after their own append and before the next.
type partWriter struct {
	c         *Coordinator
	partition int32

	mu      sync.Mutex
	q       []pendingWrite
	running bool
}

// producer is the identity of a transactional write; plain writes carry
// noProducer.
type producer struct {
	id    int64
	epoch int16
}

var noProducer = producer{id: -1, epoch: -1}

type pendingWrite struct {
	g    *group
	prod producer
	recs []Record
	done func(err error) // run with g.mu held; may be nil
}

// write queues recs for g and calls done (under g.mu) once they are durable or
// failed. g.mu must be held by the caller.
func (g *group) write(recs []Record, done func(error)) {
	g.enqueue(pendingWrite{g: g, prod: noProducer, recs: recs, done: done})
}

// writeTxn is write for the transactional offsets of producer p.
func (g *group) writeTxn(p producer, recs []Record, done func(error)) {
	g.enqueue(pendingWrite{g: g, prod: p, recs: recs, done: done})
}

func (g *group) enqueue(pw pendingWrite) {
	w := g.c.writers[g.partition]
	w.mu.Lock()
	w.q = append(w.q, pw)
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
		queued := w.q
		w.q = nil
		if len(queued) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()

		for len(queued) > 0 {
			n := 1
			for n < len(queued) && queued[n].prod == queued[0].prod {
				n++
			}
			w.flush(queued[:n])
			queued = queued[n:]
		}
	}
}

// flush appends the records of writes (all of one producer, or all plain)
// in one Append or AppendTxn and runs their callbacks.
func (w *partWriter) flush(writes []pendingWrite) {
	var recs []Record
	for _, p := range writes {
		recs = append(recs, p.recs...)
	}
	prod := writes[0].prod
	err := w.c.ctx.Err()
	if err == nil && len(recs) > 0 {
		if prod == noProducer {
			err = w.c.log.Append(w.c.ctx, w.partition, recs)
		} else {
			err = w.c.log.AppendTxn(w.c.ctx, w.partition, prod.id, prod.epoch, recs)
		}
	}
	if err != nil {
		w.c.logger.Warn("appending to __consumer_offsets failed", "partition", w.partition, "records", len(recs), "producer", prod.id, "err", err)
	}
	for _, p := range writes {
		if p.done == nil {
			continue
		}
		p.g.mu.Lock()
		p.done(err)
		p.g.mu.Unlock()
	}
}
