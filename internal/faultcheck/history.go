package faultcheck

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// History is everything a Workload observed, the input to Check. It is plain
// data so tests can build synthetic histories.
type History struct {
	Topic      string
	Partitions int32
	Group      string
	// Produced[i] is how many records producer i handed to its client; its
	// values are Value(i, 0) .. Value(i, Produced[i]-1). Anything else in
	// the topic is a phantom.
	Produced []int64
	Acks     []Ack
	Failures []Failure
	Consumed []Consumed
	// Commits holds acknowledged offset commits and the monitor's reads of
	// the committed offsets, in no particular order (Check orders them by
	// their Sent and Acked times).
	Commits []Commit
	// Drain is the final read of every partition from its start, in the
	// order it was read; DrainEnd[p] is partition p's high watermark when
	// the drain began (after producers stopped). DrainErr is set when the
	// drain could not read up to DrainEnd.
	Drain    []Record
	DrainEnd []int64
	DrainErr string
	// GroupCaughtUp reports whether the group's committed offsets reached
	// DrainEnd before the consumers were stopped.
	GroupCaughtUp bool
	// Start and Stop bound the production phase.
	Start, Stop time.Time
}

// Record is one record at one position of the topic.
type Record struct {
	Partition int32
	Offset    int64
	Value     string
}

func (r Record) String() string { return fmt.Sprintf("%q@%d/%d", r.Value, r.Partition, r.Offset) }

// Ack is a record the cluster acknowledged (acks=all), with the offset the
// produce response assigned it.
type Ack struct {
	Record
	Producer int
	At       time.Time
}

// Failure is a record whose produce failed. It may or may not have been
// written: either is allowed.
type Failure struct {
	Producer  int
	Partition int32
	Value     string
	Err       string
}

// Consumed is one delivery of a record to a group consumer. Session counts
// the consumer's assignments (it changes on every rebalance callback and
// client restart); within one session a partition is read in order.
type Consumed struct {
	Record
	Consumer int
	Session  int
}

// Commit is one observation of a committed offset of the group: either a
// consumer's acknowledged commit or a read by the offset monitor (Source
// "monitor"). Sent is taken before the request and Acked after its
// response, so the real request lies within [Sent, Acked].
type Commit struct {
	Partition int32
	Offset    int64
	Source    string
	Sent      time.Time
	Acked     time.Time
}

// monitorSource is the Source of the offset monitor's reads.
const monitorSource = "monitor"

// Value is the record value producer p gives its seq'th record.
func Value(producer int, seq int64) string { return fmt.Sprintf("p%d-%d", producer, seq) }

// parseValue inverts Value.
func parseValue(v string) (producer int, seq int64, ok bool) {
	ps, ss, found := strings.Cut(v, "-")
	if !found || !strings.HasPrefix(ps, "p") {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(ps[1:])
	s, err2 := strconv.ParseInt(ss, 10, 64)
	if err1 != nil || err2 != nil || p < 0 || s < 0 {
		return 0, 0, false
	}
	return p, s, true
}
