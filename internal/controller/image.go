package controller

import (
	"maps"
	"slices"
	"strings"
)

// NoLeader is the Leader of a partition whose Raft group has not reported
// a leader yet (Kafka's -1, LEADER_NOT_AVAILABLE to clients).
const NoLeader int32 = -1

// Broker is one registered broker as the image holds it.
type Broker struct {
	NodeID      int32    `msgpack:"node_id"`
	Incarnation [16]byte `msgpack:"incarnation"`
	Listener    string   `msgpack:"listener"`
	RaftAddr    string   `msgpack:"raft_addr"`
	Epoch       int64    `msgpack:"epoch"`
	Fenced      bool     `msgpack:"fenced"`
}

// Partition is one partition of a topic. Replicas and ISR are shared
// between images and must not be modified.
type Partition struct {
	Index       int32   `msgpack:"index"`
	Replicas    []int32 `msgpack:"replicas"`
	Leader      int32   `msgpack:"leader"`
	LeaderEpoch int32   `msgpack:"leader_epoch"`
	// ISR is the in-sync replicas, in replica order: all replicas at
	// creation, then as the leader reports them (AlterPartition), less
	// brokers that were fenced or restarted. Never empty.
	ISR []int32 `msgpack:"isr"`
	// PartitionEpoch grows with every change to the partition (KRaft).
	PartitionEpoch int32 `msgpack:"partition_epoch"`
	// ElectPreferred asks the leader to hand leadership to Replicas[0],
	// the preferred leader, once it is caught up: set at creation and by
	// ElectPreferred records, cleared when the preferred replica leads or
	// is fenced out of the ISR.
	ElectPreferred bool `msgpack:"elect_preferred,omitempty"`
	// Adding and Removing are set while the partition is reassigned
	// (KIP-455): Replicas is then the target replicas followed by those
	// being removed; Adding are the target replicas that were not
	// replicas when it (or the reassignment it replaced) began.
	Adding   []int32 `msgpack:"adding,omitempty"`
	Removing []int32 `msgpack:"removing,omitempty"`
}

// Preferred is the partition's preferred leader.
func (p Partition) Preferred() int32 { return p.Replicas[0] }

// Reassigning reports whether a reassignment is in progress.
func (p Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Target is the replicas the partition is to have: Replicas less those
// being removed.
func (p Partition) Target() []int32 {
	if len(p.Removing) == 0 {
		return p.Replicas
	}
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.Removing, r) })
}

// Original is what cancelling a reassignment goes back to: the replicas
// less those being added.
func (p Partition) Original() []int32 {
	if len(p.Adding) == 0 {
		return p.Replicas
	}
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.Adding, r) })
}

// SingleReplicaEpoch is the leader epoch a single-replica partition is
// created led in: it needs no election, its broker keeps the log without
// Raft and leads it from the start (0 means "never led"). Should it gain
// replicas, its Raft group's terms continue from there.
const SingleReplicaEpoch = 1

// Topic is one topic. Its slices and map are shared between images and
// must not be modified.
type Topic struct {
	Name       string            `msgpack:"name"`
	ID         [16]byte          `msgpack:"id"`
	Configs    map[string]string `msgpack:"configs,omitempty"` // explicitly set configs only
	Partitions []Partition       `msgpack:"partitions"`
}

// Image is an immutable snapshot of the cluster metadata. The FSM builds a
// new Image for every applied record (copy-on-write: unchanged brokers and
// topics are shared) and swaps it in atomically, so a reader holding an
// Image sees one consistent state for as long as it likes. Values returned
// by its methods share memory with the image and must not be modified.
type Image struct {
	index          uint64 // Raft index of the last applied record
	brokers        map[int32]*Broker
	topics         map[string]*Topic
	topicsByID     map[[16]byte]*Topic
	nextProducerID int64
	clusterID      string // "" until an InitCluster record
	// changed is closed when a newer image replaces this one.
	changed chan struct{}
}

func emptyImage() *Image {
	return &Image{
		brokers:    map[int32]*Broker{},
		topics:     map[string]*Topic{},
		topicsByID: map[[16]byte]*Topic{},
		changed:    make(chan struct{}),
	}
}

// ClusterID is the id InitCluster fixed, "" before one committed.
func (im *Image) ClusterID() string { return im.clusterID }

// Index is the Raft log index of the last accepted record (rejected ones
// leave the image as it was; 0 for the empty image): a metadata version
// that only grows.
func (im *Image) Index() uint64 { return im.index }

// Changed is closed once a newer image has replaced this one.
func (im *Image) Changed() <-chan struct{} { return im.changed }

// NextProducerID is the first producer id not yet allocated.
func (im *Image) NextProducerID() int64 { return im.nextProducerID }

// Broker returns the broker with the given node id.
func (im *Image) Broker(id int32) (Broker, bool) {
	b, ok := im.brokers[id]
	if !ok {
		return Broker{}, false
	}
	return *b, true
}

// Brokers returns all registered brokers ordered by node id.
func (im *Image) Brokers() []Broker {
	out := make([]Broker, 0, len(im.brokers))
	for _, b := range im.brokers {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Broker) int { return int(a.NodeID) - int(b.NodeID) })
	return out
}

// UnfencedBrokers returns the ids of the brokers in service, ascending.
func (im *Image) UnfencedBrokers() []int32 {
	var out []int32
	for id, b := range im.brokers {
		if !b.Fenced {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Topic returns the topic with the given name.
func (im *Image) Topic(name string) (Topic, bool) {
	t, ok := im.topics[name]
	if !ok {
		return Topic{}, false
	}
	return *t, true
}

// TopicByID returns the topic with the given id.
func (im *Image) TopicByID(id [16]byte) (Topic, bool) {
	t, ok := im.topicsByID[id]
	if !ok {
		return Topic{}, false
	}
	return *t, true
}

// Topics returns all topics ordered by name.
func (im *Image) Topics() []Topic {
	out := make([]Topic, 0, len(im.topics))
	for _, t := range im.topics {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// CheckAssignment validates a manual replica assignment, one replica list
// per partition, against the registered brokers: the FSM applies the same
// rules when the topic or partitions are created.
func (im *Image) CheckAssignment(assign [][]int32) error {
	for i, rs := range assign {
		if len(rs) != len(assign[0]) {
			return errf(ErrInvalidReplicaAssignment, "Partition %d has %d replicas; all partitions must have %d.", i, len(rs), len(assign[0]))
		}
		if err := validateReplicas(int32(i), rs, im.brokers); err != nil {
			return err
		}
	}
	return nil
}

// ReplicaLoad counts the partition replicas each broker hosts, the
// existing load Place balances against.
func (im *Image) ReplicaLoad() map[int32]int {
	load := map[int32]int{}
	for _, t := range im.topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				load[r]++
			}
		}
	}
	return load
}

// builder makes the next image from a base one, copying a map only when
// the first change to it is made.
type builder struct {
	next          *Image
	brokersCopied bool
	topicsCopied  bool
}

func newBuilder(base *Image) *builder {
	next := *base
	next.changed = make(chan struct{})
	return &builder{next: &next}
}

func (b *builder) putBroker(br *Broker) {
	if !b.brokersCopied {
		b.next.brokers = maps.Clone(b.next.brokers)
		b.brokersCopied = true
	}
	b.next.brokers[br.NodeID] = br
}

func (b *builder) copyTopics() {
	if !b.topicsCopied {
		b.next.topics = maps.Clone(b.next.topics)
		b.next.topicsByID = maps.Clone(b.next.topicsByID)
		b.topicsCopied = true
	}
}

func (b *builder) putTopic(t *Topic) {
	b.copyTopics()
	b.next.topics[t.Name] = t
	b.next.topicsByID[t.ID] = t
}

func (b *builder) deleteTopic(t *Topic) {
	b.copyTopics()
	delete(b.next.topics, t.Name)
	delete(b.next.topicsByID, t.ID)
}
