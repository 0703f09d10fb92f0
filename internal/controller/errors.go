package controller

import (
	"errors"
	"fmt"
)

// Sentinel errors of rejected records. Each corresponds to one Kafka error
// code, named in its comment, so the broker can map them with errors.Is.
var (
	ErrTopicExists              = errors.New("topic already exists")               // TOPIC_ALREADY_EXISTS
	ErrUnknownTopic             = errors.New("unknown topic or partition")         // UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION
	ErrInvalidTopic             = errors.New("invalid topic")                      // INVALID_TOPIC_EXCEPTION
	ErrInvalidPartitions        = errors.New("invalid partitions")                 // INVALID_PARTITIONS
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")         // INVALID_REPLICATION_FACTOR
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")         // INVALID_REPLICA_ASSIGNMENT
	ErrInvalidConfig            = errors.New("invalid config")                     // INVALID_CONFIG
	ErrUnknownBroker            = errors.New("unknown broker")                     // BROKER_NOT_AVAILABLE
	ErrInvalidRegistration      = errors.New("invalid broker registration")        // INVALID_REGISTRATION
	ErrStaleBrokerEpoch         = errors.New("stale broker epoch")                 // STALE_BROKER_EPOCH
	ErrFencedLeaderEpoch        = errors.New("leader epoch is older than current") // FENCED_LEADER_EPOCH
	ErrInvalidRequest           = errors.New("invalid request")                    // INVALID_REQUEST
	ErrIneligibleReplica        = errors.New("ineligible replica")                 // INELIGIBLE_REPLICA
	ErrInvalidUpdateVersion     = errors.New("invalid update version")             // INVALID_UPDATE_VERSION
	ErrNoReassignment           = errors.New("no reassignment in progress")        // NO_REASSIGNMENT_IN_PROGRESS
)

// Error is a rejected record: Kind is one of the sentinels above and Msg
// a Kafka-style message for a response's ErrorMessage field.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
