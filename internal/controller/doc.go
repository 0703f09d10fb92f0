// Package controller is weir's cluster metadata: a KRaft-like image of
// brokers, topics, partitions, configs and producer-id blocks, replicated by
// one hashicorp/raft group of 3 or 5 voters (layer 1 of the replication
// design in ../../../shared/DESIGN.md). It replaces, for a cluster, the
// single-node weir-metadata.json of package broker.
//
// # Why
//
// Every broker must answer Metadata, CreateTopics, AlterConfigs and
// InitProducerId from the same facts, and those facts must survive the loss
// of a minority of nodes. Modelling the state as typed records applied by a
// Raft FSM, with epochs as fencing tokens, is what KRaft does (KIP-631); it
// gives one order of changes, replay, snapshots, and a single place that
// decides whether a change is valid.
//
// # Records
//
// One record is one Raft log entry: a type byte, a version byte, then the
// msgpack body (Encode, Decode). They map onto KRaft's metadata records:
//
//	RegisterBroker      RegisterBrokerRecord (epoch = the entry's Raft index,
//	                    as KRaft uses the record offset; a new incarnation
//	                    gets a new epoch and starts fenced)
//	FenceBroker         FenceBrokerRecord
//	UnfenceBroker       UnfenceBrokerRecord
//	CreateTopic         TopicRecord + PartitionRecords + ConfigRecords, atomically
//	DeleteTopic         RemoveTopicRecord
//	CreatePartitions    PartitionRecords for the new partitions
//	AlterConfigs        ConfigRecords (here a full replacement of the topic's set)
//	PartitionChange     PartitionChangeRecord, leader and leader epoch only:
//	                    leaders are elected by the partition's own Raft group
//	                    (layer 2), whose term is the leader epoch; it only grows
//	AllocateProducerIDs ProducerIdsRecord; the FSM picks the block's start
//
// There is no ISR, no PartitionRecord.Isr/Adding/Removing, and no ELR: the
// partition Raft groups make them unnecessary.
//
// # FSM and image
//
// FSM.Apply validates each record against the current image using nothing
// else (no clock, no randomness, no map order), so every replica reaches the
// same decision and the same image; a rejected record is a Result carrying an
// *Error (wrapping a sentinel per Kafka error code) and changes nothing. The
// caller sees the Result through raft's ApplyFuture.Response. Values the FSM
// assigns (broker epoch, producer-id block) come back in the Result;
// values that need randomness (topic ids, broker incarnations) are chosen
// by the proposer and travel in the record.
//
// The image is immutable: Apply builds the next Image copy-on-write (maps
// are cloned only when changed, unchanged topics and brokers are shared) and
// swaps it in atomically. FSM.Image may be called from any goroutine and a
// reader keeps a consistent view as long as it holds the pointer;
// Image.Changed signals a newer one. Snapshots are the msgpack of the image,
// after a magic and a version byte, with sorted keys so equal images encode
// to equal bytes; Restore validates everything (topic names become
// directory names) and never panics on bad input.
//
// # Controller
//
// Controller is the thin proposer that runs on every controller voter:
// methods build a record (placing replicas with Place for CreateTopic and
// CreatePartitions), Apply it with a timeout and return the result. On a
// node that is not the Raft leader they return a *NotControllerError
// (errors.Is ErrNotController) naming the leader, for the broker to forward
// the request or answer NOT_CONTROLLER. ErrLeadershipLost is reported the
// same way although the entry may still commit; retries are safe because
// creates of an existing name fail with ErrTopicExists and a registration
// repeated with the same incarnation is idempotent.
//
// # Not done yet
//
//   - Broker heartbeats and session timers: nothing fences a broker that
//     stops heartbeating, and nothing unfences one once it has caught up;
//     the FenceBroker/UnfenceBroker records and methods are there for them.
//   - Wiring into package broker: Metadata, CreateTopics, DeleteTopics,
//     CreatePartitions, (Incremental)AlterConfigs and InitProducerId still
//     use weir-metadata.json; config values are validated by the broker
//     before proposing (the FSM only checks shape); a migration from
//     weir-metadata.json (topics, ids, producer-id limit) to records.
//   - Brokers that are not controller voters need the image: as Raft
//     non-voters or by fetching snapshots and records over RPC.
//   - Fencing does not move partition leadership (partition Raft groups own
//     that); UnregisterBroker, ACLs, users, features, cluster id and quotas
//     are not modelled.
package controller
