package faultcheck

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds on one request, so a request to a dead or cut-off broker does not
// stall a consumer or the monitor for the client's full retry budget.
const (
	commitTimeout  = 5 * time.Second
	monitorTimeout = 2 * time.Second
)

type consumer struct {
	id      int
	name    string
	session atomic.Int64 // bumped by every rebalance callback and restart
	done    chan struct{}
}

// runConsumer runs client sessions until ctx ends; with ConsumerRestart each
// session ends after that long (the first ones staggered) and a new client
// rejoins the group.
func (w *Workload) runConsumer(ctx context.Context, c *consumer) {
	defer close(c.done)
	life := w.cfg.ConsumerRestart * time.Duration(c.id+1) / time.Duration(w.cfg.Consumers)
	for ctx.Err() == nil {
		if err := w.consumeSession(ctx, c, life); err != nil {
			w.note(c.name, err)
			return
		}
		life = w.cfg.ConsumerRestart
	}
}

// consumeSession consumes with one client for life (forever if zero). Each
// poll's records are committed before the group may rebalance, so a commit
// only ever covers partitions the consumer still owns.
func (w *Workload) consumeSession(ctx context.Context, c *consumer, life time.Duration) error {
	if life > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, life)
		defer cancel()
	}
	bump := func(context.Context, *kgo.Client, map[string][]int32) { c.session.Add(1) }
	cl, err := kgo.NewClient(w.cfg.clientOpts(
		kgo.ConsumerGroup(w.cfg.Group),
		kgo.ConsumeTopics(w.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(bump),
		kgo.OnPartitionsRevoked(bump),
		kgo.OnPartitionsLost(bump),
		// A member that left while its coordinator failed over is waited
		// for until its session expires (as in Kafka), stalling the
		// group; the broker's minimum session keeps that stall short.
		kgo.SessionTimeout(6*time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	c.session.Add(1)
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() == nil { // else the errors say only that the session is over
			fs.EachError(func(_ string, _ int32, err error) { w.note(c.name, err) })
		}
		if recs := fs.Records(); len(recs) > 0 {
			w.onConsumed(c, recs)
			w.commit(cl, c, recs)
		}
		// Every poll must be released, or leaving the group in Close
		// waits forever for it.
		cl.AllowRebalance()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (w *Workload) onConsumed(c *consumer, recs []*kgo.Record) {
	session := int(c.session.Load())
	w.mu.Lock()
	for _, r := range recs {
		w.h.Consumed = append(w.h.Consumed, Consumed{Record: Record{r.Partition, r.Offset, string(r.Value)},
			Consumer: c.id, Session: session})
	}
	w.mu.Unlock()
	w.consumed.Add(int64(len(recs)))
}

// commit commits the offsets after recs and records each partition the
// coordinator accepted.
func (w *Workload) commit(cl *kgo.Client, c *consumer, recs []*kgo.Record) {
	next := map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		if r.Offset+1 > next[r.Partition].Offset {
			next[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, commitTimeout)
	defer cancel()
	sent := time.Now()
	offsets := map[string]map[int32]kgo.EpochOffset{w.cfg.Topic: next}
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			w.note(c.name+" commit", err)
			return
		}
		acked := time.Now()
		for _, t := range resp.Topics {
			if t.Topic != w.cfg.Topic {
				continue
			}
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					w.note(c.name+" commit", err)
					continue
				}
				w.onCommitted(Commit{Partition: p.Partition, Offset: next[p.Partition].Offset,
					Source: c.name, Sent: sent, Acked: acked})
			}
		}
	})
}

func (w *Workload) onCommitted(cm Commit) {
	w.mu.Lock()
	w.h.Commits = append(w.h.Commits, cm)
	w.mu.Unlock()
	w.commitsAcked.Add(1)
}

// runMonitor reads the group's committed offsets until ctx ends. One client
// reading in sequence gives Check a real-time order to hold commits to.
func (w *Workload) runMonitor(ctx context.Context) {
	defer close(w.monitorDone)
	if w.cfg.Consumers == 0 {
		return
	}
	adm := kadm.NewClient(w.admin)
	tick := time.NewTicker(w.cfg.MonitorInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.readCommitted(ctx, adm)
		}
	}
}

func (w *Workload) readCommitted(ctx context.Context, adm *kadm.Client) {
	ctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	defer cancel()
	sent := time.Now()
	offs, err := adm.FetchOffsets(ctx, w.cfg.Group)
	acked := time.Now()
	if err != nil {
		w.note(monitorSource, err)
		return
	}
	offs.Each(func(o kadm.OffsetResponse) {
		switch {
		case o.Topic != w.cfg.Topic:
		case o.Err != nil:
			w.note(monitorSource, o.Err)
		case o.At >= 0: // -1: nothing committed yet
			w.mu.Lock()
			w.h.Commits = append(w.h.Commits, Commit{Partition: o.Partition, Offset: o.At,
				Source: monitorSource, Sent: sent, Acked: acked})
			w.committed[o.Partition] = o.At
			w.mu.Unlock()
		}
	})
}
