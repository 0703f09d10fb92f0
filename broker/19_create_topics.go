package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateTopics(c *conn, req *kmsg.CreateTopicsRequest) response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if seen[rt.Topic] > 1 {
			err = errorf(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic)
		} else {
			err = c.b.createFromRequest(rt, req.ValidateOnly, &st)
		}
		if err != nil {
			st.ErrorCode = errCode(err)
			st.ErrorMessage = errMessage(err)
			st.NumPartitions, st.ReplicationFactor = -1, -1
			st.Configs = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	return ready{resp}
}

func (b *Broker) createFromRequest(rt kmsg.CreateTopicsRequestTopic, validateOnly bool, st *kmsg.CreateTopicsResponseTopic) error {
	partitions := rt.NumPartitions
	if partitions == -1 {
		partitions = b.cfg.DefaultPartitions
	}
	assign, err := requestAssignment(rt)
	if err != nil {
		return err
	}
	return b.meta.createFromRequest(rt, partitions, assign, validateOnly, st)
}

// fillCreatedConfigs lists a new topic's effective configs in the
// response, as CreateTopics v5+ does.
func (b *Broker) fillCreatedConfigs(configs map[string]string, st *kmsg.CreateTopicsResponseTopic) {
	for _, d := range b.describeTopicConfigs(configs, nil) {
		st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{
			Name: d.Name, Value: d.Value, ReadOnly: d.ReadOnly, Source: int8(d.Source), IsSensitive: d.IsSensitive,
		})
	}
}

// requestAssignment returns a CreateTopics topic's manual replica
// assignment in partition order (nil if it has none), which must name
// every partition from 0 once and comes instead of a partition count and
// replication factor.
func requestAssignment(rt kmsg.CreateTopicsRequestTopic) ([][]int32, error) {
	if len(rt.ReplicaAssignment) == 0 {
		return nil, nil
	}
	if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
		return nil, errorf(kerr.InvalidRequest, "a replica assignment excludes a partition count and replication factor")
	}
	assign := make([][]int32, len(rt.ReplicaAssignment))
	for _, a := range rt.ReplicaAssignment {
		if a.Partition < 0 || int(a.Partition) >= len(assign) || assign[a.Partition] != nil || len(a.Replicas) == 0 {
			return nil, errorf(kerr.InvalidReplicaAssignment,
				"the assignment must give partitions 0 to %d each a non-empty replica list once", len(assign)-1)
		}
		assign[a.Partition] = a.Replicas
	}
	return assign, nil
}

// createFromRequest creates a topic through the controller, which places
// the replicas unless the request assigns them.
func (c *cluster) createFromRequest(rt kmsg.CreateTopicsRequestTopic, partitions int32, assign [][]int32, validateOnly bool, st *kmsg.CreateTopicsResponseTopic) error {
	configs, err := requestConfigs(rt.Configs)
	if err != nil {
		return err
	}
	rf := rt.ReplicationFactor
	if rf == -1 {
		rf = c.b.cfg.DefaultReplicationFactor
	}
	if assign != nil {
		partitions, rf = int32(len(assign)), int16(len(assign[0]))
	}
	if validateOnly {
		// Checked against this broker's image; a real create is decided
		// on the controller's, which may be newer.
		img := c.ctl.Image()
		if assign != nil {
			err = controllerError(img.CheckAssignment(assign))
		} else if live := len(img.UnfencedBrokers()); int(rf) > live {
			err = errorf(kerr.InvalidReplicationFactor, "Replication factor: %d larger than available brokers: %d.", rf, live)
		}
		if err != nil {
			return err
		}
		if err := c.b.validateNewTopic(rt.Topic, partitions, configs); err != nil {
			return err
		}
	} else if st.TopicID, err = c.createTopic(rt.Topic, partitions, rf, configs, assign); err != nil {
		return err
	}
	st.NumPartitions, st.ReplicationFactor = partitions, rf
	c.b.fillCreatedConfigs(configs, st)
	return nil
}

func (b *Broker) validateNewTopic(name string, partitions int32, configs map[string]string) error {
	if err := validateTopicName(name); err != nil {
		return errorf(kerr.InvalidTopicException, "%v", err)
	}
	if err := b.checkPartitionCount(partitions); err != nil {
		return err
	}
	if b.lookupTopic(name) != nil {
		return errorf(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	return validateConfigs(configs)
}

// requestConfigs turns a CreateTopics request's configs into a map.
func requestConfigs(kvs []kmsg.CreateTopicsRequestTopicConfig) (map[string]string, error) {
	configs := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if kv.Value == nil {
			return nil, errorf(kerr.InvalidConfig, "config %q has a null value", kv.Name)
		}
		configs[kv.Name] = *kv.Value
	}
	return configs, nil
}
