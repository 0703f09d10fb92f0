package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/batch"
)

// Special ListOffsets timestamps.
const (
	offsetLatest        = -1
	offsetEarliest      = -2
	offsetMaxTimestamp  = -3 // v7+
	offsetEarliestLocal = -4 // v8+: no tiered storage, so the log start
)

// handleListOffsets answers after the read loop: in a cluster a new leader
// may first have to commit an entry of its own term.
func handleListOffsets(c *conn, req *kmsg.ListOffsetsRequest) response {
	return later(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			t := c.b.knownTopic(rt.Topic)
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, listPartitionOffset(c.ctx, t, rp, req.IsolationLevel == readCommitted))
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

func listPartitionOffset(ctx context.Context, t *topic, rp kmsg.ListOffsetsRequestTopicPartition, committed bool) kmsg.ListOffsetsResponseTopicPartition {
	sp := kmsg.NewListOffsetsResponseTopicPartition()
	sp.Partition = rp.Partition
	if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts) {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return sp
	}
	p := t.parts[rp.Partition]
	err := error(kerr.NotLeaderForPartition)
	if p != nil {
		if err = p.serve(ctx); err == nil {
			err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
		}
	}
	if err != nil {
		sp.ErrorCode = errCode(err)
		return sp
	}
	end := p.highWatermark()
	if committed {
		end = p.lastStable(end) // read_committed sees nothing past the LSO, as in Kafka
	}
	sp.Offset, sp.Timestamp = listOffset(p, rp.Timestamp, end)
	sp.LeaderEpoch = p.leaderEpoch()
	return sp
}

// listOffset resolves one ListOffsets query over the records below hw
// (the high watermark, or the LSO for read_committed); -1/-1 means no such
// offset.
func listOffset(p *partition, ts int64, hw int64) (offset, timestamp int64) {
	switch ts {
	case offsetLatest:
		return hw, -1
	case offsetEarliest, offsetEarliestLocal:
		return p.plog().StartOffset(), -1
	case offsetMaxTimestamp:
		return maxTimestampOffset(p, hw)
	}
	off, at, ok := p.plog().OffsetForTime(ts)
	if !ok || off >= hw {
		return -1, -1
	}
	return off, at
}

// maxTimestampOffset finds the first record carrying the log's largest
// timestamp. It scans batch headers, then decodes only the winning batch.
func maxTimestampOffset(p *partition, hw int64) (int64, int64) {
	best := batch.Header{MaxTimestamp: -1}
	p.plog().Batches(p.plog().StartOffset(), func(h batch.Header) error {
		if h.BaseOffset < hw && !h.Control() && h.MaxTimestamp > best.MaxTimestamp {
			best = h
		}
		return nil
	})
	if best.MaxTimestamp < 0 {
		return -1, -1
	}
	raw, err := p.plog().Read(best.BaseOffset, 1, hw)
	if err != nil {
		return -1, -1
	}
	bs, err := batch.Split(raw)
	if err != nil || len(bs) == 0 {
		return -1, -1
	}
	recs, err := batch.Records(bs[0])
	if err != nil {
		return best.BaseOffset, best.MaxTimestamp
	}
	for _, r := range recs {
		if best.BaseTimestamp+r.TimestampDelta == best.MaxTimestamp {
			return best.BaseOffset + int64(r.OffsetDelta), best.MaxTimestamp
		}
	}
	return best.LastOffset(), best.MaxTimestamp
}
