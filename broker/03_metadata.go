package broker

import (
	"errors"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hostPort splits the advertised address for Metadata and FindCoordinator.
func (b *Broker) hostPort() (string, int32) {
	host, port, err := net.SplitHostPort(b.addr)
	if err != nil {
		return b.addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, int32(n)
}

func handleMetadata(c *conn, req *kmsg.MetadataRequest) response {
	b := c.b
	if b.cluster != nil {
		return ready{b.cluster.metadata(req)}
	}
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := b.hostPort()
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = b.cfg.NodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{br}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.cfg.NodeID

	// v0 asks for all topics with an empty list; v1+ with a null one.
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.allTopics() {
			resp.Topics = append(resp.Topics, b.describeTopic(t))
		}
		sort.Slice(resp.Topics, func(i, j int) bool { return *resp.Topics[i].Topic < *resp.Topics[j].Topic })
		return ready{resp}
	}
	autoCreate := req.Version < 4 || req.AllowAutoTopicCreation
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, b.metadataTopic(rt, autoCreate))
	}
	return ready{resp}
}

func (b *Broker) metadataTopic(rt kmsg.MetadataRequestTopic, autoCreate bool) kmsg.MetadataResponseTopic {
	if rt.Topic == nil { // v10+ lookup by id
		if t := b.lookupTopicID(rt.TopicID); t != nil {
			return b.describeTopic(t)
		}
		st := kmsg.NewMetadataResponseTopic()
		st.TopicID = rt.TopicID
		st.ErrorCode = kerr.UnknownTopicID.Code
		return st
	}
	name := *rt.Topic
	t, err := b.topicForWrite(name, autoCreate)
	if err == nil {
		return b.describeTopic(t)
	}
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = &name
	st.ErrorCode = errCode(err)
	var te *topicError
	if errors.As(err, &te) && errors.Is(err, kerr.InvalidTopicException) {
		st.ErrorCode = kerr.InvalidTopicException.Code
	}
	return st
}

func (b *Broker) describeTopic(t *topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.name
	st.Topic, st.TopicID, st.IsInternal = &name, t.id, t.internal
	replicas := []int32{b.cfg.NodeID}
	for _, p := range t.parts {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition, sp.Leader, sp.LeaderEpoch = p.index, b.cfg.NodeID, singleNodeEpoch
		sp.Replicas, sp.ISR = replicas, replicas
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
