package faultcheck

import (
	"cmp"
	"slices"
	"time"
)

// checkConsumption: each consumer session reads a partition in increasing
// offsets, and only reads records the drain has at the same position (a
// different value there is a Conflict).
func (c *checker) checkConsumption() {
	type stream struct {
		consumer, session int
		p                 int32
	}
	last := map[stream]int64{}
	for _, r := range c.h.Consumed {
		s := stream{r.Consumer, r.Session, r.Partition}
		if prev, ok := last[s]; ok && r.Offset <= prev {
			c.flag(ConsumerOrder, "consumer %d session %d: partition %d offset %d after %d",
				r.Consumer, r.Session, r.Partition, r.Offset, prev)
		}
		last[s] = r.Offset
		if _, ok := c.drainAt[pos{r.Partition, r.Offset}]; !ok {
			c.flag(DirtyRead, "consumer %d read %v, which the drain does not have", r.Consumer, r.Record)
		}
	}
}

// checkCoverage: consumers commit only what they were given, so every
// drained record below the highest committed offset (capped at the drain's
// end, the excess being CommitBeyondEnd) reached some consumer.
func (c *checker) checkCoverage() {
	upTo := map[int32]int64{}
	for _, cm := range c.h.Commits {
		upTo[cm.Partition] = max(upTo[cm.Partition], cm.Offset)
	}
	delivered := map[pos]bool{}
	for _, r := range c.h.Consumed {
		delivered[pos{r.Partition, r.Offset}] = true
	}
	for _, r := range c.h.Drain {
		end := upTo[r.Partition]
		if int(r.Partition) < len(c.h.DrainEnd) {
			end = min(end, c.h.DrainEnd[r.Partition])
		}
		if r.Offset < end && !delivered[pos{r.Partition, r.Offset}] {
			c.flag(GroupMissed, "%v is below committed offset %d but no consumer read it", r, end)
		}
	}
}

// checkCommitOrder: the committed offset of a partition is a register that
// only grows. Any commit or read that began after another was acknowledged
// must carry at least its offset. Consumers commit only what they polled
// from the committed position while their generation is current, so a lower
// offset means the group lost a commit or accepted a stale one.
func (c *checker) checkCommitOrder() {
	byPart := map[int32][]Commit{}
	for _, cm := range c.h.Commits {
		byPart[cm.Partition] = append(byPart[cm.Partition], cm)
	}
	for _, p := range sortedKeys(byPart) {
		acked := slices.Clone(byPart[p])
		slices.SortFunc(acked, func(a, b Commit) int { return a.Acked.Compare(b.Acked) })
		sent := slices.Clone(byPart[p])
		slices.SortFunc(sent, func(a, b Commit) int { return a.Sent.Compare(b.Sent) })
		var high *Commit // the highest commit acknowledged before the current one was sent
		i := 0
		for _, cm := range sent {
			for ; i < len(acked) && acked[i].Acked.Before(cm.Sent); i++ {
				if high == nil || acked[i].Offset > high.Offset {
					high = &acked[i]
				}
			}
			if high != nil && cm.Offset < high.Offset {
				c.flag(CommitBackwards, "partition %d: %s saw %d at %s, after %s saw %d at %s",
					p, cm.Source, cm.Offset, clock(cm.Sent), high.Source, high.Offset, clock(high.Acked))
			}
		}
	}
}

func clock(t time.Time) string { return t.Format("15:04:05.000000") }

func sortedKeys[V any](m map[int32]V) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmp.Compare)
	return ks
}

// checkCommitEnd: a committed offset is at most the high watermark at drain.
func (c *checker) checkCommitEnd() {
	for _, cm := range c.h.Commits {
		if int(cm.Partition) >= len(c.h.DrainEnd) {
			continue // no drain end known: the drain is incomplete
		}
		if end := c.h.DrainEnd[cm.Partition]; cm.Offset > end {
			c.flag(CommitBeyondEnd, "partition %d: %s saw committed offset %d, drain end %d",
				cm.Partition, cm.Source, cm.Offset, end)
		}
	}
}
