package broker

import (
	"context"
	"net"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/group"
)

// startGroups installs the group coordinator. It serves
// no group until the node leads that group's __consumer_offsets partition
// and has loaded it (cluster.tend, or at open for a partition without
// Raft); the topic itself is created on the first FindCoordinator, when
// enough brokers have joined for its replication factor.
func (b *Broker) startGroups() {
	gc := group.DefaultConfig()
	gc.Partitions = b.cfg.OffsetsPartitions
	gc.InitialRebalanceDelay = b.cfg.GroupInitialRebalanceDelay
	gc.Logger = b.log
	b.groups = group.New(gc, offsetsLog{b}, brokerTopics{b})
}

// replayOffsets feeds every record of one __consumer_offsets partition to
// the coordinator: records of transactional batches (TxnOffsetCommit) as
// pending for their producer, and end-transaction markers to settle them.
func (b *Broker) replayOffsets(p *partition) error {
	return b.replayInternal(p, func(h batch.Header, key, value []byte) error {
		// One bad record must not keep the broker from starting:
		// skip it, say so, and serve every other group.
		load := b.groups.Load
		if h.Transactional() && h.ProducerID >= 0 {
			load = func(key, value []byte) error { return b.groups.LoadTxn(h.ProducerID, key, value) }
		}
		if err := load(key, value); err != nil {
			b.log.Warn("skipping unreadable record in "+offsetsTopic, "partition", p.index, "err", err)
		}
		return nil
	}, func(h batch.Header, bb []byte) error {
		typ, err := batch.ControlType(bb)
		switch {
		case err != nil:
			b.log.Warn("skipping unreadable control batch in "+offsetsTopic, "partition", p.index, "offset", h.BaseOffset, "err", err)
		case typ == batch.ControlCommit || typ == batch.ControlAbort:
			b.groups.LoadMarker(p.index, h.ProducerID, typ == batch.ControlCommit)
		}
		return nil
	})
}

// groupCtx carries the client's id and host to the coordinator, which
// shows them in DescribeGroups and builds member ids from them.
func (c *conn) groupCtx() context.Context {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		host = c.nc.RemoteAddr().String()
	}
	return group.WithClientInfo(c.ctx, c.clientID, "/"+host)
}

// eachRecord calls fn for every record of the data batches in raw, with
// its batch's header, and control (unless nil) for every control batch,
// and returns the offset after the last batch.
func eachRecord(raw []byte, fn func(h batch.Header, key, value []byte) error, control func(h batch.Header, b []byte) error) (int64, error) {
	batches, err := batch.Split(raw)
	if err != nil {
		return 0, err
	}
	var next int64
	for _, bb := range batches {
		h, err := batch.ParseHeader(bb)
		if err != nil {
			return 0, err
		}
		next = h.LastOffset() + 1
		if h.Control() {
			if control != nil {
				if err := control(h, bb); err != nil {
					return 0, err
				}
			}
			continue
		}
		recs, err := batch.Records(bb)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			if err := fn(h, r.Key, r.Value); err != nil {
				return 0, err
			}
		}
	}
	return next, nil
}

// offsetsLog lets the coordinator write to __consumer_offsets.
type offsetsLog struct{ b *Broker }

func (o offsetsLog) Append(ctx context.Context, partition int32, recs []group.Record) error {
	return o.append(ctx, partition, batch.DefaultBuildOptions(), recs)
}

// AppendTxn writes a TxnOffsetCommit's records as Kafka does: one
// transactional batch of the producer, without sequence (NO_SEQUENCE), so
// the partition's producer table checks only its epoch and refuses a fenced
// one with INVALID_PRODUCER_EPOCH.
func (o offsetsLog) AppendTxn(ctx context.Context, partition int32, producerID int64, epoch int16, recs []group.Record) error {
	opts := batch.DefaultBuildOptions()
	opts.Attributes = batch.AttrTransactional
	opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = producerID, epoch, -1
	return o.append(ctx, partition, opts, recs)
}

// append writes recs as one batch with the header opts and waits until it
// is committed.
func (o offsetsLog) append(ctx context.Context, partition int32, opts batch.BuildOptions, recs []group.Record) error {
	brecs := make([]batch.Record, len(recs))
	for i, r := range recs {
		brecs[i] = batch.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
	}
	return o.b.appendInternal(ctx, offsetsTopic, partition, opts, brecs)
}

// brokerTopics answers the coordinator's partition-count lookups.
type brokerTopics struct{ b *Broker }

func (t brokerTopics) PartitionCount(topic string) (int32, bool) {
	tp := t.b.lookupTopic(topic)
	if tp == nil {
		return 0, false
	}
	return int32(len(tp.parts)), true
}
