package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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
			ts, ok := r.byTP[tp{t.Topic, p.Partition}]
			if !ok || ts.t == nil || ts.t.StreamTime() < 0 {
				continue
			}
			meta := streamTimePrefix + strconv.FormatInt(ts.t.StreamTime(), 10)
			p.Metadata = &meta
		}
	}
	return nil
}

// committedStreamTime reads the largest stream time committed for the
// task's input partitions, or -1.
func (r *Runtime) committedStreamTime(ts *taskState) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := r.adm.FetchOffsets(ctx, r.cfg.AppID)
	// A coordinator that is moving or loading (a cluster electing the
	// leader of the group's __consumer_offsets partition) is retriable.
	for err != nil && kerr.IsRetriable(err) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		offs, err = r.adm.FetchOffsets(ctx, r.cfg.AppID)
	}
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
