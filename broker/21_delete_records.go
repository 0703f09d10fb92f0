package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteRecords moves log start offsets forward (Kafka Streams purges
// repartition topics this way). Offset -1 means the high watermark. In a
// cluster the move is a replicated entry, so it answers after the read
// loop.
func handleDeleteRecords(c *conn, req *kmsg.DeleteRecordsRequest) response {
	return later(func() kmsg.Response { return c.b.deleteRecords(c.ctx, req) })
}

func (b *Broker) deleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		t := b.knownTopic(rt.Topic)
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.LowWatermark, sp.ErrorCode = deletePartitionRecords(ctx, t.parts[rp.Partition], rp.Offset)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func deletePartitionRecords(ctx context.Context, p *partition, offset int64) (int64, int16) {
	if p == nil {
		return -1, kerr.NotLeaderForPartition.Code
	}
	low, err := p.deleteRecords(ctx, offset)
	if err != nil {
		return -1, errCode(err)
	}
	return low, 0
}
