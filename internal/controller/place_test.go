package controller

import (
	"errors"
	"slices"
	"testing"
)

func spread(m map[int32]int, ids []int32) (lo, hi int) {
	lo, hi = 1<<30, -1
	for _, id := range ids {
		lo, hi = min(lo, m[id]), max(hi, m[id])
	}
	return lo, hi
}

func TestPlaceProperties(t *testing.T) {
	for n := 1; n <= 9; n++ {
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(10 + i*3)
		}
		for rf := 1; rf <= n; rf++ {
			for parts := 1; parts <= 50; parts++ {
				got, err := Place(ids, parts, rf, nil)
				if err != nil {
					t.Fatalf("n=%d rf=%d p=%d: %v", n, rf, parts, err)
				}
				if len(got) != parts {
					t.Fatalf("n=%d rf=%d p=%d: %d partitions", n, rf, parts, len(got))
				}
				reps, leads := map[int32]int{}, map[int32]int{}
				for _, rs := range got {
					if len(rs) != rf {
						t.Fatalf("n=%d rf=%d p=%d: replicas %v", n, rf, parts, rs)
					}
					seen := map[int32]bool{}
					for _, r := range rs {
						if seen[r] || !slices.Contains(ids, r) {
							t.Fatalf("n=%d rf=%d p=%d: bad replicas %v", n, rf, parts, rs)
						}
						seen[r] = true
						reps[r]++
					}
					leads[rs[0]]++
				}
				if lo, hi := spread(reps, ids); hi-lo > 1 {
					t.Errorf("n=%d rf=%d p=%d: replica counts %v", n, rf, parts, reps)
				}
				if lo, hi := spread(leads, ids); hi-lo > 1 {
					t.Errorf("n=%d rf=%d p=%d: leader counts %v", n, rf, parts, leads)
				}
			}
		}
	}
}

func TestPlaceErrors(t *testing.T) {
	_, err := Place([]int32{1, 2, 2}, 3, 3, nil)
	if !errors.Is(err, ErrInvalidReplicationFactor) || err.Error() != "Replication factor: 3 larger than available brokers: 2." {
		t.Fatalf("rf > brokers: %v", err)
	}
	if _, err := Place(nil, 1, 1, nil); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("no brokers: %v", err)
	}
	if _, err := Place([]int32{1}, 0, 1, nil); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("0 partitions: %v", err)
	}
	if _, err := Place([]int32{1}, 1, 0, nil); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf 0: %v", err)
	}
}

func TestPlaceFollowsLoad(t *testing.T) {
	// Broker 1 is loaded: the new replicas fill 2 and 3 first and the
	// totals end within one.
	load := map[int32]int{1: 6}
	got, err := Place([]int32{3, 1, 2}, 6, 2, load)
	if err != nil {
		t.Fatal(err)
	}
	total := map[int32]int{1: 6}
	for _, rs := range got {
		for _, r := range rs {
			total[r]++
		}
	}
	if lo, hi := spread(total, []int32{1, 2, 3}); hi-lo > 1 {
		t.Fatalf("totals %v from %v", total, got)
	}
	// Deterministic and independent of the input order.
	again, _ := Place([]int32{1, 2, 3}, 6, 2, map[int32]int{1: 6})
	if !slices.EqualFunc(got, again, slices.Equal[[]int32]) {
		t.Fatalf("not deterministic: %v vs %v", got, again)
	}
}
