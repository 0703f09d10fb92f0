package broker

import (
	"github.com/weir-io/weir/internal/group"
)

// Two internal topics hold coordinators' state: __consumer_offsets the
// group coordinator's, __transaction_state the transaction coordinator's.
// The leader of each partition coordinates the groups or transactional ids
// that hash to it, once it has replayed the partition; both follow the
// same lifecycle here (loadCoordinator, unloadCoordinator).
const (
	offsetsTopic = "__consumer_offsets"
	txnTopic     = "__transaction_state"
)

// coordTopic describes one coordinator topic.
type coordTopic struct {
	name       string
	partitions int32
}

func (b *Broker) groupsTopic() coordTopic {
	return coordTopic{name: offsetsTopic, partitions: b.cfg.OffsetsPartitions}
}

func (b *Broker) transactionsTopic() coordTopic {
	return coordTopic{name: txnTopic, partitions: b.cfg.TransactionPartitions}
}

// partitionFor is the partition of key (a group id or transactional id).
func (ct coordTopic) partitionFor(key string) int32 { return group.KeyPartition(key, ct.partitions) }

// configs are the topic's configs, as Kafka sets them for both.
func (ct coordTopic) configs() map[string]string {
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600"}
}

// isInternalTopic reports a topic clients may not produce to.
func isInternalTopic(name string) bool { return name == offsetsTopic || name == txnTopic }

// loadCoordinator makes this replica, which leads p, serve the
// coordinator state p holds: replay it, then serve. Any earlier term's
// state is dropped first.
func (b *Broker) loadCoordinator(p *partition) error {
	switch p.topic {
	case offsetsTopic:
		b.groups.Unload(p.index)
		if err := b.replayOffsets(p); err != nil {
			return err
		}
	case txnTopic:
		b.txns.Resign(p.index)
		if err := b.replayTxns(p); err != nil {
			return err
		}
		b.txns.Elect(p.index, p.leaderEpoch())
	default:
		return nil
	}
	p.loaded.Store(true)
	return nil
}

// unloadCoordinator stops serving p's coordinator state (leadership
// lost, replica closed or moved).
func (b *Broker) unloadCoordinator(p *partition) {
	if !p.loaded.Swap(false) {
		return
	}
	switch p.topic {
	case offsetsTopic:
		b.groups.Unload(p.index)
	case txnTopic:
		b.txns.Resign(p.index)
	}
}
