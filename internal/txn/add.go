package txn

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/group"
)

// AddPartitions handles AddPartitionsToTxn: it adds parts to the producer's
// transaction, starting one if none is ongoing, and answers once that is
// durable. As in Kafka, if any partition is unknown, that one answers
// UNKNOWN_TOPIC_OR_PARTITION, the rest OPERATION_NOT_ATTEMPTED, and nothing
// is added. Every other error is the same for all partitions.
func (c *Coordinator) AddPartitions(ctx context.Context, txnID string, pid int64, epoch int16, parts []TopicPartition) map[TopicPartition]error {
	if len(parts) == 0 {
		return map[TopicPartition]error{} // starts no transaction
	}
	if errs := c.checkTopics(parts); errs != nil {
		return errs
	}
	return errorEach(parts, c.add(ctx, txnID, pid, epoch, parts))
}

// AddOffsets handles AddOffsetsToTxn: it adds the __consumer_offsets
// partition of groupID to the transaction, so that the transaction's
// markers also commit or abort its TxnOffsetCommit.
func (c *Coordinator) AddOffsets(ctx context.Context, txnID string, pid int64, epoch int16, groupID string) error {
	tp := TopicPartition{offsetsTopic, group.KeyPartition(groupID, c.cfg.OffsetsPartitions)}
	return c.add(ctx, txnID, pid, epoch, []TopicPartition{tp})
}

// VerifyPartitions is the KIP-890 verify-only AddPartitionsToTxn a
// partition leader sends before accepting transactional data: nil for a
// partition in the producer's ongoing transaction, INVALID_TXN_STATE for any
// other. It writes nothing.
func (c *Coordinator) VerifyPartitions(txnID string, pid int64, epoch int16, parts []TopicPartition) map[TopicPartition]error {
	p, err := c.lookup(txnID)
	if err != nil {
		return errorEach(parts, err)
	}
	t, err := lockProducer(p, txnID, pid, epoch)
	if err != nil {
		return errorEach(parts, err)
	}
	defer t.mu.Unlock()
	errs := make(map[TopicPartition]error, len(parts))
	for _, tp := range parts {
		errs[tp] = nil
		if t.m.state != stateOngoing || !contains(t.m.parts, tp) {
			errs[tp] = kerr.InvalidTxnState
		}
	}
	return errs
}

func (c *Coordinator) add(ctx context.Context, txnID string, pid int64, epoch int16, parts []TopicPartition) error {
	p, err := c.lookup(txnID)
	if err != nil {
		return err
	}
	t, err := lockProducer(p, txnID, pid, epoch)
	if err != nil {
		return err
	}
	if t.pending || preparing(t.m.state) {
		t.mu.Unlock()
		return kerr.ConcurrentTransactions
	}
	next := t.m
	if t.m.state != stateOngoing { // Empty or Complete*: a new transaction
		next.state, next.startMs, next.parts = stateOngoing, c.nowMs(), nil
	}
	var grew bool
	next.parts, grew = union(next.parts, parts)
	if !grew && t.m.state == stateOngoing {
		t.mu.Unlock()
		return nil // nothing new: no write
	}
	next.updateMs = c.nowMs()
	t.pending = true
	t.mu.Unlock()
	return await(ctx, c.persistState(t, next, nil))
}

// lockProducer returns txnID's txn, locked, if pid and epoch are its
// current producer: Kafka's checks shared by AddPartitionsToTxn,
// AddOffsetsToTxn and EndTxn.
func lockProducer(p *partition, txnID string, pid int64, epoch int16) (*txn, error) {
	t, err := p.lockTxn(txnID, false)
	switch {
	case err != nil:
		return nil, err
	case t == nil:
		return nil, kerr.InvalidProducerIDMapping
	case !t.exists || t.m.pid != pid:
		t.mu.Unlock()
		return nil, kerr.InvalidProducerIDMapping
	case t.m.epoch != epoch:
		t.mu.Unlock()
		return nil, kerr.ProducerFenced
	}
	return t, nil
}

// checkTopics returns the errors of AddPartitions if any partition does not
// exist, nil if all do.
func (c *Coordinator) checkTopics(parts []TopicPartition) map[TopicPartition]error {
	if c.topics == nil {
		return nil
	}
	var errs map[TopicPartition]error
	for _, tp := range parts {
		n, ok := c.topics.PartitionCount(tp.Topic)
		if ok && tp.Partition >= 0 && tp.Partition < n {
			continue
		}
		if errs == nil {
			errs = make(map[TopicPartition]error, len(parts))
		}
		errs[tp] = kerr.UnknownTopicOrPartition
	}
	if errs == nil {
		return nil
	}
	for _, tp := range parts {
		if _, bad := errs[tp]; !bad {
			errs[tp] = kerr.OperationNotAttempted
		}
	}
	return errs
}

func errorEach(parts []TopicPartition, err error) map[TopicPartition]error {
	errs := make(map[TopicPartition]error, len(parts))
	for _, tp := range parts {
		errs[tp] = err
	}
	return errs
}
