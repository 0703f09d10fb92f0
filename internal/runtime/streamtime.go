package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Stream time survives restarts and task moves the way Kafka Streams keeps
// it: in the committed offsets' metadata. Without it a restarted task starts
// at -1 and would accept records for windows that closed before the
// restart.

// streamTimePrefix marks weir's commit metadata.
const streamTimePrefix = "weir-stream-time:"

// stampStreamTime writes each committed partition's task stream time into
// the commit's metadata. kgo calls it just before sending the commit;
// the caller holds mu.
func (r *Runtime) stampStreamTime(req *kmsg.OffsetCommitRequest) error {
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if meta := r.streamTimeMeta(tp{t.Topic, p.Partition}); meta != nil {
				p.Metadata = meta
			}
		}
	}
	return nil
}

// streamTimeMeta is the commit metadata of an input partition: its task's
// stream time, or nil if it has none. Caller holds mu.
func (r *Runtime) streamTimeMeta(p tp) *string {
	ts, ok := r.byTP[p]
	if !ok || ts.t == nil || ts.t.StreamTime() < 0 {
		return nil
	}
	meta := streamTimePrefix + strconv.FormatInt(ts.t.StreamTime(), 10)
	return &meta
}

// committedStreamTime reads the largest stream time committed for the
// task's input partitions, or -1.
func (r *Runtime) committedStreamTime(ts *taskState) (int64, error) {
	// A coordinator that is moving or loading (a cluster electing the
	// leader of the group's __consumer_offsets partition) is retriable,
	// and so, under exactly-once, is a transaction with offsets pending.
	offs, err := r.fetchCommitted(context.Background())
	if err != nil {
		return -1, fmt.Errorf("fetch committed stream time: %w", err)
	}
	st := int64(-1)
	for _, p := range ts.parts {
		o, ok := offs.Lookup(p.topic, p.partition)
		if !ok {
			continue
		}
		if v, ok := strings.CutPrefix(o.Metadata, streamTimePrefix); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				st = max(st, n)
			}
		}
	}
	return st, nil
}
