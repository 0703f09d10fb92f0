package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(c *conn, req *kmsg.CreatePartitionsRequest) response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := c.b.createPartitions(rt, req.ValidateOnly)
		st.ErrorCode = errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return ready{resp}
}

func (b *Broker) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	var assign [][]int32 // the new partitions' replicas, if the request assigns them
	for _, a := range rt.Assignment {
		assign = append(assign, a.Replicas)
	}
	t := b.knownTopic(rt.Topic)
	switch {
	case t == nil:
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	case t.internal:
		return errorf(kerr.InvalidRequest, "topic %q is internal", rt.Topic)
	case rt.Count <= int32(len(t.parts)):
		return errorf(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", rt.Topic, len(t.parts), rt.Count)
	case assign != nil && len(assign) != int(rt.Count)-len(t.parts):
		return errorf(kerr.InvalidReplicaAssignment, "%d replica assignments given for %d new partitions", len(assign), int(rt.Count)-len(t.parts))
	case validateOnly && assign != nil:
		if err := b.meta.image().CheckAssignment(assign); err != nil {
			return controllerError(err)
		}
		return b.checkPartitionCount(rt.Count)
	case validateOnly:
		return b.checkPartitionCount(rt.Count)
	}
	return b.meta.addPartitions(t, rt.Count, assign)
}
