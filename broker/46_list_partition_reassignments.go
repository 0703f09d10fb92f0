package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleListPartitionReassignments lists the reassignments in progress
// among the named partitions, or all of them for a null topic list.
func handleListPartitionReassignments(c *conn, req *kmsg.ListPartitionReassignmentsRequest) response {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	img := c.b.meta.image()
	wanted := func(topic string, p int32) bool {
		if req.Topics == nil {
			return true
		}
		return slices.ContainsFunc(req.Topics, func(rt kmsg.ListPartitionReassignmentsRequestTopic) bool {
			return rt.Topic == topic && slices.Contains(rt.Partitions, p)
		})
	}
	for _, it := range img.Topics() {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = it.Name
		for _, ip := range it.Partitions {
			if !ip.Reassigning() || !wanted(it.Name, ip.Index) {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition, sp.Replicas = ip.Index, ip.Replicas
			sp.AddingReplicas, sp.RemovingReplicas = ip.Adding, ip.Removing
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	return ready{resp}
}
