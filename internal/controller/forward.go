package controller

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// Forwarding. hashicorp/raft only accepts proposals on the leader, but any
// broker may need a metadata change: a Metadata request auto-creating a
// topic, an InitProducerId needing a producer-id block, a partition group
// reporting its new leader. Remote runs a Controller method locally when
// this node leads and otherwise sends the call to the leader over a
// connection of its own (one raftmux group serves them), where Serve runs
// it. Calls are forwarded, not records: placement and the leader barrier
// must use the leader's image.

// ForwardGroup is the raftmux group name Serve listens on.
const ForwardGroup = "controller-forward"

// maxFrame bounds a forwarded call or reply; a topic's configs are small.
const maxFrame = 1 << 20

// call is one forwarded Controller method call.
type call struct {
	Op          string            `msgpack:"op"`
	Name        string            `msgpack:"name,omitempty"`
	Partitions  int               `msgpack:"partitions,omitempty"`
	RF          int               `msgpack:"rf,omitempty"`
	Configs     map[string]string `msgpack:"configs,omitempty"`
	TopicID     [16]byte          `msgpack:"topic_id"`
	Partition   int32             `msgpack:"partition,omitempty"`
	NodeID      int32             `msgpack:"node_id,omitempty"`
	Epoch       int64             `msgpack:"epoch,omitempty"`
	Size        int64             `msgpack:"size,omitempty"`
	Incarnation [16]byte          `msgpack:"incarnation"`
	Listener    string            `msgpack:"listener,omitempty"`
	RaftAddr    string            `msgpack:"raft_addr,omitempty"`
	Alter       *AlterPartition   `msgpack:"alter,omitempty"`
	Assign      [][]int32         `msgpack:"assign,omitempty"`
	Refs        []PartitionRef    `msgpack:"refs,omitempty"`
	Reassign    *Reassign         `msgpack:"reassign,omitempty"`
	Complete    *CompleteReassign `msgpack:"complete,omitempty"`
}

// reply is a forwarded call's outcome.
type reply struct {
	NotController bool     `msgpack:"not_controller,omitempty"`
	Kind          int      `msgpack:"kind,omitempty"` // 1 + index in kinds; 0: not an *Error
	Msg           string   `msgpack:"msg,omitempty"`
	TopicID       [16]byte `msgpack:"topic_id"`
	BrokerEpoch   int64    `msgpack:"broker_epoch,omitempty"`
	PIDStart      int64    `msgpack:"pid_start,omitempty"`
	PIDSize       int64    `msgpack:"pid_size,omitempty"`
	Index         uint64   `msgpack:"index,omitempty"`
}

// kinds lists the sentinels an *Error may carry, so they survive the trip.
var kinds = []error{
	ErrTopicExists, ErrUnknownTopic, ErrInvalidTopic, ErrInvalidPartitions,
	ErrInvalidReplicationFactor, ErrInvalidReplicaAssignment, ErrInvalidConfig,
	ErrUnknownBroker, ErrInvalidRegistration, ErrStaleBrokerEpoch,
	ErrFencedLeaderEpoch, ErrInvalidRequest, ErrIneligibleReplica, ErrInvalidUpdateVersion,
	ErrNoReassignment,
}

// dispatch runs c on this node's Controller.
func (c *Controller) dispatch(in call) reply {
	var out reply
	var err error
	switch in.Op {
	case "create_topic":
		out.TopicID, err = c.CreateTopic(in.Name, in.Partitions, in.RF, in.Configs)
	case "delete_topic":
		err = c.DeleteTopic(in.TopicID)
	case "create_topic_assigned":
		out.TopicID, err = c.CreateTopicAssigned(in.Name, in.Assign, in.Configs)
	case "create_partitions":
		err = c.CreatePartitions(in.TopicID, in.Partitions)
	case "create_partitions_assigned":
		err = c.CreatePartitionsAssigned(in.TopicID, in.Partitions, in.Assign)
	case "alter_configs":
		err = c.AlterConfigs(in.TopicID, in.Configs)
	case "report_leader":
		err = c.ReportLeader(in.TopicID, in.Partition, in.NodeID, int32(in.Epoch))
	case "read_index":
		out.Index, err = c.ReadIndex()
	case "alter_partition":
		if in.Alter == nil {
			err = errf(ErrInvalidRequest, "alter_partition without a body")
			break
		}
		err = c.AlterPartition(*in.Alter)
	case "elect_preferred":
		err = c.ElectPreferred(in.Refs)
	case "add_nonvoter":
		err = c.AddNonvoter(in.NodeID, in.RaftAddr)
	case "reassign":
		if in.Reassign == nil {
			err = errf(ErrInvalidRequest, "reassign without a body")
			break
		}
		err = c.Reassign(*in.Reassign)
	case "complete_reassign":
		if in.Complete == nil {
			err = errf(ErrInvalidRequest, "complete_reassign without a body")
			break
		}
		err = c.CompleteReassign(*in.Complete)
	case "allocate_producer_ids":
		var b ProducerIDBlock
		b, err = c.AllocateProducerIDs(in.Size)
		out.PIDStart, out.PIDSize = b.Start, b.Size
	case "register_broker":
		out.BrokerEpoch, err = c.RegisterBroker(in.NodeID, in.Incarnation, in.Listener, in.RaftAddr)
	case "fence_broker":
		err = c.FenceBroker(in.NodeID, in.Epoch)
	case "unfence_broker":
		err = c.UnfenceBroker(in.NodeID, in.Epoch)
	default:
		err = errf(ErrInvalidRequest, "unknown forwarded call %q", in.Op)
	}
	if err != nil {
		out.NotController = errors.Is(err, ErrNotController)
		out.Msg = err.Error()
		var e *Error
		if errors.As(err, &e) {
			for i, k := range kinds {
				if e.Kind == k {
					out.Kind = i + 1
				}
			}
		}
	}
	return out
}

func (r reply) err() error {
	switch {
	case r.Msg == "":
		return nil
	case r.Kind > 0 && r.Kind <= len(kinds):
		return &Error{Kind: kinds[r.Kind-1], Msg: r.Msg}
	}
	return errors.New(r.Msg)
}

// Serve answers forwarded calls on ln (the ForwardGroup layer of this
// node's mux) until ln is closed.
func (c *Controller) Serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go c.serveConn(conn)
	}
}

func (c *Controller) serveConn(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(c.timeout() + 5*time.Second))
	var in call
	if err := readFrame(conn, &in); err != nil {
		return
	}
	if writeFrame(conn, c.dispatch(in)) == nil {
		// The caller hangs up once it has the reply. Waiting for that
		// rather than closing first keeps a transport that buffers writes
		// (raftmux under fault injection) from dropping the reply.
		io.Copy(io.Discard, conn)
	}
}

// Dialer opens a connection to the ForwardGroup of the node at addr.
type Dialer func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error)

// Remote is a Controller reachable from any voter.
type Remote struct {
	c    *Controller
	dial Dialer
	// fallback are asked in turn while this node knows no leader (a
	// broker-only node before it has joined the controller group).
	fallback []raft.ServerAddress
	next     atomic.Uint32
}

// NewRemote returns a Remote for the local controller c, dialing the
// leader with dial when c is not the leader, and fallback (the voters) in
// turn while c knows of no leader.
func NewRemote(c *Controller, dial Dialer, fallback ...raft.ServerAddress) *Remote {
	return &Remote{c: c, dial: dial, fallback: fallback}
}

// Controller returns the local controller.
func (r *Remote) Controller() *Controller { return r.c }

// do runs in on the current leader, retrying through elections until ctx
// ends.
func (r *Remote) do(ctx context.Context, in call) (reply, error) {
	backoff := 20 * time.Millisecond
	for {
		out, err := r.try(in)
		if err == nil && !out.NotController {
			return out, out.err()
		}
		if err == nil {
			err = out.err()
		}
		select {
		case <-ctx.Done():
			return reply{}, fmt.Errorf("controller: %s: %w (last: %v)", in.Op, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// try runs in once: locally on the leader, or forwarded to the leader this
// node knows of.
func (r *Remote) try(in call) (reply, error) {
	addr, _ := r.c.raft.LeaderWithID()
	if addr == "" && len(r.fallback) > 0 {
		addr = r.fallback[int(r.next.Add(1))%len(r.fallback)]
	}
	if r.c.raft.State() == raft.Leader || addr == "" {
		return r.c.dispatch(in), nil
	}
	conn, err := r.dial(addr, 2*time.Second)
	if err != nil {
		return reply{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(r.c.timeout() + 5*time.Second))
	if err := writeFrame(conn, in); err != nil {
		return reply{}, err
	}
	var out reply
	err = readFrame(conn, &out)
	return out, err
}

// CreateTopic is Controller.CreateTopic on the leader.
func (r *Remote) CreateTopic(ctx context.Context, name string, partitions, rf int, configs map[string]string) ([16]byte, error) {
	out, err := r.do(ctx, call{Op: "create_topic", Name: name, Partitions: partitions, RF: rf, Configs: configs})
	return out.TopicID, err
}

// CreateTopicAssigned is Controller.CreateTopicAssigned on the leader.
func (r *Remote) CreateTopicAssigned(ctx context.Context, name string, assign [][]int32, configs map[string]string) ([16]byte, error) {
	out, err := r.do(ctx, call{Op: "create_topic_assigned", Name: name, Assign: assign, Configs: configs})
	return out.TopicID, err
}

// DeleteTopic is Controller.DeleteTopic on the leader.
func (r *Remote) DeleteTopic(ctx context.Context, id [16]byte) error {
	_, err := r.do(ctx, call{Op: "delete_topic", TopicID: id})
	return err
}

// CreatePartitions is Controller.CreatePartitions on the leader.
func (r *Remote) CreatePartitions(ctx context.Context, id [16]byte, total int) error {
	_, err := r.do(ctx, call{Op: "create_partitions", TopicID: id, Partitions: total})
	return err
}

// CreatePartitionsAssigned is Controller.CreatePartitionsAssigned on the leader.
func (r *Remote) CreatePartitionsAssigned(ctx context.Context, id [16]byte, total int, assign [][]int32) error {
	_, err := r.do(ctx, call{Op: "create_partitions_assigned", TopicID: id, Partitions: total, Assign: assign})
	return err
}

// AlterConfigs is Controller.AlterConfigs on the leader.
func (r *Remote) AlterConfigs(ctx context.Context, id [16]byte, configs map[string]string) error {
	_, err := r.do(ctx, call{Op: "alter_configs", TopicID: id, Configs: configs})
	return err
}

// ReportLeader is Controller.ReportLeader on the leader.
func (r *Remote) ReportLeader(ctx context.Context, id [16]byte, partition, leader, epoch int32) error {
	_, err := r.do(ctx, call{Op: "report_leader", TopicID: id, Partition: partition, NodeID: leader, Epoch: int64(epoch)})
	return err
}

// ReadIndex is Controller.ReadIndex on the leader.
func (r *Remote) ReadIndex(ctx context.Context) (uint64, error) {
	out, err := r.do(ctx, call{Op: "read_index"})
	return out.Index, err
}

// AlterPartition is Controller.AlterPartition on the leader.
func (r *Remote) AlterPartition(ctx context.Context, a AlterPartition) error {
	_, err := r.do(ctx, call{Op: "alter_partition", Alter: &a})
	return err
}

// AddNonvoter is Controller.AddNonvoter on the leader.
func (r *Remote) AddNonvoter(ctx context.Context, nodeID int32, raftAddr string) error {
	_, err := r.do(ctx, call{Op: "add_nonvoter", NodeID: nodeID, RaftAddr: raftAddr})
	return err
}

// ElectPreferred is Controller.ElectPreferred on the leader.
func (r *Remote) ElectPreferred(ctx context.Context, refs []PartitionRef) error {
	_, err := r.do(ctx, call{Op: "elect_preferred", Refs: refs})
	return err
}

// Reassign is Controller.Reassign on the leader.
func (r *Remote) Reassign(ctx context.Context, a Reassign) error {
	_, err := r.do(ctx, call{Op: "reassign", Reassign: &a})
	return err
}

// CompleteReassign is Controller.CompleteReassign on the leader.
func (r *Remote) CompleteReassign(ctx context.Context, a CompleteReassign) error {
	_, err := r.do(ctx, call{Op: "complete_reassign", Complete: &a})
	return err
}

// AllocateProducerIDs is Controller.AllocateProducerIDs on the leader.
func (r *Remote) AllocateProducerIDs(ctx context.Context, size int64) (ProducerIDBlock, error) {
	out, err := r.do(ctx, call{Op: "allocate_producer_ids", Size: size})
	return ProducerIDBlock{Start: out.PIDStart, Size: out.PIDSize}, err
}

// RegisterBroker is Controller.RegisterBroker on the leader.
func (r *Remote) RegisterBroker(ctx context.Context, nodeID int32, incarnation [16]byte, listener, raftAddr string) (int64, error) {
	out, err := r.do(ctx, call{Op: "register_broker", NodeID: nodeID, Incarnation: incarnation, Listener: listener, RaftAddr: raftAddr})
	return out.BrokerEpoch, err
}

// FenceBroker is Controller.FenceBroker on the leader.
func (r *Remote) FenceBroker(ctx context.Context, nodeID int32, epoch int64) error {
	_, err := r.do(ctx, call{Op: "fence_broker", NodeID: nodeID, Epoch: epoch})
	return err
}

// UnfenceBroker is Controller.UnfenceBroker on the leader.
func (r *Remote) UnfenceBroker(ctx context.Context, nodeID int32, epoch int64) error {
	_, err := r.do(ctx, call{Op: "unfence_broker", NodeID: nodeID, Epoch: epoch})
	return err
}

// writeFrame writes v as a 4-byte big-endian length and its msgpack.
func writeFrame(w io.Writer, v any) error {
	body, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	_, err = w.Write(append(buf, body...))
	return err
}

// readFrame reads one frame into v, refusing frames over maxFrame.
func readFrame(rd io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(rd, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return fmt.Errorf("controller: forwarded frame of %d bytes exceeds %d", size, maxFrame)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(rd, body); err != nil {
		return err
	}
	return msgpack.Unmarshal(body, v)
}
