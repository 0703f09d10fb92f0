package controller

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// ErrNotController is matched (errors.Is) by every error returned because
// this node is not the Raft leader of the controller group. The error is a
// *NotControllerError carrying the leader, if one is known, so the broker
// can forward the request or answer NOT_CONTROLLER.
var ErrNotController = errors.New("not the active controller")

// NotControllerError says who the controller is, as far as this node
// knows (empty when there is no leader right now).
type NotControllerError struct {
	LeaderAddr raft.ServerAddress
	LeaderID   raft.ServerID
}

func (e *NotControllerError) Error() string {
	if e.LeaderAddr == "" {
		return "controller: not the active controller; no leader is known"
	}
	return fmt.Sprintf("controller: not the active controller; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

func (e *NotControllerError) Is(target error) bool { return target == ErrNotController }

// DefaultApplyTimeout bounds how long a Controller method waits for its
// record to be committed and applied.
const DefaultApplyTimeout = 5 * time.Second

// Controller proposes metadata records through Raft. Its methods only
// succeed on the leader; elsewhere they return a *NotControllerError.
// Methods check what they can against the local image first for a quick
// answer, but the FSM validates every record again when it is applied,
// which is what makes concurrent proposals safe.
type Controller struct {
	raft *raft.Raft
	fsm  *FSM
	// ApplyTimeout bounds each proposal; DefaultApplyTimeout if zero.
	ApplyTimeout time.Duration
	// caughtUpTerm is the last Raft term in which a barrier proved the
	// local image holds everything committed by earlier leaders.
	caughtUpTerm atomic.Uint64
}

// New returns a Controller proposing through r, whose FSM is fsm.
func New(r *raft.Raft, fsm *FSM) *Controller {
	return &Controller{raft: r, fsm: fsm, ApplyTimeout: DefaultApplyTimeout}
}

// Image is the local replica's current metadata image.
func (c *Controller) Image() *Image { return c.fsm.Image() }

func (c *Controller) notController() error {
	addr, id := c.raft.LeaderWithID()
	return &NotControllerError{LeaderAddr: addr, LeaderID: id}
}

// apply proposes rec and returns the FSM's result. ErrLeadershipLost is
// reported as not-controller, but note the record may still commit under
// the next leader: callers retrying must tolerate that (creates then fail
// with ErrTopicExists, registrations with the same incarnation are
// idempotent).
func (c *Controller) apply(rec Record) (Result, error) {
	if c.raft.State() != raft.Leader {
		return Result{}, c.notController()
	}
	data, err := Encode(rec)
	if err != nil {
		return Result{}, err
	}
	timeout := c.timeout()
	f := c.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if err = c.applyErr(err); errors.Is(err, ErrNotController) {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("controller: apply %s: %w", rec.Type(), err)
	}
	res, ok := f.Response().(Result)
	if !ok {
		return Result{}, fmt.Errorf("controller: apply %s: unexpected response %T", rec.Type(), f.Response())
	}
	return res, res.Err
}

func (c *Controller) timeout() time.Duration {
	if c.ApplyTimeout <= 0 {
		return DefaultApplyTimeout
	}
	return c.ApplyTimeout
}

func (c *Controller) applyErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return c.notController()
	}
	return err
}

// leaderImage returns the local image once this node is the leader and
// has applied every entry committed before its term, so that decisions
// taken from it (placement, quick rejections) see what earlier leaders
// did. The first call in a term costs one Barrier.
func (c *Controller) leaderImage() (*Image, error) {
	if c.raft.State() != raft.Leader {
		return nil, c.notController()
	}
	term := c.raft.CurrentTerm()
	if c.caughtUpTerm.Load() != term {
		if err := c.raft.Barrier(c.timeout()).Error(); err != nil {
			if err = c.applyErr(err); errors.Is(err, ErrNotController) {
				return nil, err
			}
			return nil, fmt.Errorf("controller: barrier: %w", err)
		}
		c.caughtUpTerm.Store(term)
	}
	return c.Image(), nil
}

// RegisterBroker registers a broker process and returns its broker epoch.
// The broker starts fenced.
func (c *Controller) RegisterBroker(nodeID int32, incarnation [16]byte, listener, raftAddr string) (int64, error) {
	res, err := c.apply(&RegisterBroker{NodeID: nodeID, Incarnation: incarnation, Listener: listener, RaftAddr: raftAddr})
	return res.BrokerEpoch, err
}

// UnfenceBroker puts a broker into service; epoch is its current epoch.
func (c *Controller) UnfenceBroker(nodeID int32, epoch int64) error {
	_, err := c.apply(&UnfenceBroker{NodeID: nodeID, Epoch: epoch})
	return err
}

// FenceBroker takes a broker out of service.
func (c *Controller) FenceBroker(nodeID int32, epoch int64) error {
	_, err := c.apply(&FenceBroker{NodeID: nodeID, Epoch: epoch})
	return err
}

// CreateTopic places partitions×rf replicas on the unfenced brokers and
// creates the topic with a new random id, which it returns.
func (c *Controller) CreateTopic(name string, partitions, rf int, configs map[string]string) ([16]byte, error) {
	return c.createTopic(name, configs, func(img *Image) ([][]int32, error) {
		return Place(img.UnfencedBrokers(), partitions, rf, img.ReplicaLoad())
	})
}

// CreateTopicAssigned creates a topic whose partition i has the replicas
// assign[i], the first being its preferred leader (Kafka's manual replica
// assignment). The brokers must be registered, not necessarily in service.
func (c *Controller) CreateTopicAssigned(name string, assign [][]int32, configs map[string]string) ([16]byte, error) {
	return c.createTopic(name, configs, func(*Image) ([][]int32, error) { return assign, nil })
}

func (c *Controller) createTopic(name string, configs map[string]string, place func(*Image) ([][]int32, error)) ([16]byte, error) {
	if err := validateTopicName(name); err != nil {
		return [16]byte{}, err
	}
	img, err := c.leaderImage()
	if err != nil {
		return [16]byte{}, err
	}
	if _, ok := img.Topic(name); ok {
		return [16]byte{}, errf(ErrTopicExists, "Topic '%s' already exists.", name)
	}
	placed, err := place(img)
	if err != nil {
		return [16]byte{}, err
	}
	if len(placed) == 0 {
		return [16]byte{}, errf(ErrInvalidPartitions, "Number of partitions must be larger than 0.")
	}
	rec := &CreateTopic{Name: name, ID: newTopicID(), Configs: configs, Partitions: assignments(0, placed)}
	if _, err := c.apply(rec); err != nil {
		return [16]byte{}, err
	}
	return rec.ID, nil
}

// DeleteTopic deletes the topic with the given id.
func (c *Controller) DeleteTopic(id [16]byte) error {
	_, err := c.apply(&DeleteTopic{ID: id})
	return err
}

// CreatePartitions grows a topic to total partitions, placing the new
// ones with the topic's replication factor.
func (c *Controller) CreatePartitions(id [16]byte, total int) error {
	return c.createPartitions(id, total, func(img *Image, n, rf int) ([][]int32, error) {
		return Place(img.UnfencedBrokers(), n, rf, img.ReplicaLoad())
	})
}

// CreatePartitionsAssigned grows a topic to total partitions, the i-th
// new one with the replicas assign[i] (one list per new partition).
func (c *Controller) CreatePartitionsAssigned(id [16]byte, total int, assign [][]int32) error {
	return c.createPartitions(id, total, func(_ *Image, n, _ int) ([][]int32, error) {
		if n != len(assign) {
			return nil, errf(ErrInvalidReplicaAssignment, "%d assignments given for %d new partitions.", len(assign), n)
		}
		return assign, nil
	})
}

func (c *Controller) createPartitions(id [16]byte, total int, place func(img *Image, n, rf int) ([][]int32, error)) error {
	img, err := c.leaderImage()
	if err != nil {
		return err
	}
	t, ok := img.TopicByID(id)
	if !ok {
		return errf(ErrUnknownTopic, "Topic id %x does not exist.", id)
	}
	have := len(t.Partitions)
	switch {
	case total <= have:
		return errf(ErrInvalidPartitions, "Topic currently has %d partitions, %d would not be an increase.", have, total)
	case total > MaxPartitions:
		return errf(ErrInvalidPartitions, "Number of partitions %d exceeds the limit of %d.", total, MaxPartitions)
	}
	placed, err := place(img, total-have, len(t.Partitions[0].Target()))
	if err != nil {
		return err
	}
	_, err = c.apply(&CreatePartitions{TopicID: id, New: assignments(int32(have), placed)})
	return err
}

// AlterConfigs replaces the topic's explicitly set configs with configs.
func (c *Controller) AlterConfigs(id [16]byte, configs map[string]string) error {
	_, err := c.apply(&AlterConfigs{TopicID: id, Configs: configs})
	return err
}

// ReportLeader records the leader a partition's Raft group elected in
// leaderEpoch (the group's term).
func (c *Controller) ReportLeader(topicID [16]byte, partition, leader, leaderEpoch int32) error {
	_, err := c.apply(&PartitionChange{TopicID: topicID, Partition: partition, Leader: leader, LeaderEpoch: leaderEpoch})
	return err
}

// ReadIndex is the active controller's image index (Image.Index): a
// broker whose image has reached it holds every change acknowledged so
// far, as etcd's read index. The leader first applies what earlier
// leaders committed (leaderImage's barrier; its own changes are
// acknowledged only once applied) and then confirms with a quorum that it
// still leads: a deposed leader that has not noticed yet would answer with
// an index missing changes its successor acknowledged. Raft's own applied
// index would not do: it moves when entries are handed to the FSM, before
// they are in the image.
func (c *Controller) ReadIndex() (uint64, error) {
	img, err := c.leaderImage()
	if err != nil {
		return 0, err
	}
	index := img.Index()
	if err := c.raft.VerifyLeader().Error(); err != nil {
		return 0, c.applyErr(err)
	}
	return index, nil
}

// AlterPartition records a partition leader's decision about its ISR.
func (c *Controller) AlterPartition(a AlterPartition) error {
	_, err := c.apply(&a)
	return err
}

// AddNonvoter adds a broker-only node to the controller group as a
// non-voting member: it receives the metadata log (and heartbeats, which
// decide its fencing) without counting towards the quorum. A voter stays
// a voter.
func (c *Controller) AddNonvoter(nodeID int32, raftAddr string) error {
	if c.raft.State() != raft.Leader {
		return c.notController()
	}
	if err := validateHostPort("raft address", raftAddr); err != nil {
		return err
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return c.applyErr(err)
	}
	id := raft.ServerID(strconv.Itoa(int(nodeID)))
	for _, s := range cf.Configuration().Servers {
		if s.ID == id && s.Suffrage == raft.Voter {
			return errf(ErrInvalidRegistration, "Node %d is a controller voter; it cannot join as a broker-only node.", nodeID)
		}
	}
	return c.applyErr(c.raft.AddNonvoter(id, raft.ServerAddress(raftAddr), 0, c.timeout()).Error())
}

// ElectPreferred asks the leaders of refs to hand leadership to their
// preferred replicas (see the ElectPreferred record).
func (c *Controller) ElectPreferred(refs []PartitionRef) error {
	_, err := c.apply(&ElectPreferred{Partitions: refs})
	return err
}

// Reassign starts, changes or (with a nil Target) cancels a partition's
// reassignment.
func (c *Controller) Reassign(a Reassign) error {
	_, err := c.apply(&a)
	return err
}

// CompleteReassign records that a partition's Raft group has reached its
// target replicas.
func (c *Controller) CompleteReassign(a CompleteReassign) error {
	_, err := c.apply(&a)
	return err
}

// InitCluster fixes the cluster id and raises the next producer id (see
// the InitCluster record). Only the active controller can; brokers call
// it when they find the image without an id.
func (c *Controller) InitCluster(clusterID string, nextProducerID int64) error {
	_, err := c.apply(&InitCluster{ClusterID: clusterID, NextProducerID: nextProducerID})
	return err
}

// ImportTopic creates a topic that exists on disk already, keeping its id:
// the migration of a single node's weir-metadata.json into the image.
func (c *Controller) ImportTopic(name string, id [16]byte, assign [][]int32, configs map[string]string) error {
	_, err := c.apply(&CreateTopic{Name: name, ID: id, Configs: configs, Partitions: assignments(0, assign)})
	return err
}

// AllocateProducerIDs reserves the next block of size producer ids.
func (c *Controller) AllocateProducerIDs(size int64) (ProducerIDBlock, error) {
	res, err := c.apply(&AllocateProducerIDs{BlockSize: size})
	return res.ProducerIDs, err
}

func assignments(first int32, placed [][]int32) []PartitionAssignment {
	as := make([]PartitionAssignment, len(placed))
	for i, rs := range placed {
		as[i] = PartitionAssignment{Index: first + int32(i), Replicas: rs}
	}
	return as
}

// newTopicID returns a random version 4 UUID. Randomness stays out of the
// FSM: the id travels in the record.
func newTopicID() [16]byte {
	var id [16]byte
	rand.Read(id[:]) // never fails (crypto/rand)
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}
