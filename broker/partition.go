package broker

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
	"github.com/weir-io/weir/internal/producer"
)

// partition is one partition's log plus what the broker keeps beside it:
// the idempotent producers' sequence windows and the long polls waiting for
// its high watermark to move.
type partition struct {
	topic  string
	index  int32
	log    *partlog.Log
	logger *slog.Logger

	// mu orders appends, so sequence checks and offset assignment agree.
	mu        sync.Mutex
	producers *producer.Table

	watchMu  sync.Mutex
	watchers map[chan struct{}]struct{}
	// deleted is set when the partition's topic is deleted, so a long
	// poll that registers its watch after the final wake still returns.
	deleted atomic.Bool
}

func newPartition(topic string, index int32, l *partlog.Log, logger *slog.Logger) *partition {
	return &partition{
		topic: topic, index: index, log: l, logger: logger,
		producers: producer.NewTable(),
		watchers:  make(map[chan struct{}]struct{}),
	}
}

// highWatermark is the durable end of the log: consumers never see past it.
func (p *partition) highWatermark() int64 { return p.log.DurableOffset() }

// appendResult is what a produce learns from one partition append.
type appendResult struct {
	base      int64 // offset of the batch's first record
	end       int64 // offset after the batch; sync up to here before acking
	err       error
	duplicate bool
	// appendTime is the broker's timestamp for LogAppendTime topics, -1
	// otherwise.
	appendTime int64
}

// append validates one produced batch against the idempotence window and
// writes it. It does not wait for durability.
func (p *partition) append(raw []byte, h batch.Header) appendResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	idempotent := h.ProducerID >= 0
	if idempotent {
		base, dup, err := p.producers.Check(h)
		if err != nil {
			return appendResult{err: err}
		}
		if dup {
			return appendResult{base: base, end: base + int64(h.LastOffsetDelta) + 1, duplicate: true}
		}
	}
	base, err := p.log.Append(raw)
	if err != nil {
		return appendResult{err: storageError(err)}
	}
	if idempotent {
		p.producers.Record(h, base)
	}
	return appendResult{base: base, end: base + int64(h.LastOffsetDelta) + 1}
}

// sync makes everything below end durable and wakes long polls.
func (p *partition) sync(end int64) error {
	if err := p.log.Sync(end); err != nil {
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
	return p.log.Batches(p.log.StartOffset(), func(h batch.Header) error {
		if h.ProducerID < 0 || h.Control() {
			return nil
		}
		p.producers.Record(h, h.BaseOffset)
		return nil
	})
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
