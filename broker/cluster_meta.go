package broker

import (
	"errors"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/controller"
)

// Every broker of a cluster answers Metadata, FindCoordinator and
// DescribeCluster from its copy of the controller's image: brokers that
// are registered and not fenced, and each partition's leader as its Raft
// group last reported it.

// metadata is Metadata in a cluster.
func (c *cluster) metadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	img := c.ctl.Image()
	for _, br := range liveBrokers(img) {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID = br.NodeID
		mb.Host, mb.Port = splitListener(br.Listener)
		resp.Brokers = append(resp.Brokers, mb)
	}
	resp.ClusterID = &c.b.clusterID
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
	// As Kafka: the topic is created now and reported without leaders;
	// the client asks again once its partitions have elected them.
	_, err := c.createTopic(name, c.b.cfg.DefaultPartitions, -1, nil, nil)
	st.ErrorCode = kerr.LeaderNotAvailable.Code
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		st.ErrorCode = errCode(err)
	}
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
	st.Topic, st.TopicID, st.IsInternal = &name, t.ID, name == offsetsTopic
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

// liveBrokers are the registered brokers not fenced.
func liveBrokers(img *controller.Image) []controller.Broker {
	var out []controller.Broker
	for _, br := range img.Brokers() {
		if !br.Fenced {
			out = append(out, br)
		}
	}
	return out
}

func inService(img *controller.Image, id int32) bool {
	br, ok := img.Broker(id)
	return ok && !br.Fenced
}

func splitListener(addr string) (string, int32) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, int32(n)
}

// coordinator finds the broker coordinating group: the leader of its
// __consumer_offsets partition. The topic is created on first use.
func (c *cluster) coordinator(group string) (int32, string, int32, error) {
	img := c.ctl.Image()
	t, ok := img.Topic(offsetsTopic)
	if !ok {
		_, err := c.createTopic(offsetsTopic, c.b.cfg.OffsetsPartitions, c.b.cfg.DefaultReplicationFactor, offsetsTopicConfigs(), nil)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return -1, "", -1, errorf(kerr.CoordinatorNotAvailable, "creating %s: %v", offsetsTopic, err)
		}
		return -1, "", -1, kerr.CoordinatorNotAvailable
	}
	p := c.b.groups.PartitionFor(group)
	if int(p) >= len(t.Partitions) {
		return -1, "", -1, errorf(kerr.CoordinatorNotAvailable, "%s has %d partitions, brokers expect %d", offsetsTopic, len(t.Partitions), c.b.cfg.OffsetsPartitions)
	}
	leader := t.Partitions[p].Leader
	br, ok := img.Broker(leader)
	if !ok || br.Fenced {
		return -1, "", -1, kerr.CoordinatorNotAvailable
	}
	host, port := splitListener(br.Listener)
	return leader, host, port, nil
}

// offsetsTopicConfigs are __consumer_offsets' configs, as Kafka sets them.
func offsetsTopicConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600"}
}

// describeCluster fills DescribeCluster's brokers and controller.
func (c *cluster) describeCluster(resp *kmsg.DescribeClusterResponse) {
	for _, br := range liveBrokers(c.ctl.Image()) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID = br.NodeID
		db.Host, db.Port = splitListener(br.Listener)
		resp.Brokers = append(resp.Brokers, db)
	}
	resp.ControllerID = c.controllerID()
}
