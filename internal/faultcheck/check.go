package faultcheck

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names one class of violation.
type Kind string

// The violations Check looks for. Unacknowledged records may or may not be in
// the topic; none of these fire for them alone.
const (
	// Lost: an acknowledged record is not in the drain.
	Lost Kind = "lost"
	// Moved: an acknowledged record is in the drain, but not at the
	// partition and offset its acknowledgement reported.
	Moved Kind = "moved"
	// Duplicate: one value is in the drain at two positions; an
	// idempotent producer must never write a record twice.
	Duplicate Kind = "duplicate"
	// Conflict: one position held two values across all observations
	// (acknowledgements, group consumption, drain): an offset was
	// assigned twice.
	Conflict Kind = "conflict"
	// DrainOrder: the drain did not read a partition in strictly
	// increasing offsets, so the read-back is not exactly once in order.
	DrainOrder Kind = "drain-order"
	// ProducerOrder: a producer's records are not in the order it sent
	// them within a partition, which idempotence guarantees.
	ProducerOrder Kind = "producer-order"
	// ConsumerOrder: within one assignment session a group consumer read
	// a partition out of offset order.
	ConsumerOrder Kind = "consumer-order"
	// DirtyRead: a group consumer read a record at a position the drain
	// does not have, so it read data that was later lost.
	DirtyRead Kind = "dirty-read"
	// GroupMissed: the group committed past a drained record that no
	// group consumer was ever given.
	GroupMissed Kind = "group-missed"
	// Phantom: a record no producer of this workload sent.
	Phantom Kind = "phantom"
	// CommitBackwards: a commit or offset read started after another was
	// acknowledged, yet carries a lower offset for the same partition.
	CommitBackwards Kind = "commit-backwards"
	// CommitBeyondEnd: a committed offset exceeds the partition's high
	// watermark at drain.
	CommitBeyondEnd Kind = "commit-beyond-end"
	// DrainIncomplete: the drain could not read every partition up to its
	// high watermark, so the other checks are incomplete.
	DrainIncomplete Kind = "drain-incomplete"
)

// kinds fixes the order violations are reported in.
var kinds = []Kind{DrainIncomplete, Lost, Moved, Duplicate, Conflict, DrainOrder, ProducerOrder,
	ConsumerOrder, DirtyRead, GroupMissed, Phantom, CommitBackwards, CommitBeyondEnd}

// maxExamples bounds the examples kept per kind: a broken run can produce
// thousands, and the first few say what happened.
const maxExamples = 10

// Violation is every occurrence of one kind: the count and the first few.
type Violation struct {
	Kind     Kind
	Count    int
	Examples []string
}

// Summary counts the traffic of a run. Failed produces are indeterminate:
// FailedWritten says how many of them were written anyway.
type Summary struct {
	Attempted     int64
	Acked         int
	Failed        int
	FailedWritten int
	Drained       int
	Unacked       int // drained records never acknowledged
	Consumed      int // deliveries to group consumers
	Redelivered   int // deliveries of a position already delivered
	Commits       int // acknowledged consumer commits
	CommitReads   int // the monitor's reads of committed offsets
	// MaxAckGap is the longest time between consecutive acknowledgements,
	// the run's worst unavailability; it began at MaxAckGapFrom.
	MaxAckGap     time.Duration
	MaxAckGapFrom time.Time
	// PartitionGaps[p] is the longest time between consecutive
	// acknowledgements in partition p: a producer keeps acknowledging
	// the other partitions while one fails over, so this, not MaxAckGap,
	// is the failover's unavailability window.
	PartitionGaps []time.Duration
	GroupCaughtUp bool
}

// Report is Check's verdict.
type Report struct {
	Summary    Summary
	Violations []Violation // only kinds that occurred, in a fixed order
}

// OK reports whether the history has no violation.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations of kind k were found.
func (r *Report) Count(k Kind) int {
	for _, v := range r.Violations {
		if v.Kind == k {
			return v.Count
		}
	}
	return 0
}

func (r *Report) String() string {
	var b strings.Builder
	s := r.Summary
	verdict := "OK"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "faultcheck %s: attempted=%d acked=%d failed=%d (written %d) drained=%d unacked=%d "+
		"consumed=%d redelivered=%d commits=%d commit-reads=%d caught-up=%v max-ack-gap=%v "+
		"lost=%d duplicated=%d reordered=%d",
		verdict, s.Attempted, s.Acked, s.Failed, s.FailedWritten, s.Drained, s.Unacked,
		s.Consumed, s.Redelivered, s.Commits, s.CommitReads, s.GroupCaughtUp, s.MaxAckGap,
		r.Count(Lost), r.Count(Duplicate), r.Count(DrainOrder)+r.Count(ProducerOrder)+r.Count(ConsumerOrder))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "\n%s: %d", v.Kind, v.Count)
		for _, e := range v.Examples {
			fmt.Fprintf(&b, "\n  %s", e)
		}
	}
	return b.String()
}

// pos is a position in the topic.
type pos struct {
	p int32
	o int64
}

type checker struct {
	h        *History
	found    map[Kind]*Violation
	drainAt  map[pos]string   // the first value drained at each position
	drainPos map[string][]pos // every position a value was drained at
}

// Check verifies a history; it does not modify it. See the Kind constants
// for what it looks for.
func Check(h *History) *Report {
	c := &checker{h: h, found: map[Kind]*Violation{}, drainAt: map[pos]string{},
		drainPos: map[string][]pos{}}
	for _, r := range h.Drain {
		at := pos{r.Partition, r.Offset}
		if _, ok := c.drainAt[at]; !ok {
			c.drainAt[at] = r.Value
		}
		if !slices.Contains(c.drainPos[r.Value], at) {
			c.drainPos[r.Value] = append(c.drainPos[r.Value], at)
		}
	}
	if h.DrainErr != "" {
		c.flag(DrainIncomplete, "%s", h.DrainErr)
	}
	rep := &Report{Summary: c.traffic()}
	c.checkAcks()
	c.checkDrain()
	c.checkConflicts()
	c.checkConsumption()
	c.checkCoverage()
	c.checkPhantoms()
	c.checkCommitOrder()
	c.checkCommitEnd()
	for _, k := range kinds {
		if v := c.found[k]; v != nil {
			rep.Violations = append(rep.Violations, *v)
		}
	}
	return rep
}

func (c *checker) flag(k Kind, format string, args ...any) {
	v := c.found[k]
	if v == nil {
		v = &Violation{Kind: k}
		c.found[k] = v
	}
	v.Count++
	if len(v.Examples) < maxExamples {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

// traffic fills the Summary's counts.
func (c *checker) traffic() Summary {
	h := c.h
	s := Summary{Acked: len(h.Acks), Failed: len(h.Failures), Drained: len(h.Drain),
		Consumed: len(h.Consumed), GroupCaughtUp: h.GroupCaughtUp}
	for _, n := range h.Produced {
		s.Attempted += n
	}
	acked := map[string]bool{}
	for _, a := range h.Acks {
		acked[a.Value] = true
	}
	for _, f := range h.Failures {
		if len(c.drainPos[f.Value]) > 0 {
			s.FailedWritten++
		}
	}
	for v := range c.drainPos {
		if !acked[v] {
			s.Unacked++
		}
	}
	delivered := map[pos]bool{}
	for _, r := range h.Consumed {
		at := pos{r.Partition, r.Offset}
		if delivered[at] {
			s.Redelivered++
		}
		delivered[at] = true
	}
	for _, cm := range h.Commits {
		if cm.Source == monitorSource {
			s.CommitReads++
		} else {
			s.Commits++
		}
	}
	s.MaxAckGap, s.MaxAckGapFrom = maxAckGap(h.Acks)
	s.PartitionGaps = make([]time.Duration, h.Partitions)
	for p := range h.Partitions {
		s.PartitionGaps[p], _ = maxAckGap(slices.DeleteFunc(slices.Clone(h.Acks), func(a Ack) bool { return a.Partition != p }))
	}
	return s
}

func maxAckGap(acks []Ack) (time.Duration, time.Time) {
	at := make([]time.Time, len(acks))
	for i, a := range acks {
		at[i] = a.At
	}
	slices.SortFunc(at, time.Time.Compare)
	var gap time.Duration
	var from time.Time
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d > gap {
			gap, from = d, at[i-1]
		}
	}
	return gap, from
}
