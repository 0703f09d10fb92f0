package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/partlog"
)

// handleFetch serves a fetch, long-polling until MinBytes are available,
// MaxWait passes, or the connection closes. Fetch sessions are not kept:
// every answer carries SessionID 0, which tells clients to send full
// fetches.
func handleFetch(c *conn, req *kmsg.FetchRequest) response {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	return later(func() kmsg.Response {
		wake := make(chan struct{}, 1)
		for {
			resp, size, parts, failed := c.b.fetchOnce(c.ctx, req)
			if failed || size >= int(req.MinBytes) || !time.Now().Before(deadline) {
				return resp
			}
			for _, p := range parts {
				p.watch(wake)
			}
			// Data may have landed between the read and the watch.
			if moved(parts) {
				unwatchAll(parts, wake)
				continue
			}
			timer := time.NewTimer(time.Until(deadline))
			select {
			case <-wake:
			case <-timer.C:
			case <-c.ctx.Done():
			}
			timer.Stop()
			unwatchAll(parts, wake)
			if c.ctx.Err() != nil {
				return resp
			}
		}
	})
}

// watched is a partition a fetch read, with the high watermark it saw.
type watched struct {
	*partition
	hw int64
}

func unwatchAll(parts []watched, ch chan struct{}) {
	for _, p := range parts {
		p.unwatch(ch)
	}
}

func moved(parts []watched) bool {
	for _, p := range parts {
		if p.deleted.Load() || p.highWatermark() != p.hw {
			return true
		}
	}
	return false
}

// fetchOnce reads what is available now. It returns the response, the
// bytes of records in it, the partitions it read, and whether any
// partition failed (a failure answers at once, without waiting).
func (b *Broker) fetchOnce(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, []watched, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	budget := int(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 1 << 30
	}
	var (
		size   int
		parts  []watched
		failed bool
	)
	for _, rt := range req.Topics {
		t := b.fetchTopic(req.Version, rt)
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// Kafka sends empty records, never null: sarama (Fetch v8),
			// librdkafka and kafka-python fail to parse a null.
			sp.RecordBatches = []byte{}
			p, err := fetchPartition(ctx, t, req.Version, rp)
			if err == nil {
				var n int
				n, err = readPartition(p, rp, &sp, min(budget, int(rp.PartitionMaxBytes)), size == 0, req.IsolationLevel == readCommitted)
				parts = append(parts, watched{p, sp.HighWatermark})
				size += n
				budget -= n
			}
			if err != nil {
				sp.ErrorCode = errCode(err)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				failed = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, size, parts, failed
}

func (b *Broker) fetchTopic(version int16, rt kmsg.FetchRequestTopic) *topic {
	if version >= 13 {
		return b.lookupTopicID(rt.TopicID)
	}
	return b.lookupTopic(rt.Topic)
}

func fetchPartition(ctx context.Context, t *topic, version int16, rp kmsg.FetchRequestTopicPartition) (*partition, error) {
	switch {
	case t == nil && version >= 13:
		return nil, kerr.UnknownTopicID
	case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts):
		return nil, kerr.UnknownTopicOrPartition
	}
	p := t.parts[rp.Partition]
	if p == nil { // a partition this cluster node holds no replica of
		return nil, kerr.NotLeaderForPartition
	}
	if err := p.serve(ctx); err != nil {
		return nil, err
	}
	return p, checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
}

// checkLeaderEpoch compares the leader epoch a client believes current
// (-1: unknown) with this leader's, as KIP-320 asks.
func checkLeaderEpoch(p *partition, current int32) error {
	switch epoch := p.leaderEpoch(); {
	case current < 0 || current == epoch:
		return nil
	case current > epoch:
		return kerr.UnknownLeaderEpoch
	default:
		return kerr.FencedLeaderEpoch
	}
}

// readCommitted is the isolation level of read_committed Fetch and
// ListOffsets requests.
const readCommitted = 1

// readPartition fills sp with up to max bytes from p at the requested
// offset. The first partition with data in a response may exceed max by
// one batch (KIP-74), so a large batch never wedges a consumer. A
// read_committed fetch stops at the last stable offset and lists the
// aborted transactions overlapping what it returns, which the client
// drops.
func readPartition(p *partition, rp kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, max int, first, committed bool) (int, error) {
	hw := p.highWatermark()
	lso := p.lastStable(hw)
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, lso, p.plog().StartOffset()
	if max <= 0 && !first {
		return 0, nil
	}
	if max <= 0 {
		max = 1
	}
	limit := hw
	if committed {
		limit = lso
	}
	if rp.FetchOffset > limit && rp.FetchOffset <= hw {
		return 0, nil // between the LSO and the high watermark: wait
	}
	raw, err := p.plog().Read(rp.FetchOffset, max, limit)
	if errors.Is(err, partlog.ErrOffsetOutOfRange) {
		return 0, kerr.OffsetOutOfRange
	}
	if err != nil {
		return 0, storageError(err)
	}
	if len(raw) == 0 || !first && len(raw) > max {
		return 0, nil
	}
	sp.RecordBatches = raw
	if committed {
		sp.AbortedTransactions = abortedList(p.plog().AbortedTxns(rp.FetchOffset, limit))
	}
	return len(raw), nil
}

func abortedList(as []partlog.AbortedTxn) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	out := make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, len(as))
	for i, a := range as {
		out[i] = kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset}
	}
	return out
}
