package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/txn"
)

// handleTxnOffsetCommit stores a transactional producer's consumed offsets
// in its transaction: durable in __consumer_offsets before the response,
// visible once the transaction's COMMIT marker lands there. Like
// OffsetCommit it waits for the write, so it waits off the read loop.
func handleTxnOffsetCommit(c *conn, req *kmsg.TxnOffsetCommitRequest) response {
	ctx := c.groupCtx() // on the read loop: the client id may change with the next request
	return later(func() kmsg.Response { return c.b.txnOffsetCommit(ctx, req) })
}

// txnOffsetCommit answers NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS)
// for a group not coordinated here, as serveGroup does for OffsetCommit,
// and hands the rest to the coordinator.
func (b *Broker) txnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	if code := b.coordinatorError(req.Group); code != 0 {
		return txnOffsetCommitError(req, code)
	}
	// KIP-890: the group's partition must be in the producer's ongoing
	// transaction (AddOffsetsToTxn), or a late commit of a finished
	// transaction would hang pending forever.
	tp := txn.TopicPartition{Topic: offsetsTopic, Partition: b.groups.PartitionFor(req.Group)}
	if err := b.verifyTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, tp); err != nil {
		return txnOffsetCommitError(req, offsetVerifyCode(err))
	}
	return b.groups.TxnOffsetCommit(ctx, req)
}

// txnOffsetCommitError answers every partition of r with code.
func txnOffsetCommitError(r *kmsg.TxnOffsetCommitRequest, code int16) *kmsg.TxnOffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// offsetVerifyCode maps a failed verification to TxnOffsetCommit's codes.
func offsetVerifyCode(err error) int16 {
	switch {
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, kerr.InvalidProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, kerr.CoordinatorNotAvailable), errors.Is(err, kerr.NotCoordinator),
		errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.ConcurrentTransactions):
		return kerr.CoordinatorNotAvailable.Code
	}
	return kerr.InvalidTxnState.Code
}
