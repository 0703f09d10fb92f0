package faultcheck

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Stop ends the run and returns its history. It stops the producers, giving
// records in flight until ctx ends; waits up to CatchUp for the group to
// commit everything; stops the consumers and the monitor; and reads every
// partition from its start to its high watermark (within DrainTimeout).
// The cluster should be healthy by then: closing a consumer leaves the
// group, which waits for a reachable coordinator. Stop may be called more
// than once; later calls return the same history.
func (w *Workload) Stop(ctx context.Context) *History {
	w.stopOnce.Do(func() { w.final = w.stop(ctx) })
	return w.final
}

func (w *Workload) stop(ctx context.Context) *History {
	defer w.admin.Close()
	defer w.cancel()
	w.stopProducers(ctx)
	adm := kadm.NewClient(w.admin)
	caughtUp := w.awaitCatchUp(ctx, adm)
	w.stopConsumers()
	w.stopMonitor()
	<-w.monitorDone

	// Ends are listed only now: a produce request in flight when its
	// client closed may still have landed and been consumed and committed.
	ctx, cancel := context.WithTimeout(ctx, w.cfg.DrainTimeout)
	defer cancel()
	ends, err := w.listEnds(ctx, adm)
	if err == nil {
		err = w.drain(ctx, ends)
	}
	w.mu.Lock() // every other goroutine has ended, but drain appended under mu
	defer w.mu.Unlock()
	h := w.h
	h.DrainEnd, h.GroupCaughtUp = ends, caughtUp
	if err != nil {
		h.DrainErr = err.Error()
	}
	return &h
}

// awaitCatchUp waits until the monitor has seen the group commit up to the
// end of every partition, so that the group's consumption covers the run.
func (w *Workload) awaitCatchUp(ctx context.Context, adm *kadm.Client) bool {
	if w.cfg.Consumers == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.CatchUp)
	defer cancel()
	ends, err := w.listEnds(ctx, adm)
	if err != nil {
		w.note("catch-up", err)
		return false
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !w.committedUpTo(ends) {
		select {
		case <-ctx.Done():
			w.note("catch-up", fmt.Errorf("group did not commit up to %v: %w", ends, ctx.Err()))
			return false
		case <-tick.C:
		}
	}
	return true
}

func (w *Workload) committedUpTo(ends []int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, end := range ends {
		if end > 0 && w.committed[int32(p)] < end {
			return false
		}
	}
	return true
}

func (w *Workload) stopConsumers() {
	w.stopCons()
	var wg sync.WaitGroup
	for _, c := range w.cons {
		wg.Go(func() { <-c.done })
	}
	wg.Wait()
}

// listEnds returns every partition's high watermark, retrying until all
// partitions answer or ctx ends.
func (w *Workload) listEnds(ctx context.Context, adm *kadm.Client) ([]int64, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ends, err := w.tryListEnds(ctx, adm)
		if err == nil {
			return ends, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list end offsets: %w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (w *Workload) tryListEnds(ctx context.Context, adm *kadm.Client) ([]int64, error) {
	listed, err := adm.ListEndOffsets(ctx, w.cfg.Topic)
	if err != nil {
		return nil, err
	}
	ends := make([]int64, w.cfg.Partitions)
	for p := range w.cfg.Partitions {
		o, ok := listed.Lookup(w.cfg.Topic, p)
		switch {
		case !ok:
			return nil, fmt.Errorf("no end offset for partition %d", p)
		case o.Err != nil:
			return nil, fmt.Errorf("partition %d: %w", p, o.Err)
		}
		ends[p] = o.Offset
	}
	return ends, nil
}

// drain reads every partition from its start up to ends with a fresh,
// groupless client, so the read-back does not depend on the group.
func (w *Workload) drain(ctx context.Context, ends []int64) error {
	from := map[int32]kgo.Offset{}
	for p := range w.cfg.Partitions {
		from[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(w.cfg.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.cfg.Topic: from}),
	)...)
	if err != nil {
		return fmt.Errorf("drain client: %w", err)
	}
	defer cl.Close()
	next := make([]int64, len(ends)) // the offset after the last one read
	for !reached(next, ends) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("drain read up to %v of %v: %w", next, ends, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { w.note("drain", err) })
		w.mu.Lock()
		for _, r := range fs.Records() {
			w.h.Drain = append(w.h.Drain, Record{r.Partition, r.Offset, string(r.Value)})
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		}
		w.mu.Unlock()
	}
	return nil
}

func reached(next, ends []int64) bool {
	for p := range ends {
		if next[p] < ends[p] {
			return false
		}
	}
	return true
}
