package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAlterPartitionAssignments starts, replaces or (with null replicas)
// cancels partition reassignments (kafka-reassign-partitions.sh,
// kadm.AlterPartitionAssignments). It answers once the controller has
// recorded them; ListPartitionReassignments shows their progress.
func handleAlterPartitionAssignments(c *conn, req *kmsg.AlterPartitionAssignmentsRequest) response {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := c.b.reassign(rt.Topic, rp.Partition, rp.Replicas, allowRF)
			sp.ErrorCode, sp.ErrorMessage = errCode(err), errMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return ready{resp}
}

// reassign moves one partition to replicas, or cancels its reassignment
// for nil replicas.
func (b *Broker) reassign(topic string, index int32, replicas []int32, allowRF bool) error {
	t := b.knownTopic(topic)
	if t == nil || index < 0 || int(index) >= len(t.parts) {
		return errorf(kerr.UnknownTopicOrPartition, "partition %s-%d does not exist", topic, index)
	}
	return b.meta.reassign(t, index, replicas, allowRF)
}
