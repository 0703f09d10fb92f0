package broker

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestLivenessKeepsFailingSince checks the state the controller fences
// from: how long each broker's heartbeats have been failing, whatever
// order the events arrive in.
func TestLivenessKeepsFailingSince(t *testing.T) {
	lv := &liveness{failing: map[int32]time.Time{}}
	long := time.Now().Add(-3 * time.Second)
	lv.observe(raft.FailedHeartbeatObservation{PeerID: "2", LastContact: long})
	lv.observe(raft.FailedHeartbeatObservation{PeerID: "2", LastContact: time.Now()}) // a later failure keeps the first
	if got := lv.failingFor(2); got < 3*time.Second {
		t.Fatalf("failing for %v, want at least 3s (since the last contact)", got)
	}
	lv.observe(raft.FailedHeartbeatObservation{PeerID: "3"}) // never reached: failing from now
	if got := lv.failingFor(3); got > time.Second {
		t.Fatalf("broker never reached: failing for %v, want about 0", got)
	}
	lv.observe(raft.ResumedHeartbeatObservation{PeerID: "2"})
	if got := lv.failingFor(2); got != 0 {
		t.Fatalf("after resuming: failing for %v", got)
	}
	lv.observe(raft.FailedHeartbeatObservation{PeerID: "not-a-node"})
	lv.reset()
	if len(lv.failing) != 0 {
		t.Fatalf("reset left %v", lv.failing)
	}
}
