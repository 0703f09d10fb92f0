package controller

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// RecordType is the first byte of every encoded record: it says which Go
// type the msgpack body decodes into. Values are part of the on-disk format
// of the Raft log and must never be reused.
type RecordType uint8

const (
	TypeRegisterBroker      RecordType = 1
	TypeFenceBroker         RecordType = 2
	TypeUnfenceBroker       RecordType = 3
	TypeCreateTopic         RecordType = 4
	TypeDeleteTopic         RecordType = 5
	TypeCreatePartitions    RecordType = 6
	TypeAlterConfigs        RecordType = 7
	TypePartitionChange     RecordType = 8
	TypeAllocateProducerIDs RecordType = 9
	TypeAlterPartition      RecordType = 10
	TypeElectPreferred      RecordType = 11
	TypeReassign            RecordType = 12
	TypeCompleteReassign    RecordType = 13
	TypeInitCluster         RecordType = 14
)

func (t RecordType) String() string {
	switch t {
	case TypeRegisterBroker:
		return "RegisterBroker"
	case TypeFenceBroker:
		return "FenceBroker"
	case TypeUnfenceBroker:
		return "UnfenceBroker"
	case TypeCreateTopic:
		return "CreateTopic"
	case TypeDeleteTopic:
		return "DeleteTopic"
	case TypeCreatePartitions:
		return "CreatePartitions"
	case TypeAlterConfigs:
		return "AlterConfigs"
	case TypePartitionChange:
		return "PartitionChange"
	case TypeAllocateProducerIDs:
		return "AllocateProducerIDs"
	case TypeAlterPartition:
		return "AlterPartition"
	case TypeElectPreferred:
		return "ElectPreferred"
	case TypeReassign:
		return "Reassign"
	case TypeCompleteReassign:
		return "CompleteReassign"
	case TypeInitCluster:
		return "InitCluster"
	}
	return fmt.Sprintf("RecordType(%d)", uint8(t))
}

// recordVersion is the body version written after the type tag. A decoder
// accepts versions up to its own; fields added later must be optional
// (msgpack ignores unknown fields and zero-fills missing ones).
const recordVersion = 1

// Record is one metadata change: one Raft log entry.
type Record interface {
	Type() RecordType
}

// RegisterBroker announces a broker process. The FSM assigns the broker
// epoch (the Raft index of the record, as KRaft uses the record's offset);
// the Epoch field is ignored on input. A new registration starts fenced.
type RegisterBroker struct {
	NodeID      int32    `msgpack:"node_id"`
	Incarnation [16]byte `msgpack:"incarnation"`
	Listener    string   `msgpack:"listener"` // Kafka listener, host:port
	RaftAddr    string   `msgpack:"raft_addr"`
	Epoch       int64    `msgpack:"epoch,omitempty"`
}

// FenceBroker takes a broker out of service (no leadership, not offered to
// clients). Epoch must be the broker's current epoch.
type FenceBroker struct {
	NodeID int32 `msgpack:"node_id"`
	Epoch  int64 `msgpack:"epoch"`
}

// UnfenceBroker puts a registered, caught-up broker into service.
type UnfenceBroker struct {
	NodeID int32 `msgpack:"node_id"`
	Epoch  int64 `msgpack:"epoch"`
}

// PartitionAssignment is one partition's replica list; the first replica
// is the preferred leader.
type PartitionAssignment struct {
	Index    int32   `msgpack:"index"`
	Replicas []int32 `msgpack:"replicas"`
}

// CreateTopic creates a topic with all its partitions (KRaft's TopicRecord
// plus PartitionRecords plus ConfigRecords, applied atomically).
type CreateTopic struct {
	Name       string                `msgpack:"name"`
	ID         [16]byte              `msgpack:"id"`
	Configs    map[string]string     `msgpack:"configs,omitempty"`
	Partitions []PartitionAssignment `msgpack:"partitions"`
}

// DeleteTopic removes a topic (KRaft's RemoveTopicRecord).
type DeleteTopic struct {
	ID [16]byte `msgpack:"id"`
}

// CreatePartitions adds partitions to a topic; New must continue the
// existing indexes without gaps.
type CreatePartitions struct {
	TopicID [16]byte              `msgpack:"topic_id"`
	New     []PartitionAssignment `msgpack:"new"`
}

// AlterConfigs replaces a topic's explicitly set configs as a whole.
type AlterConfigs struct {
	TopicID [16]byte          `msgpack:"topic_id"`
	Configs map[string]string `msgpack:"configs,omitempty"`
}

// PartitionChange reports a partition leader elected by the partition's
// own Raft group. Leader is a replica id or NoLeader; LeaderEpoch (the
// partition group's Raft term) never goes back.
type PartitionChange struct {
	TopicID     [16]byte `msgpack:"topic_id"`
	Partition   int32    `msgpack:"partition"`
	Leader      int32    `msgpack:"leader"`
	LeaderEpoch int32    `msgpack:"leader_epoch"`
}

// ISRMember is an in-sync replica named with the epoch of the broker
// process it was caught up in (KIP-903): a leader that has not heard from
// a restarted broker's new incarnation cannot put it back in sync.
type ISRMember struct {
	NodeID      int32 `msgpack:"node_id"`
	BrokerEpoch int64 `msgpack:"broker_epoch"`
}

// AlterPartition sets a partition's in-sync replicas as its leader decided
// them (KRaft's AlterPartition). Leader and LeaderEpoch must be the
// partition's current ones and PartitionEpoch the version the leader's
// decision was based on, so a change the controller made meanwhile (a
// broker fenced out of the ISR) is never overwritten by a stale view.
type AlterPartition struct {
	TopicID        [16]byte    `msgpack:"topic_id"`
	Partition      int32       `msgpack:"partition"`
	Leader         int32       `msgpack:"leader"`
	LeaderEpoch    int32       `msgpack:"leader_epoch"`
	PartitionEpoch int32       `msgpack:"partition_epoch"`
	ISR            []ISRMember `msgpack:"isr"`
}

// PartitionRef names one partition.
type PartitionRef struct {
	TopicID   [16]byte `msgpack:"topic_id"`
	Partition int32    `msgpack:"partition"`
}

// ElectPreferred asks the leaders of these partitions to hand leadership
// to their preferred replica (the first in the assignment), as Kafka's
// preferred leader election does. Raft, not the controller, elects: the
// record marks each partition whose preferred replica is in sync on a
// broker in service and does not lead it yet, and its leader transfers
// leadership once it sees that replica caught up. Partitions that do not
// qualify are left alone, not refused, so a batch is never all-or-nothing.
type ElectPreferred struct {
	Partitions []PartitionRef `msgpack:"partitions"`
}

// Reassign moves a partition to the Target replicas (KIP-455's
// AlterPartitionReassignments); Cancel instead cancels the reassignment
// in progress. The partition then lists the target replicas followed by
// those being removed, with Adding and Removing set; its leader changes
// the Raft group's membership (adding new replicas as non-voters,
// promoting them once caught up, then removing the others) and reports
// CompleteReassign.
type Reassign struct {
	TopicID   [16]byte `msgpack:"topic_id"`
	Partition int32    `msgpack:"partition"`
	Target    []int32  `msgpack:"target"`
	Cancel    bool     `msgpack:"cancel,omitempty"`
}

// CompleteReassign ends a reassignment once the partition's Raft group
// has exactly the target replicas as voters. PartitionEpoch must be the
// one the leader saw, so a completion of a reassignment since replaced
// is refused.
type CompleteReassign struct {
	TopicID        [16]byte `msgpack:"topic_id"`
	Partition      int32    `msgpack:"partition"`
	Leader         int32    `msgpack:"leader"`
	LeaderEpoch    int32    `msgpack:"leader_epoch"`
	PartitionEpoch int32    `msgpack:"partition_epoch"`
}

// AllocateProducerIDs reserves the next block of BlockSize producer ids
// (KRaft's ProducerIdsRecord); the FSM chooses the start.
type AllocateProducerIDs struct {
	BlockSize int64 `msgpack:"block_size"`
}

// InitCluster fixes the cluster id (Kafka keeps it in meta.properties,
// written by kafka-storage format) and raises the next producer id to at
// least NextProducerID. The first one to commit sets the id; a later one
// with another id is refused. A single node's data directory from before
// the controller quorum carried both in weir-metadata.json.
type InitCluster struct {
	ClusterID      string `msgpack:"cluster_id"`
	NextProducerID int64  `msgpack:"next_producer_id,omitempty"`
}

func (*RegisterBroker) Type() RecordType      { return TypeRegisterBroker }
func (*FenceBroker) Type() RecordType         { return TypeFenceBroker }
func (*UnfenceBroker) Type() RecordType       { return TypeUnfenceBroker }
func (*CreateTopic) Type() RecordType         { return TypeCreateTopic }
func (*DeleteTopic) Type() RecordType         { return TypeDeleteTopic }
func (*CreatePartitions) Type() RecordType    { return TypeCreatePartitions }
func (*AlterConfigs) Type() RecordType        { return TypeAlterConfigs }
func (*PartitionChange) Type() RecordType     { return TypePartitionChange }
func (*AllocateProducerIDs) Type() RecordType { return TypeAllocateProducerIDs }
func (*AlterPartition) Type() RecordType      { return TypeAlterPartition }
func (*ElectPreferred) Type() RecordType      { return TypeElectPreferred }
func (*Reassign) Type() RecordType            { return TypeReassign }
func (*CompleteReassign) Type() RecordType    { return TypeCompleteReassign }
func (*InitCluster) Type() RecordType         { return TypeInitCluster }

// newRecord returns an empty record of type t, or nil if t is unknown.
func newRecord(t RecordType) Record {
	switch t {
	case TypeRegisterBroker:
		return new(RegisterBroker)
	case TypeFenceBroker:
		return new(FenceBroker)
	case TypeUnfenceBroker:
		return new(UnfenceBroker)
	case TypeCreateTopic:
		return new(CreateTopic)
	case TypeDeleteTopic:
		return new(DeleteTopic)
	case TypeCreatePartitions:
		return new(CreatePartitions)
	case TypeAlterConfigs:
		return new(AlterConfigs)
	case TypePartitionChange:
		return new(PartitionChange)
	case TypeAllocateProducerIDs:
		return new(AllocateProducerIDs)
	case TypeAlterPartition:
		return new(AlterPartition)
	case TypeElectPreferred:
		return new(ElectPreferred)
	case TypeReassign:
		return new(Reassign)
	case TypeCompleteReassign:
		return new(CompleteReassign)
	case TypeInitCluster:
		return new(InitCluster)
	}
	return nil
}

// ErrBadRecord is wrapped by every decoding error.
var ErrBadRecord = errors.New("controller: malformed record")

// Encode returns the log entry for r: type tag, version, msgpack body.
// Map keys are sorted so equal records encode to equal bytes.
func Encode(r Record) ([]byte, error) {
	if r == nil || newRecord(r.Type()) == nil {
		return nil, fmt.Errorf("controller: cannot encode record %T", r)
	}
	var buf bytes.Buffer
	buf.WriteByte(byte(r.Type()))
	buf.WriteByte(recordVersion)
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("controller: encode %s: %w", r.Type(), err)
	}
	return buf.Bytes(), nil
}

// Decode parses a log entry written by Encode. It never panics; anything
// malformed is an error wrapping ErrBadRecord.
func Decode(b []byte) (Record, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadRecord, len(b))
	}
	r := newRecord(RecordType(b[0]))
	if r == nil {
		return nil, fmt.Errorf("%w: unknown type %d", ErrBadRecord, b[0])
	}
	if b[1] == 0 || b[1] > recordVersion {
		return nil, fmt.Errorf("%w: %s version %d is not supported (max %d)", ErrBadRecord, r.Type(), b[1], recordVersion)
	}
	rd := bytes.NewReader(b[2:])
	dec := msgpack.NewDecoder(rd)
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadRecord, r.Type(), err)
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("%w: %s: %d trailing bytes", ErrBadRecord, r.Type(), rd.Len())
	}
	return r, nil
}
