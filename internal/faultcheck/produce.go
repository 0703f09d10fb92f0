package faultcheck

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceTick is how often a producer tops up its rate budget: fine enough
// to smooth the rate, coarse enough not to spin.
const produceTick = 10 * time.Millisecond

type producer struct {
	id      int
	cl      *kgo.Client
	ctx     context.Context // ends the produce loop, not the records in flight
	stop    context.CancelFunc
	done    chan struct{}
	sent    int64          // records handed to cl; read only after done
	pending sync.WaitGroup // records whose promise has not run yet
}

func (w *Workload) newProducer(id int) (*producer, error) {
	cl, err := kgo.NewClient(w.cfg.clientOpts(
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(w.cfg.DeliveryTimeout),
		// A topic just created on a cluster may be unknown to some
		// brokers for a moment; that must not fail records.
		kgo.UnknownTopicRetries(-1),
		// About a second of records: an outage then blocks the loop
		// instead of buffering without bound.
		kgo.MaxBufferedRecords(max(100, int(w.cfg.Rate)/w.cfg.Producers)),
	)...)
	if err != nil {
		return nil, fmt.Errorf("faultcheck: producer %d: %w", id, err)
	}
	pr := &producer{id: id, cl: cl, done: make(chan struct{})}
	pr.ctx, pr.stop = context.WithCancel(w.ctx)
	return pr, nil
}

// runProducer produces at the producer's share of the rate until stopped.
func (w *Workload) runProducer(pr *producer) {
	defer close(pr.done)
	perSec := w.cfg.Rate / float64(w.cfg.Producers)
	// After a stall (a full buffer during an outage) the budget would
	// burst; carrying at most one tick's worth keeps the rate steady.
	maxBudget := 1 + perSec*produceTick.Seconds()
	tick := time.NewTicker(produceTick)
	defer tick.Stop()
	last, budget := time.Now(), 0.0
	for {
		select {
		case <-pr.ctx.Done():
			return
		case now := <-tick.C:
			budget = min(budget+perSec*now.Sub(last).Seconds(), maxBudget)
			last = now
			for ; budget >= 1 && pr.ctx.Err() == nil; budget-- {
				w.produce(pr)
			}
		}
	}
}

// produce sends the producer's next record, spreading records round-robin
// over the partitions. It blocks while the client's buffer is full.
func (w *Workload) produce(pr *producer) {
	seq := pr.sent
	pr.sent++
	rec := &kgo.Record{
		Topic:     w.cfg.Topic,
		Partition: int32(seq % int64(w.cfg.Partitions)),
		Value:     []byte(Value(pr.id, seq)),
	}
	pr.pending.Add(1)
	pr.cl.Produce(w.ctx, rec, func(r *kgo.Record, err error) {
		defer pr.pending.Done()
		w.onProduced(pr.id, r, err)
	})
}

func (w *Workload) onProduced(producer int, r *kgo.Record, err error) {
	if err != nil {
		w.failed.Add(1)
		w.note(fmt.Sprintf("producer %d", producer), err)
		w.mu.Lock()
		w.h.Failures = append(w.h.Failures, Failure{Producer: producer, Partition: r.Partition,
			Value: string(r.Value), Err: err.Error()})
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	now := time.Now() // under mu, so acknowledgement times are in order
	if !w.lastAck.IsZero() {
		w.maxGap = max(w.maxGap, now.Sub(w.lastAck))
	}
	w.lastAck = now
	w.h.Acks = append(w.h.Acks, Ack{Record: Record{r.Partition, r.Offset, string(r.Value)},
		Producer: producer, At: now})
	w.mu.Unlock()
	w.acked.Add(1)
}

// stopProducers ends the produce loops and gives the records in flight until
// ctx ends to be acknowledged; closing the clients fails the rest.
func (w *Workload) stopProducers(ctx context.Context) {
	for _, pr := range w.prods {
		pr.stop()
	}
	var wg sync.WaitGroup
	for _, pr := range w.prods {
		wg.Go(func() {
			if err := pr.cl.Flush(ctx); err != nil {
				w.note(fmt.Sprintf("producer %d flush", pr.id), err)
			}
			pr.cl.Close() // unblocks a Produce waiting for buffer space
			<-pr.done
			pr.pending.Wait()
		})
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, pr := range w.prods {
		w.h.Produced = append(w.h.Produced, pr.sent)
	}
	w.h.Stop = time.Now()
}
