package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/controller"
)

// Election types of ElectLeaders v1+ (KIP-460).
const (
	electPreferred int8 = 0
	electUnclean   int8 = 1
)

// handleElectLeaders serves kafka-leader-election.sh and kadm.ElectLeaders.
// A preferred election answers once the preferred replicas lead (or the
// request's timeout passes). Raft cannot elect an unclean leader: a
// replica missing committed records never wins a vote, so an unclean
// election is refused where it would be needed.
func handleElectLeaders(c *conn, req *kmsg.ElectLeadersRequest) response {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	all := req.Topics == nil
	targets := c.b.electionTargets(req.Topics)
	var errs map[electionTarget]error
	switch {
	case req.ElectionType != electPreferred && req.ElectionType != electUnclean:
		errs = map[electionTarget]error{}
		for _, t := range targets {
			errs[t] = errorf(kerr.InvalidRequest, "election type %d is neither preferred (0) nor unclean (1)", req.ElectionType)
		}
	default:
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		errs = c.b.meta.elect(targets, req.ElectionType, min(max(timeout, time.Second), adminTimeout))
	}
	byTopic := map[string]int{}
	for _, t := range targets {
		err := errs[t]
		if all && errCode(err) == kerr.ElectionNotNeeded.Code {
			continue // asked for everything: list what an election touched
		}
		i, ok := byTopic[t.topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[t.topic] = i
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = t.partition
		rp.ErrorCode = errCode(err)
		rp.ErrorMessage = errMessage(err)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return ready{resp}
}

// electionTarget is one partition named by an ElectLeaders request.
type electionTarget struct {
	topic     string
	partition int32
}

// electionTargets lists the requested partitions once each, or every
// partition of every topic for a null list.
func (b *Broker) electionTargets(topics []kmsg.ElectLeadersRequestTopic) []electionTarget {
	var out []electionTarget
	if topics == nil {
		for _, t := range b.allTopics() {
			for i := range t.parts {
				out = append(out, electionTarget{t.name, int32(i)})
			}
		}
		return out
	}
	for _, rt := range topics {
		for _, p := range rt.Partitions {
			if t := (electionTarget{rt.Topic, p}); !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// elect runs an election in the cluster: it decides from the image which
// partitions need one, asks the controller for the preferred ones, and
// waits up to timeout for their preferred replicas to lead.
func (c *cluster) elect(targets []electionTarget, how int8, timeout time.Duration) map[electionTarget]error {
	errs := map[electionTarget]error{}
	img := c.ctl.Image()
	want := map[electionTarget]controller.PartitionRef{}
	for _, t := range targets {
		it, newer, ok := c.topicCaughtUp(img, func(im *controller.Image) (controller.Topic, bool) { return im.Topic(t.topic) })
		img = newer
		if !ok || t.partition < 0 || int(t.partition) >= len(it.Partitions) {
			errs[t] = errorf(kerr.UnknownTopicOrPartition, "partition %s-%d does not exist", t.topic, t.partition)
			continue
		}
		ip := it.Partitions[t.partition]
		if how == electUnclean {
			errs[t] = uncleanElection(img, t, ip)
			continue
		}
		pref := ip.Preferred()
		switch {
		case ip.Leader == pref && inService(img, pref):
			errs[t] = errorf(kerr.ElectionNotNeeded, "partition %s-%d is led by its preferred replica %d", t.topic, t.partition, pref)
		case !slices.Contains(liveISR(img, ip), pref):
			errs[t] = errorf(kerr.PreferredLeaderNotAvailable, "preferred replica %d of %s-%d is not in sync or its broker is out of service",
				pref, t.topic, t.partition)
		default:
			want[t] = controller.PartitionRef{TopicID: it.ID, Partition: t.partition}
		}
	}
	if len(want) == 0 {
		return errs
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, timeout)
	defer cancel()
	refs := make([]controller.PartitionRef, 0, len(want))
	for _, ref := range want {
		refs = append(refs, ref)
	}
	if err := c.remote.ElectPreferred(ctx, refs); err != nil {
		for t := range want {
			errs[t] = controllerError(err)
		}
		return errs
	}
	led := func(ref controller.PartitionRef) bool {
		ip, ok := imagePartition(c.ctl.Image(), ref.TopicID, ref.Partition)
		return ok && ip.Leader == ip.Preferred()
	}
	c.await(ctx, func() bool {
		for _, ref := range want {
			if !led(ref) {
				return false
			}
		}
		return true
	})
	for t, ref := range want {
		if !led(ref) {
			errs[t] = errorf(kerr.RequestTimedOut, "the leader of %s-%d has not handed over to its preferred replica yet; the election stays requested",
				t.topic, t.partition)
		}
	}
	return errs
}

// uncleanElection answers an unclean election request: a partition with a
// leader needs none, and one without cannot have one from outside its ISR
// (Raft would not let such a replica win, and it would lose committed
// records if it did).
func uncleanElection(img *controller.Image, t electionTarget, ip controller.Partition) error {
	if ip.Leader != controller.NoLeader && inService(img, ip.Leader) {
		return errorf(kerr.ElectionNotNeeded, "partition %s-%d has leader %d", t.topic, t.partition, ip.Leader)
	}
	return errorf(kerr.EligibleLeadersNotAvailable,
		"partition %s-%d has no leader; weir's Raft groups elect only a replica holding every committed record, so an unclean election is not possible",
		t.topic, t.partition)
}
