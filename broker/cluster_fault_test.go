package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/internal/faultcheck"
)

// The fault tests run the faultcheck queue workload (idempotent acks=all
// producers, a committing consumer group) against three in-process brokers
// while one node is stopped, or cut off from the others' Raft traffic
// (its Kafka listener keeps accepting clients, so a deposed leader is
// still reachable). They then heal the cluster, drain every partition and
// check the history: no acknowledged record lost, moved or duplicated, no
// offset assigned twice, committed offsets never going backwards.

// faultRun is one workload over a fresh three-node cluster.
type faultRun struct {
	t   *testing.T
	c   *brokertest.Cluster
	w   *faultcheck.Workload
	ctx context.Context
}

func startFaultRun(t *testing.T) *faultRun {
	t.Helper()
	c := brokertest.StartCluster(t, 3, fastRaft)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	w, err := faultcheck.Start(ctx, faultcheck.Config{
		Seeds: c.Seeds(), Topic: "queue", Partitions: 3, ReplicationFactor: 3,
		Producers: 2, Consumers: 2, Group: "readers", Rate: 1000, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &faultRun{t: t, c: c, w: w, ctx: ctx}
	r.progress(300)
	return r
}

// progress waits for n more acknowledged records: the cluster is serving.
func (r *faultRun) progress(n int64) {
	r.t.Helper()
	if err := r.w.AwaitAcked(r.ctx, r.w.Acked()+n); err != nil {
		r.t.Fatalf("no progress (%d acked): %v", r.w.Acked(), err)
	}
}

// leaderOf returns the 0-based node leading partition p of the queue,
// once leadership has settled on the preferred replicas (a leader read
// while a new partition hands over to its preferred replica would be gone
// by the time the test harms it) and every broker agrees on it (one whose
// metadata lags could name a leader already deposed).
func (r *faultRun) leaderOf(p int32) int {
	r.t.Helper()
	cl := clusterClient(r.t, r.c)
	awaitISR(r.t, kadm.NewClient(cl), "queue", preferredLeads)
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, agreed := r.agreedLeader(cl, p)
		if agreed {
			return int(leader) - 1
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("brokers never agreed on the leader of queue-%d", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agreedLeader asks every broker for partition p's leader and epoch and
// reports whether they all gave the same answer.
func (r *faultRun) agreedLeader(cl *kgo.Client, p int32) (int32, bool) {
	var seen []string
	var leader int32
	for i := range r.c.Size() {
		req := kmsg.NewPtrMetadataRequest()
		topic := "queue"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
		resp, err := req.RequestWith(r.ctx, cl.Broker(i+1))
		if err != nil || len(resp.Topics) != 1 || int(p) >= len(resp.Topics[0].Partitions) {
			return 0, false
		}
		for _, rp := range resp.Topics[0].Partitions {
			if rp.Partition == p {
				leader = rp.Leader
				seen = append(seen, fmt.Sprint(rp.Leader, "@", rp.LeaderEpoch))
			}
		}
	}
	return leader, len(seen) == r.c.Size() && len(slices.Compact(seen)) == 1
}

// finish stops the workload on the healed cluster, checks its history
// and returns it.
func (r *faultRun) finish() *faultcheck.History {
	r.t.Helper()
	h := r.w.Stop(r.ctx)
	rep := faultcheck.Check(h)
	if !rep.OK() {
		r.t.Fatal(rep)
	}
	r.t.Logf("%d acked; longest gap between acks: %v overall, per partition %v (the failover's unavailability window)",
		rep.Summary.Acked, rep.Summary.MaxAckGap, rep.Summary.PartitionGaps)
	return h
}

func TestFaultLeaderStopped(t *testing.T) {
	r := startFaultRun(t)
	victim := r.leaderOf(0)
	r.c.Stop(victim)
	r.progress(1000)
	r.c.Restart(victim)
	r.progress(500)
	r.finish()
}

// TestFaultLeadershipReturns moves leadership back to a restarted
// preferred replica under load (ElectLeaders, i.e. a Raft leadership
// transfer): nothing acknowledged may be lost on the way back either.
func TestFaultLeadershipReturns(t *testing.T) {
	r := startFaultRun(t)
	victim := r.leaderOf(0)
	r.c.Stop(victim)
	r.progress(500)
	r.c.Restart(victim)
	adm := kadm.NewClient(clusterClient(t, r.c))
	awaitISR(t, adm, "queue", func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 })
	r.progress(300)
	elected := time.Now()
	res, err := adm.ElectLeaders(r.ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"queue": {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for p, e := range res["queue"] {
		if e.Err != nil && !errors.Is(e.Err, kerr.ElectionNotNeeded) {
			t.Errorf("preferred election of queue-%d: %v (%s)", p, e.Err, e.ErrMessage)
		}
	}
	if got := r.leaderOf(0); got != victim {
		t.Errorf("queue-0 is led by node %d after the election, want the restarted node %d", got+1, victim+1)
	}
	r.progress(500)
	h := r.finish()
	t.Logf("queue-0 handed back to node %d: longest wait for an ack on it since the election began: %v",
		victim+1, maxGapAfter(h, 0, elected))
}

// maxGapAfter is the longest time from since to the first acknowledgement
// on partition p, or between two later ones.
func maxGapAfter(h *faultcheck.History, p int32, since time.Time) time.Duration {
	at := []time.Time{since}
	for _, a := range h.Acks {
		if a.Partition == p && a.At.After(since) {
			at = append(at, a.At)
		}
	}
	slices.SortFunc(at, time.Time.Compare)
	var gap time.Duration
	for i := 1; i < len(at); i++ {
		gap = max(gap, at[i].Sub(at[i-1]))
	}
	return gap
}

// TestFaultReassignUnderLoad moves a partition off its leader's broker
// (shrinking it to two replicas) and back to three under load: every
// Raft membership change and the leader's handover must keep every
// acknowledged record.
func TestFaultReassignUnderLoad(t *testing.T) {
	r := startFaultRun(t)
	leader := int32(r.leaderOf(0) + 1)
	adm := kadm.NewClient(clusterClient(t, r.c))
	var rest []int32
	for n := int32(1); n <= 3; n++ {
		if n != leader {
			rest = append(rest, n)
		}
	}
	began := time.Now()
	if err := reassign(t, adm, "queue", 0, rest); err != nil {
		t.Fatal(err)
	}
	awaitReassigned(t, adm, "queue", 0, rest)
	r.progress(500)
	back := append([]int32{leader}, rest...)
	if err := reassign(t, adm, "queue", 0, back); err != nil {
		t.Fatal(err)
	}
	awaitReassigned(t, adm, "queue", 0, back)
	r.progress(500)
	h := r.finish()
	t.Logf("queue-0 moved off node %d and back: longest wait for an ack on it since the move began: %v",
		leader, maxGapAfter(h, 0, began))
}

func TestFaultLeaderIsolated(t *testing.T) {
	r := startFaultRun(t)
	victim := r.leaderOf(0)
	// The old leader keeps its clients but loses its Raft peers: it must
	// stop acknowledging (it cannot commit) and the majority side must
	// elect a new leader and go on.
	r.c.Network.Isolate(r.c.Node(victim))
	r.progress(1000)
	r.c.Network.Rejoin(r.c.Node(victim))
	r.progress(500)
	r.finish()
}

func TestFaultControllerIsolatedThenStopped(t *testing.T) {
	r := startFaultRun(t)
	cl := clusterClient(t, r.c)
	md, err := kadm.NewClient(cl).Metadata(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctl := int(md.Controller) - 1
	r.c.Network.Isolate(r.c.Node(ctl))
	r.progress(800)
	r.c.Network.Rejoin(r.c.Node(ctl))
	r.progress(300)
	r.c.Stop(ctl)
	r.progress(800)
	r.c.Restart(ctl)
	r.progress(300)
	r.finish()
}

func TestFaultFollowerPartitionedOneWay(t *testing.T) {
	r := startFaultRun(t)
	leader := r.leaderOf(0)
	follower := (leader + 1) % 3
	// The leader's messages to one follower are dropped, but not the
	// follower's replies: that follower times out and campaigns while
	// the leader still hears it.
	r.c.Network.Block(r.c.Node(leader), r.c.Node(follower))
	r.progress(1000)
	r.c.Network.Heal()
	r.progress(500)
	r.finish()
}
