package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/batch"
)

// handleProduce validates and appends every partition's batch on the read
// goroutine, in request order, then returns a reply that waits for the
// fsyncs. Concurrent produces thereby share fsyncs (group commit) while
// each client still sees its records acknowledged only once durable.
func handleProduce(c *conn, req *kmsg.ProduceRequest) response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.Version < 3 {
		// Advertised for librdkafka's sake (KAFKA-18659), never accepted:
		// v0-2 carry the old message formats.
		return produceError(req, resp, kerr.UnsupportedVersion)
	}
	type pending struct {
		part   *partition
		out    *kmsg.ProduceResponseTopicPartition
		commit func(context.Context) (int64, error)
	}
	var waits []pending
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		// Sized up front: out points into this array while it fills.
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		t, terr := c.b.topicForProduce(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			st.Partitions = append(st.Partitions, sp)
			out := &st.Partitions[len(st.Partitions)-1]
			p, res := c.b.produceTo(c.ctx, t, terr, rp, req)
			if res.err != nil {
				out.ErrorCode = errCode(res.err)
				out.ErrorMessage = errMessage(res.err)
				continue
			}
			out.LogAppendTime = res.appendTime
			waits = append(waits, pending{p, out, res.commit})
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		// No reply, but the records must still become durable and visible.
		for _, w := range waits {
			go w.commit(c.b.ctx)
		}
		if failed(resp) {
			return hangUp{}
		}
		return ready{nil}
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	return later(func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, max(timeout, time.Second))
		defer cancel()
		// Partitions are separate files (and Raft groups): wait for them in
		// parallel so a request's latency is one fsync or commit, not one
		// per partition.
		var wg sync.WaitGroup
		for i, w := range waits {
			commit := func() {
				base, err := w.commit(ctx)
				w.out.BaseOffset = base
				w.out.LogStartOffset = w.part.plog().StartOffset()
				if err != nil {
					w.out.ErrorCode, w.out.BaseOffset = errCode(err), -1
				}
			}
			if i == len(waits)-1 { // the last one on this goroutine
				commit()
				break
			}
			wg.Go(commit)
		}
		wg.Wait()
		return resp
	})
}

// topicForProduce looks a topic up. As in Kafka, only Metadata creates
// topics; a produce to a missing one tells the client to refresh. A topic
// another broker just created is looked for again once caught up
// (knownTopic), so that a broker without a replica of it answers
// NOT_LEADER_OR_FOLLOWER rather than calling it unknown.
func (b *Broker) topicForProduce(name string) (*topic, error) {
	if t := b.knownTopic(name); t != nil {
		return t, nil
	}
	if err := validateTopicName(name); err != nil {
		return nil, errorf(kerr.InvalidTopicException, "%v", err)
	}
	return nil, kerr.UnknownTopicOrPartition
}

// produceTo checks and appends one partition's records.
func (b *Broker) produceTo(ctx context.Context, t *topic, terr error, rp kmsg.ProduceRequestTopicPartition, req *kmsg.ProduceRequest) (*partition, appendResult) {
	if terr != nil {
		return nil, appendResult{err: terr}
	}
	if rp.Partition < 0 || int(rp.Partition) >= len(t.parts) {
		return nil, appendResult{err: kerr.UnknownTopicOrPartition}
	}
	p := t.parts[rp.Partition]
	if p == nil { // a partition this cluster node holds no replica of
		return nil, appendResult{err: kerr.NotLeaderForPartition}
	}
	raw := rp.Records
	if max := t.settings.maxMessageBytes; int64(len(raw)) > max {
		return p, appendResult{err: errorf(kerr.MessageTooLarge, "record batch of %d bytes exceeds max.message.bytes %d", len(raw), max)}
	}
	h, err := batch.Validate(raw)
	if err != nil {
		return p, appendResult{err: validationError(err)}
	}
	if err := h.CheckProduce(); err != nil {
		return p, appendResult{err: errorf(kerr.InvalidRecord, "%v", err)}
	}
	if t.internal {
		return p, appendResult{err: errorf(kerr.InvalidTopicException, "topic %s is internal", t.name)}
	}
	if err := b.checkTxnProduce(ctx, req.TransactionID, p, h); err != nil {
		return p, appendResult{err: err}
	}
	if req.Acks == -1 {
		if err := b.enoughInSync(t, p); err != nil {
			return p, appendResult{err: err}
		}
	}
	raw, h, err = b.applyTopicFormat(t, raw, h)
	if err != nil {
		return p, appendResult{err: errorf(kerr.InvalidRecord, "%v", err)}
	}
	res := p.append(raw, h)
	res.appendTime = -1
	if h.LogAppendTime() {
		res.appendTime = h.MaxTimestamp
	}
	return p, res
}

// enoughInSync applies min.insync.replicas to an acks=all produce on the
// partition's leader: with fewer replicas in sync it is refused with
// NOT_ENOUGH_REPLICAS (retriable) rather than acknowledged by too few.
func (b *Broker) enoughInSync(t *topic, p *partition) error {
	if !p.isLeader() {
		return nil // the append answers NOT_LEADER_OR_FOLLOWER
	}
	if have, need := b.meta.inSyncReplicas(t.id, p.index), t.settings.minInsync; have < need {
		return errorf(kerr.NotEnoughReplicas, "%s-%d has %d in-sync replicas, below min.insync.replicas %d", t.name, p.index, have, need)
	}
	return nil
}

// applyTopicFormat enforces a topic's compression.type (recompressing a
// batch whose codec differs, keeping its producer identity and offsets)
// and message.timestamp.type=LogAppendTime (stamping the broker's clock).
func (b *Broker) applyTopicFormat(t *topic, raw []byte, h batch.Header) ([]byte, batch.Header, error) {
	ts := &t.settings
	if ts.recompress && ts.codec != h.Codec() {
		recs, err := batch.Records(raw)
		if err != nil {
			return nil, h, err
		}
		raw, err = batch.Build(batch.BuildOptions{
			Codec: ts.codec, Attributes: h.Attributes, BaseTimestamp: h.BaseTimestamp,
			MaxTimestamp: h.MaxTimestamp, LastOffsetDelta: h.LastOffsetDelta,
			ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
		}, recs)
		if err != nil {
			return nil, h, err
		}
		if h, err = batch.ParseHeader(raw); err != nil {
			return nil, h, err
		}
	}
	if ts.logAppendTime {
		now := time.Now().UnixMilli()
		batch.SetLogAppendTime(raw, now)
		h.Attributes |= batch.AttrLogAppendTime
		h.MaxTimestamp = now
	}
	return raw, h, nil
}

// validationError maps a batch decoding failure to Kafka's code.
func validationError(err error) error {
	switch {
	case errors.Is(err, batch.ErrUnsupportedMagic):
		return errorf(kerr.UnsupportedForMessageFormat, "%v", err)
	case errors.Is(err, batch.ErrCorrupt), errors.Is(err, batch.ErrTruncated):
		return errorf(kerr.CorruptMessage, "%v", err)
	default:
		return errorf(kerr.InvalidRecord, "%v", err)
	}
}

// produceError answers every partition of req with one error (or, for
// acks=0, hangs up).
func produceError(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, err *kerr.Error) response {
	if req.Acks == 0 {
		return hangUp{}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = err.Code
			sp.BaseOffset = -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return ready{resp}
}

// failed reports whether any partition of a produce failed.
func failed(resp *kmsg.ProduceResponse) bool {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}
