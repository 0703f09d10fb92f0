package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/txn"
)

// startTxns installs the transaction coordinator. Like the group
// coordinator it serves a transactional id only once this broker leads and
// has replayed the id's __transaction_state partition (loadCoordinator).
func (b *Broker) startTxns() {
	tc := txn.DefaultConfig()
	tc.Partitions = b.cfg.TransactionPartitions
	tc.OffsetsPartitions = b.cfg.OffsetsPartitions
	tc.MaxTimeout = b.cfg.TransactionMaxTimeout
	tc.IDExpiration = b.cfg.TransactionalIDExpiration
	tc.AbortInterval = b.cfg.TransactionAbortInterval
	tc.Logger = b.log
	b.peers = &peers{b: b}
	b.txns = txn.New(tc, txnLog{b}, b.peers, brokerIDs{b}, brokerTopics{b})
}

// replayTxns feeds every record of one __transaction_state partition to
// the coordinator.
func (b *Broker) replayTxns(p *partition) error {
	return b.replayInternal(p, func(_ batch.Header, key, value []byte) error {
		if err := b.txns.Load(p.index, key, value); err != nil {
			// One bad record must not keep the coordinator from
			// serving every other transactional id.
			b.log.Warn("skipping unreadable record in "+txnTopic, "partition", p.index, "err", err)
		}
		return nil
	}, nil)
}

// replayInternal calls fn for every record of a coordinator topic's
// partition below its high watermark, and control (unless nil) for every
// control batch (eachRecord).
func (b *Broker) replayInternal(p *partition, fn func(h batch.Header, key, value []byte) error, control func(h batch.Header, b []byte) error) error {
	for off, end := p.plog().StartOffset(), p.highWatermark(); off < end; {
		raw, err := p.plog().Read(off, 1<<20, end)
		if err != nil {
			return err
		}
		if len(raw) == 0 {
			return nil
		}
		next, err := eachRecord(raw, fn, control)
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}

// txnLog lets the coordinator write to __transaction_state.
type txnLog struct{ b *Broker }

func (l txnLog) Append(ctx context.Context, partition int32, recs []txn.Record) error {
	kvs := make([]batch.Record, len(recs))
	for i, r := range recs {
		kvs[i] = batch.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
	}
	return l.b.appendInternal(ctx, txnTopic, partition, batch.DefaultBuildOptions(), kvs)
}

// appendInternal writes one batch of records built with opts to a
// coordinator topic's partition and waits for it to commit. Not leading
// it is NOT_LEADER_OR_FOLLOWER, which the coordinators answer as
// NOT_COORDINATOR.
func (b *Broker) appendInternal(ctx context.Context, topic string, partition int32, opts batch.BuildOptions, recs []batch.Record) error {
	p := b.lookupPartition(topic, partition)
	if p == nil {
		return kerr.NotLeaderForPartition
	}
	now := time.Now().UnixMilli()
	opts.BaseTimestamp, opts.MaxTimestamp = now, now
	raw, err := batch.Build(opts, recs)
	if err != nil {
		return err
	}
	return p.appendOwn(ctx, raw)
}

// brokerIDs hands the coordinator producer ids from the controller's
// blocks.
type brokerIDs struct{ b *Broker }

func (i brokerIDs) AllocateProducerID(context.Context) (int64, error) {
	return i.b.meta.allocateProducerID()
}

// peers writes transaction markers: locally for partitions this broker
// leads, with WriteTxnMarkers to the leaders of the others (Kafka's
// TransactionMarkerChannelManager).
type peers struct {
	b    *Broker
	once sync.Once
	cl   *kgo.Client
	err  error
}

// WriteMarkers implements txn.Markers. A partition whose leader is unknown
// or unreachable is left out of the answer, so the coordinator retries it.
func (m *peers) WriteMarkers(ctx context.Context, req txn.MarkerRequest) map[txn.TopicPartition]error {
	out := make(map[txn.TopicPartition]error, len(req.Partitions))
	mk := batch.Marker{ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch, Commit: req.Commit, CoordinatorEpoch: req.CoordinatorEpoch}
	byLeader := m.byLeader(req.Partitions, out)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for leader, parts := range byLeader {
		wg.Go(func() {
			res := m.writeAt(ctx, leader, mk, parts)
			mu.Lock()
			defer mu.Unlock()
			for tp, err := range res {
				out[tp] = err
			}
		})
	}
	wg.Wait()
	return out
}

// byLeader groups parts by their leader in this broker's image, answering
// deleted topics at once.
func (m *peers) byLeader(parts []txn.TopicPartition, out map[txn.TopicPartition]error) map[int32][]txn.TopicPartition {
	img := m.b.meta.image()
	by := make(map[int32][]txn.TopicPartition)
	for _, tp := range parts {
		t, ok := img.Topic(tp.Topic)
		if !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			out[tp] = kerr.UnknownTopicOrPartition
			continue
		}
		if l := t.Partitions[tp.Partition].Leader; l >= 0 {
			by[l] = append(by[l], tp)
		}
	}
	return by
}

// writeAt writes mk on parts, all led by leader.
func (m *peers) writeAt(ctx context.Context, leader int32, mk batch.Marker, parts []txn.TopicPartition) map[txn.TopicPartition]error {
	out := make(map[txn.TopicPartition]error, len(parts))
	byTopic := make(map[string][]int32)
	for _, tp := range parts {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	if leader == m.b.cfg.NodeID {
		for topic, idx := range byTopic {
			for i, err := range m.b.writeMarkers(ctx, topic, idx, mk) {
				out[txn.TopicPartition{Topic: topic, Partition: idx[i]}] = err
			}
		}
		return out
	}
	resp, err := m.remote(ctx, leader, mk, byTopic)
	if err != nil {
		m.b.log.Debug("writing transaction markers", "leader", leader, "err", err)
		return out // nothing answered: the coordinator retries
	}
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				out[txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = kerr.ErrorForCode(rp.ErrorCode)
			}
		}
	}
	return out
}

// remote sends one WriteTxnMarkers request to another broker.
func (m *peers) remote(ctx context.Context, leader int32, mk batch.Marker, byTopic map[string][]int32) (*kmsg.WriteTxnMarkersResponse, error) {
	cl, err := m.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = mk.ProducerID, mk.ProducerEpoch, mk.Commit, mk.CoordinatorEpoch
	for topic, idx := range byTopic {
		rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		rt.Topic, rt.Partitions = topic, idx
		rm.Topics = append(rm.Topics, rt)
	}
	req.Markers = append(req.Markers, rm)
	ctx, cancel := context.WithTimeout(ctx, markerTimeout+time.Second)
	defer cancel()
	return req.RequestWith(ctx, cl.Broker(int(leader)))
}

// client is the inter-broker client, created on first use: it finds the
// other brokers through this one's own Metadata.
func (m *peers) client() (*kgo.Client, error) {
	m.once.Do(func() {
		m.cl, m.err = kgo.NewClient(kgo.SeedBrokers(m.b.addr), kgo.ClientID("weir-txn-markers"))
	})
	return m.cl, m.err
}

func (m *peers) close() {
	if m.cl != nil {
		m.cl.Close()
	}
}
