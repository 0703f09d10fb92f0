package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/txn"
)

// checkTxnProduce applies Kafka's rules to a produced batch h and the
// request's transactional id: a transactional batch comes from a
// transactional producer (an id and a producer id), and a transactional
// producer sends only transactional batches. The first transactional batch
// of a producer on a partition is verified with the transaction
// coordinator (KIP-890 part 1): the partition must be in the producer's
// ongoing transaction, so a late batch of a transaction already ended
// cannot open a new, hanging one.
func (b *Broker) checkTxnProduce(ctx context.Context, txnID *string, p *partition, h batch.Header) error {
	switch {
	case h.Transactional() && (txnID == nil || h.ProducerID < 0):
		return errorf(kerr.InvalidRecord, "transactional batch without a transactional id and producer id")
	case !h.Transactional() && txnID != nil:
		return errorf(kerr.InvalidRecord, "transactional producer %q sent a non-transactional batch", *txnID)
	case !h.Transactional():
		return nil
	}
	if p.plog().HasOpenTxn(h.ProducerID) {
		return nil
	}
	return verifyError(b.verifyTxn(ctx, *txnID, h.ProducerID, h.ProducerEpoch, txn.TopicPartition{Topic: p.topic, Partition: p.index}))
}

// verifyTxn asks the coordinator of txnID, here or on another broker,
// whether tp is in the producer's ongoing transaction.
func (b *Broker) verifyTxn(ctx context.Context, txnID string, pid int64, epoch int16, tp txn.TopicPartition) error {
	node, _, _, err := b.meta.coordinator(b.transactionsTopic(), txnID)
	if err != nil {
		return err
	}
	if node == b.cfg.NodeID {
		return b.txns.VerifyPartitions(txnID, pid, epoch, []txn.TopicPartition{tp})[tp]
	}
	cl, err := b.peers.client()
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = txnID, pid, epoch, true
	rtt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	rtt.Topic, rtt.Partitions = tp.Topic, []int32{tp.Partition}
	rt.Topics = append(rt.Topics, rtt)
	req.Transactions = append(req.Transactions, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, t := range resp.Transactions {
		for _, rt := range t.Topics {
			for _, rp := range rt.Partitions {
				return kerr.ErrorForCode(rp.ErrorCode)
			}
		}
	}
	return kerr.CoordinatorNotAvailable
}

// verifyError maps a failed verification to what the producer acts on,
// as Kafka does: coordinator trouble is retriable (NOT_ENOUGH_REPLICAS), a
// fenced producer gets INVALID_PRODUCER_EPOCH, anything else means the
// partition is not in the transaction.
func verifyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.CoordinatorNotAvailable), errors.Is(err, kerr.NotCoordinator),
		errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.ConcurrentTransactions):
		return errorf(kerr.NotEnoughReplicas, "verifying the transaction: %v", err)
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		return kerr.InvalidProducerEpoch
	}
	return errorf(kerr.InvalidTxnState, "partition is not in the producer's transaction: %v", err)
}
