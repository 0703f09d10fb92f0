package controller

import (
	"cmp"
	"slices"
)

// Place assigns replicas for a topic's new partitions: partitions lists of
// rf distinct broker ids taken from brokers (the unfenced ones), the first
// being the preferred leader. load counts the replicas each broker already
// hosts (nil for none); replicas go to the least loaded brokers first, ties
// dealt round-robin, so with no prior load every broker's replica count and
// leader count are within one of the others'. The result depends only on
// the arguments. rf larger than the number of brokers is an error wrapping
// ErrInvalidReplicationFactor, worded as Kafka words it.
func Place(brokers []int32, partitions int, rf int, load map[int32]int) ([][]int32, error) {
	ids := slices.Clone(brokers)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch {
	case partitions < 1:
		return nil, errf(ErrInvalidPartitions, "Number of partitions must be larger than 0.")
	case partitions > MaxPartitions:
		return nil, errf(ErrInvalidPartitions, "Number of partitions %d exceeds the limit of %d.", partitions, MaxPartitions)
	case rf < 1:
		return nil, errf(ErrInvalidReplicationFactor, "Replication factor must be larger than 0.")
	case rf > len(ids):
		return nil, errf(ErrInvalidReplicationFactor, "Replication factor: %d larger than available brokers: %d.", rf, len(ids))
	}
	n := len(ids)
	// Ring order: least loaded first, then by id.
	slices.SortStableFunc(ids, func(a, b int32) int { return cmp.Compare(load[a], load[b]) })
	replicas := make([]int, n) // existing plus new replicas, by ring position
	for i, id := range ids {
		replicas[i] = load[id]
	}
	leaders := make([]int, n) // new leaderships, by ring position
	out := make([][]int32, partitions)
	set := make([]int, 0, rf)
	inSet := make([]bool, n)
	cursor := 0 // ring position after the last pick
	for p := range partitions {
		// Fill the replica slots one by one with the broker holding the
		// fewest replicas, ties going to the next one round the ring: with
		// no existing load this deals replicas out cyclically, which keeps
		// every broker's count within one of the others.
		for _, i := range set {
			inSet[i] = false
		}
		set = set[:0]
		for range rf {
			best, bestDist := -1, 0
			for i := range n {
				if inSet[i] {
					continue
				}
				d := (i - cursor + n) % n
				if best < 0 || replicas[i] < replicas[best] || replicas[i] == replicas[best] && d < bestDist {
					best, bestDist = i, d
				}
			}
			set = append(set, best)
			inSet[best] = true
			replicas[best]++
			cursor = (best + 1) % n
		}
		// Leader: the member leading the fewest new partitions, earliest
		// pick on ties.
		li := 0
		for j, i := range set {
			if leaders[i] < leaders[set[li]] {
				li = j
			}
		}
		leaders[set[li]]++
		rs := make([]int32, 0, rf)
		rs = append(rs, ids[set[li]])
		for j, i := range set {
			if j != li {
				rs = append(rs, ids[i])
			}
		}
		out[p] = rs
	}
	return out, nil
}
