package broker

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/controller"
)

// Admin changes in a cluster go through the controller quorum: any broker
// accepts them and forwards them to the active controller (as Kafka does
// since KIP-590), then waits until its own copy of the image and its local
// replicas show the change, so a client that creates a topic and then asks
// the same broker for it finds it.

// reassign moves partition index of t to replicas through the
// controller, or cancels its reassignment for nil replicas.
func (c *cluster) reassign(t *topic, index int32, replicas []int32, allowRF bool) error {
	ip, ok := imagePartition(c.image(), t.id, index)
	if !ok {
		return errorf(kerr.UnknownTopicOrPartition, "partition %s-%d does not exist", t.name, index)
	}
	if replicas != nil && !allowRF && len(replicas) != len(ip.Target()) {
		return errorf(kerr.InvalidReplicationFactor, "%s-%d has %d replicas, not %d, and the request does not allow changing that",
			t.name, index, len(ip.Target()), len(replicas))
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
	defer cancel()
	// A new partition cannot move before its first leader: only then do
	// all its replicas hold the group's first entry (see openReplica).
	err := c.await(ctx, func() bool {
		ip, _ := imagePartition(c.image(), t.id, index)
		return ip.LeaderEpoch > 0
	})
	if err != nil {
		return errorf(kerr.LeaderNotAvailable, "partition %s-%d has not elected its first leader yet", t.name, index)
	}
	err = c.remote.Reassign(ctx, controller.Reassign{TopicID: t.id, Partition: index, Target: replicas, Cancel: replicas == nil})
	return controllerError(err)
}

// image is this broker's copy of the metadata image.
func (c *cluster) image() *controller.Image { return c.ctl.Image() }

// adminTimeout bounds one forwarded metadata change.
const adminTimeout = 10 * time.Second

// createTopic creates a topic through the controller and returns its id
// once this broker's metadata has it. The controller places partitions×rf
// replicas, or takes assign's if it is not nil.
func (c *cluster) createTopic(name string, partitions int32, rf int16, configs map[string]string, assign [][]int32) ([16]byte, error) {
	if err := validateTopicName(name); err != nil {
		return [16]byte{}, errorf(kerr.InvalidTopicException, "%v", err)
	}
	if err := c.b.checkPartitionCount(partitions); err != nil {
		return [16]byte{}, err
	}
	if err := validateConfigs(configs); err != nil {
		return [16]byte{}, err
	}
	if rf == -1 {
		rf = c.b.cfg.DefaultReplicationFactor
	}
	if rf < 1 {
		return [16]byte{}, errorf(kerr.InvalidReplicationFactor, "replication factor %d must be at least 1", rf)
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
	defer cancel()
	var id [16]byte
	var err error
	if assign != nil {
		id, err = c.remote.CreateTopicAssigned(ctx, name, assign, configs)
	} else {
		id, err = c.remote.CreateTopic(ctx, name, int(partitions), int(rf), configs)
	}
	if err != nil {
		return id, controllerError(err)
	}
	return id, c.await(ctx, func() bool {
		t := c.b.lookupTopic(name)
		return t != nil && t.id == id
	})
}

// deleteTopic deletes a topic through the controller.
func (c *cluster) deleteTopic(name string) error {
	t := c.b.knownTopic(name)
	switch {
	case t == nil:
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	case t.internal:
		return errorf(kerr.InvalidRequest, "topic %q is internal and cannot be deleted", name)
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
	defer cancel()
	if err := c.remote.DeleteTopic(ctx, t.id); err != nil {
		return controllerError(err)
	}
	return c.await(ctx, func() bool {
		now := c.b.lookupTopic(name)
		return now == nil || now.id != t.id
	})
}

// addPartitions grows a topic through the controller, which places the
// new replicas unless assign (one list per new partition) is not nil.
func (c *cluster) addPartitions(t *topic, total int32, assign [][]int32) error {
	ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
	defer cancel()
	var err error
	if assign != nil {
		err = c.remote.CreatePartitionsAssigned(ctx, t.id, int(total), assign)
	} else {
		err = c.remote.CreatePartitions(ctx, t.id, int(total))
	}
	if err != nil {
		return controllerError(err)
	}
	return c.await(ctx, func() bool {
		now := c.b.lookupTopic(t.name)
		return now != nil && len(now.parts) >= int(total)
	})
}

// setConfigs replaces a topic's explicit configs through the controller.
func (c *cluster) setConfigs(name string, configs map[string]string, validateOnly bool) error {
	if err := validateConfigs(configs); err != nil {
		return err
	}
	t := c.b.knownTopic(name)
	switch {
	case t == nil:
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	case validateOnly:
		return nil
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
	defer cancel()
	if err := c.remote.AlterConfigs(ctx, t.id, configs); err != nil {
		return controllerError(err)
	}
	return c.await(ctx, func() bool {
		now := c.b.lookupTopic(t.name)
		return now != nil && maps.Equal(now.configs, configs)
	})
}

// producerIDBlockSize is how many producer ids a broker reserves per
// controller round trip.
const producerIDBlockSize = 1000

// allocateProducerID hands out ids from a block the controller reserved
// for this broker, so ids are unique across the cluster.
func (c *cluster) allocateProducerID() (int64, error) {
	c.pidMu.Lock()
	defer c.pidMu.Unlock()
	if c.pidNext >= c.pidEnd {
		ctx, cancel := context.WithTimeout(c.b.ctx, adminTimeout)
		defer cancel()
		blk, err := c.remote.AllocateProducerIDs(ctx, producerIDBlockSize)
		if err != nil {
			return 0, err
		}
		c.pidNext, c.pidEnd = blk.Start, blk.Start+blk.Size
	}
	id := c.pidNext
	c.pidNext++
	return id, nil
}

// catchUpTimeout bounds catchUp.
const catchUpTimeout = 2 * time.Second

// catchUp waits until this broker's image (and its local replicas) hold
// every metadata change the active controller has acknowledged
// (Controller.ReadIndex). Metadata reaches brokers a moment after the
// controller commits it, so without this a client that creates a topic
// through one broker and then asks another about it can be told it does
// not exist. It reports whether it caught up; it costs a round trip to
// the controller, so it is for names not found locally, not every lookup.
func (c *cluster) catchUp() bool {
	ctx, cancel := context.WithTimeout(c.b.ctx, catchUpTimeout)
	defer cancel()
	index, err := c.remote.ReadIndex(ctx)
	if err != nil {
		return false
	}
	return c.await(ctx, func() bool {
		return c.ctl.Image().Index() >= index && c.reconciled.Load() >= index
	}) == nil
}

// await polls cond until it holds: the reconcile loop applies image changes
// shortly after they commit.
func (c *cluster) await(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return errorf(kerr.RequestTimedOut, "the change committed but this broker has not applied it yet")
		case <-tick.C:
		}
	}
	return nil
}

// controllerError maps a controller rejection to the Kafka error a client
// acts on, keeping the controller's message.
func controllerError(err error) error {
	if err == nil {
		return nil
	}
	codes := []struct {
		kind error
		code *kerr.Error
	}{
		{controller.ErrTopicExists, kerr.TopicAlreadyExists},
		{controller.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
		{controller.ErrInvalidTopic, kerr.InvalidTopicException},
		{controller.ErrInvalidPartitions, kerr.InvalidPartitions},
		{controller.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
		{controller.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
		{controller.ErrInvalidConfig, kerr.InvalidConfig},
		{controller.ErrInvalidRequest, kerr.InvalidRequest},
		{controller.ErrNoReassignment, kerr.NoReassignmentInProgress},
		{controller.ErrNotController, kerr.NotController},
		{context.DeadlineExceeded, kerr.RequestTimedOut},
		{context.Canceled, kerr.RequestTimedOut},
	}
	for _, k := range codes {
		if errors.Is(err, k.kind) {
			return errorf(k.code, "%v", err)
		}
	}
	return errorf(kerr.UnknownServerError, "%v", err)
}
