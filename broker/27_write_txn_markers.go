package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/batch"
)

// handleWriteTxnMarkers writes COMMIT or ABORT control batches, the
// request a transaction coordinator sends to each partition's leader. Each
// partition answers once its marker is durable (without Raft) or committed
// by its group, so a coordinator that hears success may record the
// transaction complete.
func handleWriteTxnMarkers(c *conn, req *kmsg.WriteTxnMarkersRequest) response {
	return later(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
		for _, m := range req.Markers {
			rm := kmsg.NewWriteTxnMarkersResponseMarker()
			rm.ProducerID = m.ProducerID
			mk := batch.Marker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Committed, CoordinatorEpoch: m.CoordinatorEpoch}
			for _, rt := range m.Topics {
				st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				st.Topic = rt.Topic
				errs := c.b.writeMarkers(c.ctx, rt.Topic, rt.Partitions, mk)
				for i, p := range rt.Partitions {
					sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					sp.Partition, sp.ErrorCode = p, errCode(errs[i])
					st.Partitions = append(st.Partitions, sp)
				}
				rm.Topics = append(rm.Topics, st)
			}
			resp.Markers = append(resp.Markers, rm)
		}
		return resp
	})
}

// markerTimeout bounds how long a marker waits for its commit before the
// coordinator is told to retry.
const markerTimeout = 10 * time.Second

// writeMarkers writes marker m on the given partitions of topic, all at
// once, and returns each partition's outcome. A marker on a
// __consumer_offsets partition also settles the producer's pending
// transactional offset commits there.
func (b *Broker) writeMarkers(ctx context.Context, topic string, parts []int32, m batch.Marker) []error {
	errs := make([]error, len(parts))
	t := b.lookupTopic(topic)
	var wg sync.WaitGroup
	for i, idx := range parts {
		if t == nil || idx < 0 || int(idx) >= len(t.parts) {
			errs[i] = kerr.UnknownTopicOrPartition
			continue
		}
		p := t.parts[idx]
		if p == nil || !p.isLeader() {
			errs[i] = kerr.NotLeaderForPartition
			continue
		}
		wg.Go(func() {
			errs[i] = p.appendMarker(ctx, m)
			if errs[i] == nil && topic == offsetsTopic {
				b.groups.CompleteTxn(idx, m.ProducerID, m.Commit)
			}
		})
	}
	wg.Wait()
	return errs
}

// appendMarker writes one end-transaction marker and waits for it to
// commit. The producer table refuses a marker older than the producer's
// epoch (a stale coordinator's), and one with a newer epoch fences the
// producer's older epoch.
func (p *partition) appendMarker(ctx context.Context, m batch.Marker) error {
	m.Timestamp = time.Now().UnixMilli()
	raw, err := batch.BuildMarker(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, markerTimeout)
	defer cancel()
	return p.appendOwn(ctx, raw)
}
