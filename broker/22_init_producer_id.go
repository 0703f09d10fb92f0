package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID hands an idempotent producer a fresh id at epoch 0.
// Transactional ids are refused until transactions exist.
func handleInitProducerID(c *conn, req *kmsg.InitProducerIDRequest) response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return ready{resp}
	}
	id, err := c.b.meta.allocateProducerID()
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return ready{resp}
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return ready{resp}
}
