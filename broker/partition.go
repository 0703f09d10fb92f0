package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
	"github.com/weir-io/weir/internal/producer"
	"github.com/weir-io/weir/internal/replica"
)

// partition is one partition's log plus what the broker keeps beside it:
// the idempotent producers' sequence windows and the long polls waiting for
// its high watermark to move.
type partition struct {
	topic  string
	index  int32
	log    *partlog.Log // single node only; use plog
	logger *slog.Logger

	// mu orders appends, so sequence checks and offset assignment agree.
	mu        sync.Mutex
	producers *producer.Table

	watchMu  sync.Mutex
	watchers map[chan struct{}]struct{}
	// deleted is set when the partition's topic is deleted, so a long
	// poll that registers its watch after the final wake still returns.
	deleted atomic.Bool

	// repl replicates the partition in a cluster (its Raft group owns log);
	// nil on a single node, where appends go straight to log.
	repl *replica.Group
	// loaded is set on a __consumer_offsets partition while its groups are
	// loaded into the coordinator (this replica leads it).
	loaded atomic.Bool
	// stopWatch ends the cluster's leadership watcher of this replica.
	stopWatch chan struct{}
	// followers is what this replica knows of the others while it leads.
	followers followerSet
}

func newPartition(topic string, index int32, l *partlog.Log, logger *slog.Logger) *partition {
	return &partition{
		topic: topic, index: index, log: l, logger: logger,
		producers: producer.NewTable(),
		watchers:  make(map[chan struct{}]struct{}),
	}
}

// plog is the partition's log. In a cluster the Raft group owns it and may
// swap it (a follower installing a snapshot), so it is fetched per use.
func (p *partition) plog() *partlog.Log {
	if p.repl != nil {
		return p.repl.Log()
	}
	return p.log
}

// highWatermark is the committed end of the log: consumers never see past
// it. On a single node that is the durable (fsynced) end; in a cluster it
// is what the partition's Raft group has committed and applied here.
func (p *partition) highWatermark() int64 {
	if p.repl != nil {
		return p.repl.HighWatermark()
	}
	return p.plog().DurableOffset()
}

// leaderEpoch is the partition's current leader epoch: the Raft term in a
// cluster, a constant on a single node.
func (p *partition) leaderEpoch() int32 {
	if p.repl != nil {
		return p.repl.LeaderEpoch()
	}
	return singleNodeEpoch
}

// singleNodeEpoch is the single node's constant partition leader epoch.
const singleNodeEpoch = 0

// serve returns nil when this replica may answer reads: always on a single
// node; in a cluster only on the leader, once it has committed an entry of
// its own term (so its high watermark covers every earlier leader's
// acknowledgements).
func (p *partition) serve(ctx context.Context) error {
	if p.repl == nil {
		return nil
	}
	if !p.repl.IsLeader() {
		return kerr.NotLeaderForPartition
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := p.repl.Ready(ctx); err != nil {
		return kerr.NotLeaderForPartition
	}
	return nil
}

// readyTimeout bounds how long a read waits for a new leader's first
// commit before telling the client to look elsewhere.
const readyTimeout = 2 * time.Second

// appendResult is what a produce learns from one partition write.
type appendResult struct {
	base int64 // offset of the batch's first record; -1 until committed in a cluster
	err  error
	// appendTime is the broker's timestamp for LogAppendTime topics, -1
	// otherwise.
	appendTime int64
	// commit waits until the batch is durable (single node) or committed
	// by the partition's Raft group (cluster) and returns its base offset.
	commit func(ctx context.Context) (int64, error)
}

// append validates one produced batch and writes it without waiting for
// durability or replication; appends made one after another from one
// goroutine keep their order in the log.
func (p *partition) append(raw []byte, h batch.Header) appendResult {
	if p.repl != nil {
		return p.propose(raw)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	idempotent := h.ProducerID >= 0
	if idempotent {
		base, dup, err := p.producers.Check(h)
		if err != nil {
			return appendResult{err: err}
		}
		if dup {
			return p.local(base, base+int64(h.LastOffsetDelta)+1)
		}
	}
	base, err := p.plog().Append(raw)
	if err != nil {
		return appendResult{err: storageError(err)}
	}
	if idempotent {
		p.producers.Record(h, base)
	}
	return p.local(base, base+int64(h.LastOffsetDelta)+1)
}

// local is a single-node append whose commit is an fsync up to end.
func (p *partition) local(base, end int64) appendResult {
	return appendResult{base: base, commit: func(context.Context) (int64, error) {
		return base, p.sync(end)
	}}
}

// propose hands the batch to the partition's Raft group. The idempotence
// check and offset assignment happen when the entry is applied, on every
// replica alike.
func (p *partition) propose(raw []byte) appendResult {
	if !p.repl.IsLeader() {
		return appendResult{err: kerr.NotLeaderForPartition}
	}
	prop, err := p.repl.Submit(context.Background(), raw)
	if err != nil {
		return appendResult{err: replicaError(err)}
	}
	return appendResult{base: -1, commit: func(ctx context.Context) (int64, error) {
		base, err := prop.Wait(ctx)
		return base, replicaError(err)
	}}
}

// replicaError maps a replication failure to the Kafka code a client acts
// on: losing leadership (even with an unknown outcome) makes it refresh
// metadata and retry at the new leader, which is safe for idempotent
// producers; sequence and epoch refusals pass through.
func replicaError(err error) error {
	var ke *kerr.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replica.ErrNotLeader):
		return kerr.NotLeaderForPartition
	case errors.As(err, &ke):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut
	}
	return kerr.KafkaStorageError
}

// sync makes everything below end durable and wakes long polls.
func (p *partition) sync(end int64) error {
	if err := p.plog().Sync(end); err != nil {
		p.logger.Error("fsync failed", "topic", p.topic, "partition", p.index, "err", err)
		return storageError(err)
	}
	p.wake()
	return nil
}

// storageError maps a log error to the Kafka code a client can act on.
func storageError(err error) error {
	if errors.Is(err, partlog.ErrClosed) {
		return kerr.NotLeaderForPartition // deleted under us: the client refreshes metadata
	}
	return kerr.KafkaStorageError
}

// watch registers ch to be signalled (without blocking) the next time the
// high watermark moves or the partition goes away.
func (p *partition) watch(ch chan struct{}) {
	p.watchMu.Lock()
	p.watchers[ch] = struct{}{}
	p.watchMu.Unlock()
}

// unwatch forgets ch, so an idle partition does not collect the channels
// of long polls that ended for another reason.
func (p *partition) unwatch(ch chan struct{}) {
	p.watchMu.Lock()
	delete(p.watchers, ch)
	p.watchMu.Unlock()
}

func (p *partition) wake() {
	p.watchMu.Lock()
	ws := p.watchers
	p.watchers = make(map[chan struct{}]struct{})
	p.watchMu.Unlock()
	for ch := range ws {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// loadProducers rebuilds the sequence windows from the batches on disk, so
// a retry after a restart is still recognised as a duplicate.
func (p *partition) loadProducers() error {
	return p.plog().Batches(p.plog().StartOffset(), func(h batch.Header) error {
		if h.ProducerID < 0 || h.Control() {
			return nil
		}
		p.producers.Record(h, h.BaseOffset)
		return nil
	})
}

// clean applies retention and compaction. Every replica cleans its own
// copy, as Kafka's replicas do; the Raft group makes sure a restart never
// replays entries against data cleaned away.
func (p *partition) clean(now time.Time, producerExpiration time.Duration) {
	if p.repl != nil {
		if err := p.repl.Maintain(now); err != nil {
			p.logger.Warn("retention or compaction failed", "topic", p.topic, "partition", p.index, "err", err)
		}
		return
	}
	if _, err := p.plog().EnforceRetention(now); err != nil {
		p.logger.Warn("retention failed", "topic", p.topic, "partition", p.index, "err", err)
	}
	if err := p.plog().Compact(now); err != nil {
		p.logger.Warn("compaction failed", "topic", p.topic, "partition", p.index, "err", err)
	}
	p.expireProducers(now, producerExpiration)
}

// close closes the log, or in a cluster the Raft group that owns it.
func (p *partition) close() error {
	if p.repl != nil {
		return p.repl.Close()
	}
	return p.plog().Close()
}

// expireProducers forgets producers whose last batch is older than
// expiration (Kafka's producer.id.expiration.ms), so state does not grow
// with every producer that ever wrote. A forgotten producer that returns
// is accepted at any sequence, as Kafka does.
func (p *partition) expireProducers(now time.Time, expiration time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.producers.Expire(now.Add(-expiration).UnixMilli())
}
