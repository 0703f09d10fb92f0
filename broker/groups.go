package broker

import (
	"context"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

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
// the coordinator.
func (b *Broker) replayOffsets(p *partition) error {
	for off, end := p.plog().StartOffset(), p.highWatermark(); off < end; {
		raw, err := p.plog().Read(off, 1<<20, end)
		if err != nil {
			return err
		}
		if len(raw) == 0 {
			return nil
		}
		next, err := eachRecord(raw, func(key, value []byte) error {
			// One bad record must not keep the broker from starting:
			// skip it, say so, and serve every other group.
			if err := b.groups.Load(key, value); err != nil {
				b.log.Warn("skipping unreadable record in "+offsetsTopic, "partition", p.index, "err", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		off = next
	}
	return nil
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

// eachRecord calls fn for every record of the batches in raw and returns
// the offset after the last batch.
func eachRecord(raw []byte, fn func(key, value []byte) error) (int64, error) {
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
			continue
		}
		recs, err := batch.Records(bb)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			if err := fn(r.Key, r.Value); err != nil {
				return 0, err
			}
		}
	}
	return next, nil
}

// offsetsLog lets the coordinator write to __consumer_offsets.
type offsetsLog struct{ b *Broker }

func (o offsetsLog) Append(ctx context.Context, partition int32, recs []group.Record) error {
	p := o.b.lookupPartition(offsetsTopic, partition)
	if p == nil {
		return kerr.NotCoordinator
	}
	now := time.Now().UnixMilli()
	brecs := make([]batch.Record, len(recs))
	for i, r := range recs {
		brecs[i] = batch.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
	}
	opts := batch.DefaultBuildOptions()
	opts.BaseTimestamp, opts.MaxTimestamp = now, now
	raw, err := batch.Build(opts, brecs)
	if err != nil {
		return err
	}
	h, err := batch.ParseHeader(raw)
	if err != nil {
		return err
	}
	res := p.append(raw, h)
	if res.err != nil {
		return res.err
	}
	_, err = res.commit(ctx)
	return err
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
