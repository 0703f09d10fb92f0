package faultcheck

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// checkAcks: every acknowledged record is in the drain at its acked position.
func (c *checker) checkAcks() {
	for _, a := range c.h.Acks {
		at := c.drainPos[a.Value]
		switch {
		case len(at) == 0:
			c.flag(Lost, "%v acked by producer %d, not in the drain", a.Record, a.Producer)
		case !slices.Contains(at, pos{a.Partition, a.Offset}):
			c.flag(Moved, "%v acked, drained at %v", a.Record, at)
		}
	}
}

// checkDrain: each partition was read in strictly increasing offsets, no
// value sits at two positions, and each producer's records are in its order.
func (c *checker) checkDrain() {
	for v, at := range c.drainPos {
		if len(at) > 1 {
			c.flag(Duplicate, "%q drained at %v", v, at)
		}
	}
	last := map[int32]int64{}
	byPart := map[int32][]Record{}
	for _, r := range c.h.Drain {
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			c.flag(DrainOrder, "partition %d: drain read offset %d after %d", r.Partition, r.Offset, prev)
		}
		last[r.Partition] = r.Offset
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for _, rs := range byPart {
		c.checkProducerOrder(rs)
	}
}

func (c *checker) checkProducerOrder(rs []Record) {
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b Record) int { return cmp.Compare(a.Offset, b.Offset) })
	type last struct {
		seq int64
		rec Record
	}
	seen := map[int]last{}
	for i, r := range rs {
		if i > 0 && rs[i-1].Offset == r.Offset {
			continue // a re-read, already a DrainOrder violation
		}
		p, seq, ok := parseValue(r.Value)
		if !ok {
			continue // a Phantom
		}
		if l, ok := seen[p]; ok && seq <= l.seq {
			c.flag(ProducerOrder, "%v is after %v", r, l.rec)
		}
		seen[p] = last{seq, r}
	}
}

// checkConflicts: no position held two values in any observation.
func (c *checker) checkConflicts() {
	seen := map[pos]map[string]string{} // value -> where it was first seen
	note := func(r Record, source string) {
		at := pos{r.Partition, r.Offset}
		if seen[at] == nil {
			seen[at] = map[string]string{}
		}
		if _, ok := seen[at][r.Value]; !ok {
			seen[at][r.Value] = source
		}
	}
	for _, a := range c.h.Acks {
		note(a.Record, "ack")
	}
	for _, r := range c.h.Consumed {
		note(r.Record, "group")
	}
	for _, r := range c.h.Drain {
		note(r, "drain")
	}
	for _, at := range sortedPositions(seen) {
		if vs := seen[at]; len(vs) > 1 {
			var desc []string
			for v, src := range vs {
				desc = append(desc, src+" "+strconv.Quote(v))
			}
			slices.Sort(desc)
			c.flag(Conflict, "partition %d offset %d holds %s", at.p, at.o, strings.Join(desc, ", "))
		}
	}
}

func sortedPositions[V any](m map[pos]V) []pos {
	ps := make([]pos, 0, len(m))
	for at := range m {
		ps = append(ps, at)
	}
	slices.SortFunc(ps, func(a, b pos) int { return cmp.Or(cmp.Compare(a.p, b.p), cmp.Compare(a.o, b.o)) })
	return ps
}

// checkPhantoms: every record read was sent by a producer of this workload.
func (c *checker) checkPhantoms() {
	sent := func(v string) bool {
		p, seq, ok := parseValue(v)
		return ok && p < len(c.h.Produced) && seq < c.h.Produced[p]
	}
	for _, r := range c.h.Drain {
		if !sent(r.Value) {
			c.flag(Phantom, "drained %v", r)
		}
	}
	for _, r := range c.h.Consumed {
		if !sent(r.Value) {
			c.flag(Phantom, "consumer %d read %v", r.Consumer, r.Record)
		}
	}
}
