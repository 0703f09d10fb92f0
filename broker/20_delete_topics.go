package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteTopics(c *conn, req *kmsg.DeleteTopicsRequest) response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = nil
		for _, name := range req.TopicNames {
			targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: &name})
		}
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var err error
		switch {
		case rt.Topic != nil:
			if t := c.b.knownTopic(*rt.Topic); t != nil {
				st.TopicID = t.id
			}
			err = c.b.meta.deleteTopic(*rt.Topic)
		default:
			t := c.b.knownTopicID(rt.TopicID)
			if t == nil {
				err = kerr.UnknownTopicID
				break
			}
			name := t.name
			st.Topic = &name
			err = c.b.meta.deleteTopic(name)
		}
		st.ErrorCode = errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return ready{resp}
}
