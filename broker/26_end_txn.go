package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// handleEndTxn commits or aborts a producer's transaction. It answers once
// the decision is durable in __transaction_state; the markers follow.
func handleEndTxn(c *conn, req *kmsg.EndTxnRequest) response {
	return later(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = errCode(c.b.txns.EndTxn(c.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit))
		return resp
	})
}
