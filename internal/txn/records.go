package txn

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka has one key version. Values are written at version 0, what Kafka
// writes below transaction.version 2 (version 1 adds KIP-890 part 2 tagged
// fields we do not use); both are read.
const (
	keyVersion      = 0
	valueVersion    = 0
	maxValueVersion = 1
)

func txnKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version = keyVersion
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// txnValue encodes m as Kafka does: an Empty transaction has a null
// partition array, any other state a (possibly empty) array.
func txnValue(m meta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID = m.pid
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = m.timeoutMs
	v.State = m.state
	if m.state != stateEmpty {
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range m.parts { // sorted, so a topic's partitions are adjacent
			if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewTxnMetadataValueTopic()
				t.Topic = tp.Topic
				v.Topics = append(v.Topics, t)
			}
			last := &v.Topics[len(v.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
	}
	v.LastUpdateTimestamp = m.updateMs
	v.StartTimestamp = m.startMs
	return v.AppendTo(nil)
}

// decodeKey returns the transactional id of a key; known is false for a key
// version this code does not know, which Load skips as Kafka does.
func decodeKey(key []byte) (id string, known bool, err error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", false, fmt.Errorf("txn: decoding __transaction_state key: %w", err)
	}
	if k.Version != keyVersion {
		return "", false, nil
	}
	return k.TransactionalID, true, nil
}

func decodeValue(value []byte) (meta, error) {
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return meta{}, fmt.Errorf("txn: decoding __transaction_state value: %w", err)
	}
	if v.Version < 0 || v.Version > maxValueVersion {
		return meta{}, fmt.Errorf("txn: unknown __transaction_state value version %d", v.Version)
	}
	if v.State < stateEmpty || v.State > statePrepareEpochFence {
		return meta{}, fmt.Errorf("txn: unknown transaction state %d", v.State)
	}
	m := newMeta()
	m.pid, m.epoch, m.timeoutMs, m.state = v.ProducerID, v.ProducerEpoch, v.TimeoutMillis, v.State
	m.startMs, m.updateMs = v.StartTimestamp, v.LastUpdateTimestamp
	if m.state == stateEmpty {
		return m, nil // an Empty transaction has no partitions
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.parts = append(m.parts, TopicPartition{t.Topic, p})
		}
	}
	slices.SortFunc(m.parts, compareTP)
	m.parts = slices.Compact(m.parts)
	return m, nil
}

// Load replays one record of partition of __transaction_state; the broker
// replays the partition in log order, then calls Elect. The last record of
// an id wins; a tombstone (nil value) or a Dead state deletes it. Keys of
// unknown versions are skipped; malformed records return an error and
// change nothing. Until Elect, the partition's ids answer
// COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) Load(partition int32, key, value []byte) error {
	id, known, err := decodeKey(key)
	if err != nil || !known {
		return err
	}
	var m meta
	if value != nil {
		if m, err = decodeValue(value); err != nil {
			return err
		}
	}
	p, err := c.loading(partition)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resigned {
		return nil
	}
	if value == nil || m.state == stateDead {
		delete(p.txns, id)
		return nil
	}
	// A fresh txn each time: nothing else can hold the old one while the
	// partition is loading.
	p.txns[id] = &txn{id: id, p: p, m: m, exists: true}
	return nil
}
