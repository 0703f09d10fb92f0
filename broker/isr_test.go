package broker

import (
	"bytes"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// TestFollowerSetCaughtUp walks Kafka's lastCaughtUpTime rules through a
// follower that keeps up, falls behind, catches up and restarts.
func TestFollowerSetCaughtUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const lagMax = time.Second
	var s followerSet
	s.begin(3, map[int32]int64{2: 20}, at(0))

	check := func(now int, id int32, be int64, member, want bool) {
		t.Helper()
		if got := s.inSync(id, be, member, at(now), lagMax); got != want {
			t.Fatalf("at %dms: inSync(%d, epoch %d, member %v) = %v, want %v", now, id, be, member, got, want)
		}
	}
	// A member of the image's ISR is presumed caught up when the epoch
	// begins, but that alone does not let a non-member join.
	check(900, 2, 20, true, true)
	check(100, 2, 20, false, false)
	check(1100, 2, 20, true, false)
	// Reports from another leader epoch are ignored.
	s.observe(2, 2, 20, 50, 50, at(1200))
	check(1200, 2, 20, false, false)

	// Reaching the leader's applied index: caught up now, may join.
	s.observe(3, 2, 20, 50, 50, at(1300))
	check(1300, 2, 20, false, true)
	// Under load the follower trails the leader but passes where the
	// leader was at its previous report: caught up as of that report.
	s.observe(3, 2, 20, 55, 60, at(1550))
	check(1550, 2, 20, false, true) // caught up at 1300
	s.observe(3, 2, 20, 61, 70, at(1800))
	check(2500, 2, 20, true, true) // caught up at 1550
	check(2500, 2, 20, false, false)
	// Stuck behind: it stays a member until lagMax has passed.
	s.observe(3, 2, 20, 62, 80, at(2050))
	s.observe(3, 2, 20, 63, 90, at(2300))
	check(2550, 2, 20, true, true)
	check(2600, 2, 20, true, false)
	// A restarted broker (new epoch) starts behind, whatever it had.
	s.observe(3, 2, 21, 10, 90, at(2700))
	check(2700, 2, 20, true, false)
	check(2700, 2, 21, true, false)
	s.observe(3, 2, 21, 90, 90, at(2950))
	check(2950, 2, 21, false, true)

	// Unknown followers are out; a new epoch resets the view.
	check(2950, 3, 30, true, false)
	s.begin(4, map[int32]int64{3: 30}, at(3000))
	check(3000, 2, 21, true, false)
	check(3000, 3, 30, true, true)
}

// FuzzProgressReport decodes arbitrary bytes as a follower's progress
// report, as readProgress does, and feeds whatever decodes to a leader's
// follower view: nothing a peer sends may panic the leader.
func FuzzProgressReport(f *testing.F) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.Encode(progressReport{From: 2, BrokerEpoch: 7, Replicas: []replicaProgress{{Partition: 3, Applied: 99}}})
	f.Add(buf.Bytes())
	f.Add([]byte{0x83, 0xa4, 'f', 'r', 'o', 'm', 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		dec := msgpack.NewDecoder(bytes.NewReader(b))
		var s followerSet
		now := time.Unix(1, 0)
		s.begin(1, map[int32]int64{1: 1}, now)
		for range 4 {
			var r progressReport
			if dec.Decode(&r) != nil {
				return
			}
			for _, rp := range r.Replicas {
				s.observe(1, r.From, r.BrokerEpoch, rp.Applied, 50, now)
				s.inSync(r.From, r.BrokerEpoch, rp.Partition%2 == 0, now, time.Second)
			}
		}
	})
}
