package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

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

// leaderOf returns the 0-based node leading partition p of the queue.
func (r *faultRun) leaderOf(p int32) int {
	r.t.Helper()
	cl := clusterClient(r.t, r.c)
	md := awaitLeaders(r.t, cl, "queue")
	return int(md.Topics["queue"].Partitions[p].Leader) - 1
}

// finish stops the workload on the healed cluster and checks its history.
func (r *faultRun) finish() {
	r.t.Helper()
	h := r.w.Stop(r.ctx)
	rep := faultcheck.Check(h)
	if !rep.OK() {
		r.t.Fatal(rep)
	}
	r.t.Logf("%d acked; longest gap between acks: %v overall, per partition %v (the failover's unavailability window)",
		rep.Summary.Acked, rep.Summary.MaxAckGap, rep.Summary.PartitionGaps)
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
