package broker

import (
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/controller"
)

// Every broker answers Metadata, FindCoordinator and DescribeCluster from
// its copy of the controller's image: brokers that are registered and not
// fenced, and each partition's leader as the image last recorded it,
// corrected by what this broker's own replicas know.

func handleMetadata(c *conn, req *kmsg.MetadataRequest) response {
	return ready{c.b.meta.metadata(req)}
}

// metadata answers from this broker's copy of the image.
func (c *cluster) metadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	img := c.ctl.Image()
	for _, br := range liveBrokers(img) {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID = br.NodeID
		mb.Host, mb.Port = splitListener(br.Listener)
		resp.Brokers = append(resp.Brokers, mb)
	}
	id := c.clusterID()
	resp.ClusterID = &id
	resp.ControllerID = c.controllerID()
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range img.Topics() {
			resp.Topics = append(resp.Topics, c.describeTopic(img, t))
		}
		sort.Slice(resp.Topics, func(i, j int) bool { return *resp.Topics[i].Topic < *resp.Topics[j].Topic })
		return resp
	}
	autoCreate := (req.Version < 4 || req.AllowAutoTopicCreation) && c.b.cfg.AutoCreateTopics
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, c.metadataTopic(img, rt, autoCreate))
	}
	return resp
}

func (c *cluster) metadataTopic(img *controller.Image, rt kmsg.MetadataRequestTopic, autoCreate bool) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	if rt.Topic == nil { // v10+ lookup by id
		if t, im, ok := c.topicCaughtUp(img, func(im *controller.Image) (controller.Topic, bool) { return im.TopicByID(rt.TopicID) }); ok {
			return c.describeTopic(im, t)
		}
		st.TopicID, st.ErrorCode = rt.TopicID, kerr.UnknownTopicID.Code
		return st
	}
	name := *rt.Topic
	st.Topic = &name
	if t, im, ok := c.topicCaughtUp(img, func(im *controller.Image) (controller.Topic, bool) { return im.Topic(name) }); ok {
		return c.describeTopic(im, t)
	}
	if err := validateTopicName(name); err != nil {
		st.ErrorCode = kerr.InvalidTopicException.Code
		return st
	}
	if !autoCreate {
		st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return st
	}
	// The topic is created now. Single-replica partitions are led from
	// creation and reported so; replicated ones without a leader yet
	// answer LEADER_NOT_AVAILABLE (as in Kafka) and the client asks again.
	_, err := c.createTopic(name, c.b.cfg.DefaultPartitions, -1, nil, nil)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		st.ErrorCode = errCode(err)
		return st
	}
	img = c.ctl.Image()
	if t, ok := img.Topic(name); ok {
		return c.describeTopic(img, t)
	}
	st.ErrorCode = kerr.LeaderNotAvailable.Code
	return st
}

// topicCaughtUp looks a topic up with find in img and, failing that, in
// the image after catching up with the controller (catchUp). It returns
// the image the topic was found in.
func (c *cluster) topicCaughtUp(img *controller.Image, find func(*controller.Image) (controller.Topic, bool)) (controller.Topic, *controller.Image, bool) {
	if t, ok := find(img); ok {
		return t, img, true
	}
	if !c.catchUp() {
		return controller.Topic{}, img, false
	}
	img = c.ctl.Image()
	t, ok := find(img)
	return t, img, ok
}

// describeTopic is one topic of a Metadata response. A partition whose
// leader is unknown or fenced reports LEADER_NOT_AVAILABLE; the ISR is the
// image's (isr.go), less brokers out of service, which are listed offline.
func (c *cluster) describeTopic(img *controller.Image, t controller.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic, st.TopicID, st.IsInternal = &name, t.ID, isInternalTopic(name)
	local := c.b.lookupTopic(t.Name)
	if local != nil && local.id != t.ID {
		local = nil
	}
	for _, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition, sp.LeaderEpoch, sp.Replicas = p.Index, p.LeaderEpoch, p.Replicas
		sp.Leader = -1
		if inService(img, p.Leader) {
			sp.Leader = p.Leader
		}
		if local != nil && int(p.Index) < len(local.parts) {
			c.correctLeader(&sp, local.parts[p.Index])
		}
		if sp.Leader < 0 {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		sp.ISR = liveISR(img, p)
		for _, r := range p.Replicas {
			if !inService(img, r) {
				sp.OfflineReplicas = append(sp.OfflineReplicas, r)
			}
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}

// correctLeader overrides the image with what this node's own replica
// knows. The image lags (and on a node cut off from the controller quorum
// stops moving): a replica that lost its leadership must not keep sending
// clients back to itself, and a new leader need not wait for its report to
// commit before this broker routes to it.
func (c *cluster) correctLeader(sp *kmsg.MetadataResponseTopicPartition, p *partition) {
	if p == nil || p.repl == nil {
		return
	}
	self := c.b.cfg.NodeID
	switch epoch := p.repl.LeaderEpoch(); {
	case p.repl.IsLeader() && epoch > sp.LeaderEpoch:
		sp.Leader, sp.LeaderEpoch = self, epoch
	case sp.Leader == self && !p.repl.IsLeader():
		sp.Leader = -1
	}
}
