package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/txn"
)

// handleAddPartitionsToTxn adds partitions to a producer's transaction
// (v0-3, sent by clients) or, in v4+'s batched form, serves brokers'
// KIP-890 verification (VerifyOnly: is each partition in the ongoing
// transaction?).
func handleAddPartitionsToTxn(c *conn, req *kmsg.AddPartitionsToTxnRequest) response {
	return later(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		if req.Version < 4 {
			errs := c.b.txns.AddPartitions(c.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, txnParts(req.Topics))
			resp.Topics = addResultTopics(req.Topics, errs)
			return resp
		}
		for _, rt := range req.Transactions {
			topics := make([]addTopic, len(rt.Topics))
			for i, t := range rt.Topics {
				topics[i] = addTopic(t) // the same fields in both forms
			}
			parts := txnParts(topics)
			var errs map[txn.TopicPartition]error
			if rt.VerifyOnly {
				errs = c.b.txns.VerifyPartitions(rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, parts)
			} else {
				errs = c.b.txns.AddPartitions(c.ctx, rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, parts)
			}
			st := kmsg.NewAddPartitionsToTxnResponseTransaction()
			st.TransactionalID = rt.TransactionalID
			for _, t := range addResultTopics(topics, errs) {
				tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				tt.Topic = t.Topic
				for _, p := range t.Partitions {
					tp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					tp.Partition, tp.ErrorCode = p.Partition, p.ErrorCode
					tt.Partitions = append(tt.Partitions, tp)
				}
				st.Topics = append(st.Topics, tt)
			}
			resp.Transactions = append(resp.Transactions, st)
		}
		return resp
	})
}

// addTopic is the shape both request forms share.
type addTopic = kmsg.AddPartitionsToTxnRequestTopic

func txnParts(ts []addTopic) []txn.TopicPartition {
	var out []txn.TopicPartition
	for _, t := range ts {
		for _, p := range t.Partitions {
			out = append(out, txn.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	return out
}

func addResultTopics(ts []addTopic, errs map[txn.TopicPartition]error) []kmsg.AddPartitionsToTxnResponseTopic {
	var out []kmsg.AddPartitionsToTxnResponseTopic
	for _, t := range ts {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition = p
			sp.ErrorCode = errCode(errs[txn.TopicPartition{Topic: t.Topic, Partition: p}])
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}
