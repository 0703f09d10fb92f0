package broker

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/producer"
)

// handleDescribeProducers lists the producers a partition's leader
// remembers, with the start of each one's open transaction (the tool for
// finding a hanging transaction, KIP-664).
func handleDescribeProducers(c *conn, req *kmsg.DescribeProducersRequest) response {
	return later(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewDescribeProducersResponseTopic()
			st.Topic = rt.Topic
			t := c.b.knownTopic(rt.Topic)
			for _, idx := range rt.Partitions {
				st.Partitions = append(st.Partitions, describePartitionProducers(c, t, idx))
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

func describePartitionProducers(c *conn, t *topic, idx int32) kmsg.DescribeProducersResponseTopicPartition {
	sp := kmsg.NewDescribeProducersResponseTopicPartition()
	sp.Partition = idx
	if t == nil || idx < 0 || int(idx) >= len(t.parts) {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return sp
	}
	p := t.parts[idx]
	err := error(kerr.NotLeaderForPartition)
	if p != nil {
		err = p.serve(c.ctx)
	}
	if err != nil {
		sp.ErrorCode = errCode(err)
		return sp
	}
	open := p.plog().OpenTxns()
	infos := p.producerInfos()
	slices.SortFunc(infos, func(a, b producer.Info) int { return cmp.Compare(a.ID, b.ID) })
	for _, in := range infos {
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp = in.ID, int32(in.Epoch), in.LastSequence, in.LastTimestamp
		ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
		if first, ok := open[in.ID]; ok {
			ap.CurrentTxnStartOffset = first
		}
		sp.ActiveProducers = append(sp.ActiveProducers, ap)
	}
	return sp
}

// producerInfos lists the producers the partition remembers.
func (p *partition) producerInfos() []producer.Info {
	if p.repl != nil {
		return p.repl.Producers()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.producers.Producers()
}
