package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// producerIDBlock is how many producer ids are reserved per metadata write.
const producerIDBlock = 1000

// handleInitProducerID hands an idempotent producer a fresh id at epoch 0.
// Transactional ids are refused until transactions exist.
func handleInitProducerID(c *conn, req *kmsg.InitProducerIDRequest) response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return ready{resp}
	}
	id, err := c.b.allocateProducerID()
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return ready{resp}
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return ready{resp}
}

// allocateProducerID returns an id never handed out before, persisting a
// new block reservation when the current one runs out.
func (b *Broker) allocateProducerID() (int64, error) {
	if b.cluster != nil {
		return b.cluster.allocateProducerID()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nextProducerID >= b.producerIDLimit {
		b.producerIDLimit = b.nextProducerID + producerIDBlock
		if err := b.saveMetaLocked(); err != nil {
			b.producerIDLimit = b.nextProducerID
			b.log.Error("reserving producer ids", "err", err)
			return 0, err
		}
	}
	id := b.nextProducerID
	b.nextProducerID++
	return id, nil
}
