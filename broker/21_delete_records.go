package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteRecords moves log start offsets forward (Kafka Streams purges
// repartition topics this way). Offset -1 means the high watermark.
func handleDeleteRecords(c *conn, req *kmsg.DeleteRecordsRequest) response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		t := c.b.lookupTopic(rt.Topic)
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.LowWatermark, sp.ErrorCode = deleteRecords(t.parts[rp.Partition], rp.Offset)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return ready{resp}
}

func deleteRecords(p *partition, offset int64) (int64, int16) {
	hw := p.highWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, kerr.OffsetOutOfRange.Code
	}
	if offset > p.log.StartOffset() {
		if err := p.log.DeleteBefore(offset); err != nil {
			return -1, errCode(storageError(err))
		}
	}
	return p.log.StartOffset(), 0
}
