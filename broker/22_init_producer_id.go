package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID hands an idempotent producer a fresh id at epoch 0,
// and a transactional producer its id from the transaction coordinator
// (which bumps the epoch, fencing any older producer with the same
// transactional id, and aborts its open transaction first).
func handleInitProducerID(c *conn, req *kmsg.InitProducerIDRequest) response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		return later(func() kmsg.Response {
			id, epoch, err := c.b.txns.InitProducerID(c.ctx, *req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
			if err != nil {
				resp.ErrorCode = errCode(err)
				return resp
			}
			resp.ProducerID, resp.ProducerEpoch = id, epoch
			return resp
		})
	}
	id, err := c.b.meta.allocateProducerID()
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return ready{resp}
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return ready{resp}
}
