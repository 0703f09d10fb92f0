package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeTransactions describes the transactional ids this broker
// coordinates; the others answer NOT_COORDINATOR.
func handleDescribeTransactions(c *conn, req *kmsg.DescribeTransactionsRequest) response {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, d := range c.b.txns.Describe(req.TransactionalIDs) {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ErrorCode = d.TransactionalID, errCode(d.Err)
		st.ProducerID, st.ProducerEpoch = -1, -1
		if d.Err == nil {
			st.State, st.TimeoutMillis, st.StartTimestamp = d.State, d.TimeoutMillis, d.StartTimestamp
			st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
			byTopic := map[string]int{}
			for _, tp := range d.Partitions {
				i, ok := byTopic[tp.Topic]
				if !ok {
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic = tp.Topic
					st.Topics = append(st.Topics, t)
					i = len(st.Topics) - 1
					byTopic[tp.Topic] = i
				}
				st.Topics[i].Partitions = append(st.Topics[i].Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return ready{resp}
}

// handleListTransactions lists the transactional ids this broker
// coordinates, filtered by state, producer id and (v1+) minimum duration.
func handleListTransactions(c *conn, req *kmsg.ListTransactionsRequest) response {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	minDur := time.Duration(max(req.DurationFilterMillis, 0)) * time.Millisecond
	for _, l := range c.b.txns.List(req.StateFilters, req.ProducerIDFilters, minDur) {
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = l.TransactionalID, l.ProducerID, l.State
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return ready{resp}
}
