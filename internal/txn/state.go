package txn

import (
	"cmp"
	"math"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's TransactionState ids, as written in __transaction_state.
const (
	stateEmpty             kmsg.TransactionState = 0
	stateOngoing           kmsg.TransactionState = 1
	statePrepareCommit     kmsg.TransactionState = 2
	statePrepareAbort      kmsg.TransactionState = 3
	stateCompleteCommit    kmsg.TransactionState = 4
	stateCompleteAbort     kmsg.TransactionState = 5
	stateDead              kmsg.TransactionState = 6
	statePrepareEpochFence kmsg.TransactionState = 7
)

// preparing reports whether the outcome of the transaction is decided and
// durable and only its markers and Complete record are left. weir writes a
// fence as PrepareAbort with the bumped epoch (as Kafka does); a
// PrepareEpochFence found in the log is completed as an abort.
func preparing(s kmsg.TransactionState) bool {
	return s == statePrepareCommit || s == statePrepareAbort || s == statePrepareEpochFence
}

func completed(s kmsg.TransactionState) bool {
	return s == stateCompleteCommit || s == stateCompleteAbort
}

// meta is the state of one transactional id: the fields of a
// TxnMetadataValue, plus lastPID and lastEpoch, which Kafka also keeps only
// in memory (a v0 value has no room for them) to recognise retried
// InitProducerId calls (KIP-360).
type meta struct {
	pid       int64
	epoch     int16
	lastPID   int64
	lastEpoch int16
	timeoutMs int32
	state     kmsg.TransactionState
	parts     []TopicPartition // sorted and unique; never mutated in place
	startMs   int64            // -1 when no transaction has started
	updateMs  int64
}

func newMeta() meta {
	return meta{pid: -1, epoch: -1, lastPID: -1, lastEpoch: -1, startMs: -1}
}

// exhausted is Kafka's isEpochExhausted: the next bump would leave no epoch
// for fencing, so the producer id is rotated instead.
func exhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// validProducer is Kafka's isValidProducerId: a request that names a
// producer must name the current one, or the one before an epoch-exhaustion
// rotation (a retry of that InitProducerId).
func (m *meta) validProducer(pid int64, epoch int16) bool {
	return m.epoch == -1 || pid == m.pid || (pid == m.lastPID && exhausted(epoch))
}

// bumped is Kafka's prepareIncrementProducerEpoch: the epoch and last epoch
// after InitProducerId, or ok false if the request carries a fenced epoch.
func (m *meta) bumped(hasExp bool, exp int16) (epoch, last int16, ok bool) {
	switch {
	case !hasExp:
		return m.epoch + 1, -1, true
	case m.epoch == -1 || exp == m.epoch:
		return m.epoch + 1, m.epoch, true
	case exp == m.lastEpoch:
		// A retry of a bump that succeeded: answer the same epoch.
		return m.epoch, m.lastEpoch, true
	}
	return 0, 0, false
}

// fenced returns the state that aborts an Ongoing transaction on behalf of
// the coordinator (InitProducerId from a new producer, or a timeout): the
// epoch is bumped first so the old producer's requests and in-flight
// produce are fenced by markers carrying the new epoch.
func (m meta) fenced(nowMs int64) meta {
	if m.epoch < math.MaxInt16 {
		m.epoch++
	}
	m.lastEpoch = -1
	m.state = statePrepareAbort
	m.updateMs = nowMs
	return m
}

// txn is one transactional id. mu guards every field but id and p. Lock
// order: txn, then its partition.
type txn struct {
	id string
	p  *partition

	mu sync.Mutex
	m  meta
	// exists is false for an id InitProducerId has not yet written.
	exists bool
	// pending is set while a write of this id is queued or in flight (or
	// its producer id is being allocated): Kafka's pendingState. Requests
	// that would change state answer CONCURRENT_TRANSACTIONS meanwhile, so
	// there is one write at a time per id and log order is state order.
	pending bool
	// removed is set once t is out of its partition (expired, or the
	// partition resigned); a request that raced looks the id up again.
	removed bool
}

func compareTP(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// union returns the sorted, unique union of have (sorted, unique) and add,
// and whether it grew. have is not modified.
func union(have, add []TopicPartition) ([]TopicPartition, bool) {
	out := slices.Clone(have)
	for _, tp := range add {
		if i, found := slices.BinarySearchFunc(out, tp, compareTP); !found {
			out = slices.Insert(out, i, tp)
		}
	}
	return out, len(out) > len(have)
}

func contains(parts []TopicPartition, tp TopicPartition) bool {
	_, found := slices.BinarySearchFunc(parts, tp, compareTP)
	return found
}
