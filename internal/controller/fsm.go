package controller

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// Limits that keep one record (and a hostile snapshot) bounded.
const (
	MaxPartitions        = 1 << 16 // per topic
	MaxReplicationFactor = 32
	MaxProducerIDBlock   = 1 << 20
	maxConfigs           = 1024
	maxTopicNameLen      = 249 // Kafka: 255 minus room for a partition suffix
	maxClusterIDLen      = 64
)

// ProducerIDBlock is the half-open range [Start, Start+Size) of producer
// ids reserved by one AllocateProducerIDs record.
type ProducerIDBlock struct {
	Start int64
	Size  int64
}

// Result is what FSM.Apply returns for every record, reaching the caller
// through raft's ApplyFuture.Response. Err is nil or an *Error; the other
// fields are set by the record types that assign something.
type Result struct {
	Err         error
	BrokerEpoch int64           // RegisterBroker
	ProducerIDs ProducerIDBlock // AllocateProducerIDs
}

// FSM is the controller's raft.FSM: it applies metadata records to an
// Image. Apply, Snapshot and Restore are called by raft on one goroutine;
// Image may be called from any goroutine at any time.
type FSM struct {
	mu  sync.Mutex // serializes writers when used outside raft (tests)
	img atomic.Pointer[Image]
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM holding the empty image.
func NewFSM() *FSM {
	f := &FSM{}
	f.img.Store(emptyImage())
	return f
}

// Image returns the current image; it never changes once returned.
func (f *FSM) Image() *Image { return f.img.Load() }

func (f *FSM) publish(next *Image) {
	old := f.img.Swap(next)
	close(old.changed)
}

// Apply decodes and applies one log entry and returns a Result. A record
// that fails validation leaves the image unchanged; the decision depends
// only on the image and the entry, so every replica decides the same.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, err := Decode(l.Data)
	if err != nil {
		return Result{Err: errf(ErrInvalidRequest, "%v", err)}
	}
	b := newBuilder(f.img.Load())
	res := b.apply(rec, l.Index)
	if res.Err == nil {
		b.next.index = l.Index
		f.publish(b.next)
	}
	return res
}

func (b *builder) apply(rec Record, index uint64) Result {
	switch r := rec.(type) {
	case *RegisterBroker:
		return b.registerBroker(r, index)
	case *FenceBroker:
		return Result{Err: b.setFenced(r.NodeID, r.Epoch, true)}
	case *UnfenceBroker:
		return Result{Err: b.setFenced(r.NodeID, r.Epoch, false)}
	case *CreateTopic:
		return Result{Err: b.createTopic(r)}
	case *DeleteTopic:
		t, ok := b.next.topicsByID[r.ID]
		if !ok {
			return Result{Err: errf(ErrUnknownTopic, "Topic id %x does not exist.", r.ID)}
		}
		b.deleteTopic(t)
		return Result{}
	case *CreatePartitions:
		return Result{Err: b.createPartitions(r)}
	case *AlterConfigs:
		t, ok := b.next.topicsByID[r.TopicID]
		if !ok {
			return Result{Err: errf(ErrUnknownTopic, "Topic id %x does not exist.", r.TopicID)}
		}
		if err := validateConfigs(r.Configs); err != nil {
			return Result{Err: err}
		}
		nt := *t
		nt.Configs = r.Configs
		if len(nt.Configs) == 0 {
			nt.Configs = nil
		}
		b.putTopic(&nt)
		return Result{}
	case *PartitionChange:
		return Result{Err: b.partitionChange(r)}
	case *AllocateProducerIDs:
		return b.allocateProducerIDs(r)
	case *AlterPartition:
		return Result{Err: b.alterPartition(r)}
	case *ElectPreferred:
		return Result{Err: b.electPreferred(r)}
	case *Reassign:
		return Result{Err: b.reassign(r)}
	case *CompleteReassign:
		return Result{Err: b.completeReassign(r)}
	case *InitCluster:
		return Result{Err: b.initCluster(r)}
	}
	return Result{Err: errf(ErrInvalidRequest, "record type %T is not supported", rec)}
}

func (b *builder) registerBroker(r *RegisterBroker, index uint64) Result {
	if r.NodeID < 0 {
		return Result{Err: errf(ErrInvalidRegistration, "Node id %d is negative.", r.NodeID)}
	}
	if r.Incarnation == ([16]byte{}) {
		return Result{Err: errf(ErrInvalidRegistration, "Broker %d registered without an incarnation id.", r.NodeID)}
	}
	if err := validateHostPort("listener", r.Listener); err != nil {
		return Result{Err: err}
	}
	if err := validateHostPort("raft address", r.RaftAddr); err != nil {
		return Result{Err: err}
	}
	if old, ok := b.next.brokers[r.NodeID]; ok && old.Incarnation == r.Incarnation {
		if old.Listener != r.Listener || old.RaftAddr != r.RaftAddr {
			return Result{Err: errf(ErrInvalidRegistration,
				"Broker %d re-registered incarnation %x with different addresses.", r.NodeID, r.Incarnation)}
		}
		// A retry of the same registration: same epoch, nothing changes.
		return Result{BrokerEpoch: old.Epoch}
	}
	if index > math.MaxInt64 {
		return Result{Err: errf(ErrInvalidRequest, "log index %d out of range", index)}
	}
	// A new incarnation has not caught up with anything yet.
	b.leaveISRs(r.NodeID)
	br := &Broker{
		NodeID:      r.NodeID,
		Incarnation: r.Incarnation,
		Listener:    r.Listener,
		RaftAddr:    r.RaftAddr,
		Epoch:       int64(index),
		Fenced:      true,
	}
	b.putBroker(br)
	return Result{BrokerEpoch: br.Epoch}
}

func (b *builder) setFenced(id int32, epoch int64, fenced bool) error {
	old, ok := b.next.brokers[id]
	if !ok {
		return errf(ErrUnknownBroker, "Broker %d is not registered.", id)
	}
	if epoch != old.Epoch {
		return errf(ErrStaleBrokerEpoch, "Broker %d epoch %d does not match its current epoch %d.", id, epoch, old.Epoch)
	}
	if old.Fenced == fenced {
		return nil
	}
	nb := *old
	nb.Fenced = fenced
	b.putBroker(&nb)
	if fenced {
		b.leaveISRs(id)
	}
	return nil
}

// leaveISRs takes a broker out of the ISR of every partition listing it,
// as KRaft does when a broker is fenced: its leader must see it catch up
// again to put it back. The last member stays (an ISR is never empty: it
// names the replicas that had everything when the partition was last
// known in sync).
func (b *builder) leaveISRs(id int32) {
	for _, t := range b.next.topics {
		var nt *Topic
		for i, p := range t.Partitions {
			if len(p.ISR) < 2 || !slices.Contains(p.ISR, id) || p.PartitionEpoch == math.MaxInt32 {
				continue
			}
			if nt == nil {
				c := *t
				c.Partitions = slices.Clone(t.Partitions)
				nt = &c
			}
			p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
			if p.Preferred() == id {
				p.ElectPreferred = false // an election is a request of the moment
			}
			p.PartitionEpoch++
			nt.Partitions[i] = p
		}
		if nt != nil {
			b.putTopic(nt)
		}
	}
}

func (b *builder) createTopic(r *CreateTopic) error {
	if err := validateTopicName(r.Name); err != nil {
		return err
	}
	if _, ok := b.next.topics[r.Name]; ok {
		return errf(ErrTopicExists, "Topic '%s' already exists.", r.Name)
	}
	if r.ID == ([16]byte{}) {
		return errf(ErrInvalidRequest, "Topic '%s' has the zero topic id.", r.Name)
	}
	if _, ok := b.next.topicsByID[r.ID]; ok {
		return errf(ErrTopicExists, "Topic id %x is already in use.", r.ID)
	}
	if len(r.Partitions) == 0 {
		return errf(ErrInvalidPartitions, "Number of partitions must be larger than 0.")
	}
	if err := validateConfigs(r.Configs); err != nil {
		return err
	}
	parts, err := b.newPartitions(r.Partitions, 0, len(r.Partitions[0].Replicas))
	if err != nil {
		return err
	}
	t := &Topic{Name: r.Name, ID: r.ID, Configs: r.Configs, Partitions: parts}
	if len(t.Configs) == 0 {
		t.Configs = nil
	}
	b.putTopic(t)
	return nil
}

func (b *builder) createPartitions(r *CreatePartitions) error {
	t, ok := b.next.topicsByID[r.TopicID]
	if !ok {
		return errf(ErrUnknownTopic, "Topic id %x does not exist.", r.TopicID)
	}
	if len(r.New) == 0 {
		return errf(ErrInvalidPartitions, "Topic '%s' already has %d partitions.", t.Name, len(t.Partitions))
	}
	parts, err := b.newPartitions(r.New, len(t.Partitions), len(t.Partitions[0].Target()))
	if err != nil {
		return err
	}
	nt := *t
	nt.Partitions = append(slices.Clip(t.Partitions), parts...)
	b.putTopic(&nt)
	return nil
}

// newPartitions validates assignments for partitions first, first+1, ...
// against the registered brokers and builds them leaderless.
func (b *builder) newPartitions(as []PartitionAssignment, first, rf int) ([]Partition, error) {
	if first+len(as) > MaxPartitions {
		return nil, errf(ErrInvalidPartitions, "Number of partitions %d exceeds the limit of %d.", first+len(as), MaxPartitions)
	}
	parts := make([]Partition, len(as))
	for i, a := range as {
		if a.Index != int32(first+i) {
			return nil, errf(ErrInvalidReplicaAssignment, "Partition %d is assigned where partition %d was expected.", a.Index, first+i)
		}
		if len(a.Replicas) != rf {
			return nil, errf(ErrInvalidReplicaAssignment,
				"Partition %d has %d replicas; all partitions must have the replication factor %d.", a.Index, len(a.Replicas), rf)
		}
		if err := validateReplicas(a.Index, a.Replicas, b.next.brokers); err != nil {
			return nil, err
		}
		// The first leader should be the preferred one, as in Kafka; the
		// partition's Raft group elects whichever replica times out first,
		// so the leader is asked to hand over if that was another.
		parts[i] = Partition{Index: a.Index, Replicas: a.Replicas, Leader: NoLeader, ISR: a.Replicas, ElectPreferred: len(a.Replicas) > 1}
		if len(a.Replicas) == 1 {
			parts[i].Leader, parts[i].LeaderEpoch = a.Replicas[0], SingleReplicaEpoch
		}
	}
	return parts, nil
}

func (b *builder) initCluster(r *InitCluster) error {
	switch {
	case r.ClusterID == "" || len(r.ClusterID) > maxClusterIDLen:
		return errf(ErrInvalidRequest, "Cluster id %q is empty or longer than %d characters.", r.ClusterID, maxClusterIDLen)
	case r.NextProducerID < 0:
		return errf(ErrInvalidRequest, "Next producer id %d is negative.", r.NextProducerID)
	case b.next.clusterID != "" && b.next.clusterID != r.ClusterID:
		return errf(ErrInvalidRequest, "The cluster id is already %s.", b.next.clusterID)
	}
	b.next.clusterID = r.ClusterID
	b.next.nextProducerID = max(b.next.nextProducerID, r.NextProducerID)
	return nil
}

func validateReplicas(index int32, replicas []int32, brokers map[int32]*Broker) error {
	if len(replicas) == 0 || len(replicas) > MaxReplicationFactor {
		return errf(ErrInvalidReplicationFactor, "Partition %d has %d replicas; the replication factor must be between 1 and %d.",
			index, len(replicas), MaxReplicationFactor)
	}
	for i, r := range replicas {
		if _, ok := brokers[r]; !ok {
			return errf(ErrInvalidReplicaAssignment, "Partition %d is assigned to broker %d, which is not registered.", index, r)
		}
		if slices.Contains(replicas[:i], r) {
			return errf(ErrInvalidReplicaAssignment, "Partition %d lists broker %d twice.", index, r)
		}
	}
	return nil
}

// partition looks a partition up by topic id and index.
func (b *builder) partition(id [16]byte, index int32) (*Topic, Partition, error) {
	t, ok := b.next.topicsByID[id]
	if !ok {
		return nil, Partition{}, errf(ErrUnknownTopic, "Topic id %x does not exist.", id)
	}
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, Partition{}, errf(ErrUnknownTopic, "Topic '%s' has no partition %d.", t.Name, index)
	}
	return t, t.Partitions[index], nil
}

// putPartition replaces one partition of t (copy-on-write).
func (b *builder) putPartition(t *Topic, p Partition) {
	nt := *t
	nt.Partitions = slices.Clone(t.Partitions)
	nt.Partitions[p.Index] = p
	b.putTopic(&nt)
}

func (b *builder) partitionChange(r *PartitionChange) error {
	t, p, err := b.partition(r.TopicID, r.Partition)
	if err != nil {
		return err
	}
	if r.Leader != NoLeader && !slices.Contains(p.Replicas, r.Leader) {
		return errf(ErrInvalidRequest, "Broker %d is not a replica of %s-%d.", r.Leader, t.Name, r.Partition)
	}
	switch {
	case r.LeaderEpoch < p.LeaderEpoch:
		return errf(ErrFencedLeaderEpoch, "Leader epoch %d of %s-%d is older than the current epoch %d.",
			r.LeaderEpoch, t.Name, r.Partition, p.LeaderEpoch)
	case r.LeaderEpoch == p.LeaderEpoch:
		if r.Leader == p.Leader {
			return nil // a repeated report
		}
		return errf(ErrFencedLeaderEpoch, "Leader epoch %d of %s-%d already has leader %d, not %d.",
			r.LeaderEpoch, t.Name, r.Partition, p.Leader, r.Leader)
	}
	if p.PartitionEpoch == math.MaxInt32 {
		return errf(ErrInvalidRequest, "Partition epoch of %s-%d is exhausted.", t.Name, r.Partition)
	}
	p.Leader, p.LeaderEpoch = r.Leader, r.LeaderEpoch
	if r.Leader == p.Preferred() {
		p.ElectPreferred = false
	}
	if r.Leader != NoLeader && !slices.Contains(p.ISR, r.Leader) {
		// Raft elects only a replica holding every committed entry.
		p.ISR = inReplicaOrder(p.Replicas, append(slices.Clone(p.ISR), r.Leader))
	}
	p.PartitionEpoch++
	b.putPartition(t, p)
	return nil
}

// alterPartition applies a leader's ISR decision. Every member must be a
// replica on a broker in service, in the epoch the leader saw it caught
// up in; the leader must be the current one and must be a member.
func (b *builder) alterPartition(r *AlterPartition) error {
	t, p, err := b.partition(r.TopicID, r.Partition)
	if err != nil {
		return err
	}
	if err := checkLeaderDecision(t, p, r.Leader, r.LeaderEpoch, r.PartitionEpoch); err != nil {
		return err
	}
	isr := make([]int32, 0, len(r.ISR))
	for _, m := range r.ISR {
		if !slices.Contains(p.Replicas, m.NodeID) || slices.Contains(isr, m.NodeID) {
			return errf(ErrInvalidRequest, "ISR member %d of %s-%d is not a replica or is listed twice.", m.NodeID, t.Name, r.Partition)
		}
		if br, ok := b.next.brokers[m.NodeID]; !ok || br.Fenced || br.Epoch != m.BrokerEpoch {
			return errf(ErrIneligibleReplica, "Broker %d in epoch %d is fenced or no longer registered in that epoch.", m.NodeID, m.BrokerEpoch)
		}
		isr = append(isr, m.NodeID)
	}
	if !slices.Contains(isr, p.Leader) {
		return errf(ErrInvalidRequest, "The ISR of %s-%d must include its leader %d.", t.Name, r.Partition, p.Leader)
	}
	p.ISR = inReplicaOrder(p.Replicas, isr)
	p.PartitionEpoch++
	b.putPartition(t, p)
	return nil
}

// electPreferred marks the partitions whose preferred replica should take
// over: those led by another replica while the preferred one is in the ISR
// on a broker in service. A missing partition refuses the record, so a
// caller learns of a bad reference; the others are skipped.
func (b *builder) electPreferred(r *ElectPreferred) error {
	for _, ref := range r.Partitions {
		if _, _, err := b.partition(ref.TopicID, ref.Partition); err != nil {
			return err
		}
	}
	for _, ref := range r.Partitions {
		t, p, _ := b.partition(ref.TopicID, ref.Partition)
		pref := p.Preferred()
		br, ok := b.next.brokers[pref]
		if p.ElectPreferred || p.Leader == pref || !slices.Contains(p.ISR, pref) || !ok || br.Fenced ||
			p.PartitionEpoch == math.MaxInt32 {
			continue
		}
		p.ElectPreferred = true
		p.PartitionEpoch++
		b.putPartition(t, p)
	}
	return nil
}

// reassign starts, replaces or cancels a partition's reassignment, as
// KRaft does: the replicas become the target followed by every other
// current replica (those a replaced reassignment was adding included),
// which the leader removes; Adding lists the target replicas that are new.
// Cancelling targets the replicas less those being added.
func (b *builder) reassign(r *Reassign) error {
	t, p, err := b.partition(r.TopicID, r.Partition)
	if err != nil {
		return err
	}
	target := r.Target
	if r.Cancel {
		if !p.Reassigning() {
			return errf(ErrNoReassignment, "No reassignment of %s-%d is in progress.", t.Name, r.Partition)
		}
		target = p.Original()
	}
	if err := validateReplicas(r.Partition, target, b.next.brokers); err != nil {
		return err
	}
	switch {
	case p.LeaderEpoch == 0:
		// Its replicas may not all have bootstrapped the Raft group yet;
		// only those of a group that never had a leader bootstrap.
		return errf(ErrInvalidRequest, "Partition %s-%d has not elected its first leader yet.", t.Name, r.Partition)
	case p.PartitionEpoch == math.MaxInt32:
		return errf(ErrInvalidRequest, "Partition epoch of %s-%d is exhausted.", t.Name, r.Partition)
	}
	replicas := slices.Clone(target)
	var adding, removing []int32
	for _, id := range target {
		if !slices.Contains(p.Replicas, id) {
			adding = append(adding, id)
		}
	}
	for _, id := range p.Replicas {
		if !slices.Contains(target, id) {
			replicas = append(replicas, id)
			removing = append(removing, id)
		}
	}
	p.Replicas, p.Adding, p.Removing = replicas, adding, removing
	p.ISR = inReplicaOrder(replicas, p.ISR)
	p.PartitionEpoch++
	b.putPartition(t, p)
	return nil
}

// completeReassign ends a reassignment the partition's leader has carried
// out: the replicas become the target, and the ISR keeps its members
// among them.
func (b *builder) completeReassign(r *CompleteReassign) error {
	t, p, err := b.partition(r.TopicID, r.Partition)
	if err != nil {
		return err
	}
	if err := checkLeaderDecision(t, p, r.Leader, r.LeaderEpoch, r.PartitionEpoch); err != nil {
		return err
	}
	target := p.Target()
	switch {
	case !p.Reassigning():
		return errf(ErrNoReassignment, "No reassignment of %s-%d is in progress.", t.Name, r.Partition)
	case !slices.Contains(target, r.Leader):
		return errf(ErrInvalidRequest, "Leader %d of %s-%d is not one of its target replicas %v.", r.Leader, t.Name, r.Partition, target)
	}
	p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(id int32) bool { return !slices.Contains(target, id) })
	p.Replicas, p.Adding, p.Removing = target, nil, nil
	p.PartitionEpoch++
	b.putPartition(t, p)
	return nil
}

// checkLeaderDecision refuses a change a partition's leader decided unless
// it is the current leader and decided on the current partition epoch, so
// a change made meanwhile is never overwritten by a stale view.
func checkLeaderDecision(t *Topic, p Partition, leader, leaderEpoch, partitionEpoch int32) error {
	switch {
	case leader != p.Leader || leaderEpoch != p.LeaderEpoch:
		return errf(ErrFencedLeaderEpoch, "Broker %d in leader epoch %d is not the leader of %s-%d (broker %d, epoch %d).",
			leader, leaderEpoch, t.Name, p.Index, p.Leader, p.LeaderEpoch)
	case partitionEpoch != p.PartitionEpoch:
		return errf(ErrInvalidUpdateVersion, "Partition epoch %d of %s-%d is not the current epoch %d.",
			partitionEpoch, t.Name, p.Index, p.PartitionEpoch)
	case p.PartitionEpoch == math.MaxInt32:
		return errf(ErrInvalidRequest, "Partition epoch of %s-%d is exhausted.", t.Name, p.Index)
	}
	return nil
}

// inReplicaOrder returns the members of set in the order of replicas.
func inReplicaOrder(replicas, set []int32) []int32 {
	out := make([]int32, 0, len(set))
	for _, r := range replicas {
		if slices.Contains(set, r) {
			out = append(out, r)
		}
	}
	return out
}

func (b *builder) allocateProducerIDs(r *AllocateProducerIDs) Result {
	if r.BlockSize < 1 || r.BlockSize > MaxProducerIDBlock {
		return Result{Err: errf(ErrInvalidRequest, "Producer id block size %d is not between 1 and %d.", r.BlockSize, MaxProducerIDBlock)}
	}
	start := b.next.nextProducerID
	if start > math.MaxInt64-r.BlockSize {
		return Result{Err: errf(ErrInvalidRequest, "Producer ids are exhausted.")}
	}
	b.next.nextProducerID = start + r.BlockSize
	return Result{ProducerIDs: ProducerIDBlock{Start: start, Size: r.BlockSize}}
}

// ValidateTopicName applies Kafka's rules for topic names.
func ValidateTopicName(name string) error { return validateTopicName(name) }

func validateTopicName(name string) error {
	switch {
	case name == "":
		return errf(ErrInvalidTopic, "Topic name is illegal, it can't be empty.")
	case name == "." || name == "..":
		return errf(ErrInvalidTopic, "Topic name cannot be \".\" or \"..\".")
	case len(name) > maxTopicNameLen:
		return errf(ErrInvalidTopic, "Topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLen, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errf(ErrInvalidTopic, "Topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// validateConfigs checks only shape: value rules belong to the broker,
// which validates before it proposes.
func validateConfigs(cs map[string]string) error {
	if len(cs) > maxConfigs {
		return errf(ErrInvalidConfig, "%d configs exceed the limit of %d.", len(cs), maxConfigs)
	}
	for k := range cs {
		if k == "" {
			return errf(ErrInvalidConfig, "A config name is empty.")
		}
	}
	return nil
}

func validateHostPort(what, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err == nil && host == "" {
		err = fmt.Errorf("no host")
	}
	if err == nil {
		var n uint64
		n, err = strconv.ParseUint(port, 10, 16)
		if err == nil && n == 0 {
			err = fmt.Errorf("port 0")
		}
	}
	if err != nil {
		return errf(ErrInvalidRegistration, "Broker %s %q is not host:port: %v.", what, s, err)
	}
	return nil
}

// Snapshot format: magic, one version byte, msgpack of snapshotV1.
const (
	snapshotMagic   = "weirmeta"
	snapshotVersion = 1
)

type snapshotV1 struct {
	Index          uint64   `msgpack:"index"`
	ClusterID      string   `msgpack:"cluster_id,omitempty"`
	NextProducerID int64    `msgpack:"next_producer_id"`
	Brokers        []Broker `msgpack:"brokers"`
	Topics         []Topic  `msgpack:"topics"`
}

// EncodeImage serializes an image in the snapshot format. Equal images
// encode to equal bytes (brokers and topics sorted, map keys sorted).
func EncodeImage(im *Image) ([]byte, error) {
	return encodeSnapshot(&snapshotV1{
		Index:          im.index,
		ClusterID:      im.clusterID,
		NextProducerID: im.nextProducerID,
		Brokers:        im.Brokers(),
		Topics:         im.Topics(),
	})
}

func encodeSnapshot(s *snapshotV1) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	buf.WriteByte(snapshotVersion)
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("controller: encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeImage parses and validates a snapshot. It never panics.
func DecodeImage(b []byte) (*Image, error) {
	if len(b) < len(snapshotMagic)+1 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("controller: not a metadata snapshot")
	}
	if v := b[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("controller: metadata snapshot version %d is not supported", v)
	}
	rd := bytes.NewReader(b[len(snapshotMagic)+1:])
	var s snapshotV1
	if err := msgpack.NewDecoder(rd).Decode(&s); err != nil {
		return nil, fmt.Errorf("controller: corrupt metadata snapshot: %w", err)
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("controller: corrupt metadata snapshot: %d trailing bytes", rd.Len())
	}
	im := emptyImage()
	im.index = s.Index
	if s.NextProducerID < 0 {
		return nil, fmt.Errorf("controller: corrupt metadata snapshot: next producer id %d", s.NextProducerID)
	}
	im.nextProducerID = s.NextProducerID
	if len(s.ClusterID) > maxClusterIDLen {
		return nil, fmt.Errorf("controller: corrupt metadata snapshot: cluster id of %d bytes", len(s.ClusterID))
	}
	im.clusterID = s.ClusterID
	for i := range s.Brokers {
		br := &s.Brokers[i]
		if br.NodeID < 0 || br.Epoch < 0 {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: broker %d epoch %d", br.NodeID, br.Epoch)
		}
		if _, dup := im.brokers[br.NodeID]; dup {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: broker %d twice", br.NodeID)
		}
		im.brokers[br.NodeID] = br
	}
	for i := range s.Topics {
		t := &s.Topics[i]
		if err := validateTopicName(t.Name); err != nil {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: %w", err)
		}
		if _, dup := im.topics[t.Name]; dup {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q twice", t.Name)
		}
		if _, dup := im.topicsByID[t.ID]; dup || t.ID == ([16]byte{}) {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q id %x", t.Name, t.ID)
		}
		if err := validateConfigs(t.Configs); err != nil {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q: %w", t.Name, err)
		}
		if len(t.Configs) == 0 {
			t.Configs = nil
		}
		if len(t.Partitions) == 0 || len(t.Partitions) > MaxPartitions {
			return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q has %d partitions", t.Name, len(t.Partitions))
		}
		for j, p := range t.Partitions {
			if p.Index != int32(j) || !validReassignment(p) ||
				p.LeaderEpoch < 0 || p.PartitionEpoch < 0 ||
				p.Leader != NoLeader && !slices.Contains(p.Replicas, p.Leader) {
				return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q partition %d", t.Name, j)
			}
			if err := validateReplicas(p.Index, p.Replicas, im.brokers); err != nil {
				return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q: %w", t.Name, err)
			}
			if err := validateISR(&t.Partitions[j]); err != nil {
				return nil, fmt.Errorf("controller: corrupt metadata snapshot: topic %q: %w", t.Name, err)
			}
		}
		im.topics[t.Name] = t
		im.topicsByID[t.ID] = t
	}
	return im, nil
}

// validateISR checks a snapshot's ISR: replicas, each once, in replica
// order. Images written before ISRs were kept have none: every replica
// counts as in sync, as at creation.
// validReassignment checks that Adding and Removing are disjoint sets of
// replicas and leave at least one target replica.
func validReassignment(p Partition) bool {
	for _, id := range p.Adding {
		if !slices.Contains(p.Replicas, id) || slices.Contains(p.Removing, id) {
			return false
		}
	}
	for _, id := range p.Removing {
		if !slices.Contains(p.Replicas, id) {
			return false
		}
	}
	return len(p.Target()) > 0
}

func validateISR(p *Partition) error {
	if len(p.ISR) == 0 {
		p.ISR = p.Replicas
		return nil
	}
	if !slices.Equal(p.ISR, inReplicaOrder(p.Replicas, p.ISR)) {
		return fmt.Errorf("partition %d has ISR %v, not a subset of its replicas %v in their order", p.Index, p.ISR, p.Replicas)
	}
	return nil
}

// Snapshot captures the current image; encoding happens in Persist, off
// the FSM goroutine, which is safe because images are immutable.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{img: f.img.Load()}, nil
}

// Restore replaces the image with the one in the snapshot. On error the
// current image is kept.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("controller: read snapshot: %w", err)
	}
	im, err := DecodeImage(raw)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publish(im)
	return nil
}

type fsmSnapshot struct{ img *Image }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	raw, err := EncodeImage(s.img)
	if err == nil {
		_, err = sink.Write(raw)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
