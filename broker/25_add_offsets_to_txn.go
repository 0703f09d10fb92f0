package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// handleAddOffsetsToTxn adds the group's __consumer_offsets partition to
// the producer's transaction, so its TxnOffsetCommit becomes part of it.
// The topic is created first if no group has used it yet: the commit
// marker must have a partition to land on.
func handleAddOffsetsToTxn(c *conn, req *kmsg.AddOffsetsToTxnRequest) response {
	return later(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		if _, _, _, err := c.b.meta.coordinator(c.b.groupsTopic(), req.Group); err != nil {
			resp.ErrorCode = errCode(err)
			return resp
		}
		resp.ErrorCode = errCode(c.b.txns.AddOffsets(c.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group))
		return resp
	})
}
