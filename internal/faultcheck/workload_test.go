package faultcheck

import (
	"context"
	"testing"
	"time"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// TestWorkloadAcrossBrokerRestart runs the workload against one broker that
// restarts on the same data and address midway, and checks the history.
func TestWorkloadAcrossBrokerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := brokertest.Start(t, brokertest.WithDataDir(dir))
	addr := b.Addr()
	w := startWorkload(t, Config{Seeds: []string{addr}, Topic: "q", Partitions: 3,
		Producers: 2, Consumers: 2, Group: "g", Rate: 1000})
	awaitAcked(t, w, 1000)

	if err := b.Close(); err != nil {
		t.Fatalf("close broker: %v", err)
	}
	// The same address, so the clients' seeds still reach it.
	brokertest.Start(t, brokertest.WithDataDir(dir), brokertest.WithConfig(func(c *broker.Config) { c.Listen = addr }))
	awaitAcked(t, w, w.Acked()+1000)
	live := w.Stats()
	if live.Acked < 2000 || live.LastAck.IsZero() || live.MaxAckGap <= 0 {
		t.Errorf("stats after the restart: %+v", live)
	}
	h := stopAndCheck(t, w, 2000)
	if gap, _ := maxAckGap(h.Acks); gap < live.MaxAckGap {
		t.Errorf("the history's longest ack gap %v is shorter than the %v seen live", gap, live.MaxAckGap)
	}
}

// TestWorkloadWithConsumerChurn restarts the group's consumers every half
// second, so commits cross many rebalances.
func TestWorkloadWithConsumerChurn(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t)
	w := startWorkload(t, Config{Seeds: []string{b.Addr()}, Topic: "q", Partitions: 4,
		Producers: 3, Consumers: 3, Group: "g", Rate: 1500, ConsumerRestart: 500 * time.Millisecond})
	awaitAcked(t, w, 3000)
	h := stopAndCheck(t, w, 3000)
	sessions := map[[2]int]bool{}
	for _, c := range h.Consumed {
		sessions[[2]int{c.Consumer, c.Session}] = true
	}
	if len(sessions) <= 3 {
		t.Errorf("records were consumed in %d consumer sessions; the churn did not rebalance", len(sessions))
	}
}

func startWorkload(t *testing.T, cfg Config) *Workload {
	t.Helper()
	cfg.DeliveryTimeout, cfg.CatchUp, cfg.DrainTimeout = 10*time.Second, 8*time.Second, 10*time.Second
	cfg.Logf = t.Logf
	w, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) }) // runs before the broker closes
	return w
}

func awaitAcked(t *testing.T, w *Workload, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := w.AwaitAcked(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// stopAndCheck stops w, fails on any violation, checks that the run had
// enough traffic of every kind for the check to mean something, and returns
// the history.
func stopAndCheck(t *testing.T, w *Workload, minAcked int) *History {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	h := w.Stop(ctx)
	rep := Check(h)
	t.Log(rep)
	if !rep.OK() {
		t.Fatal("violations")
	}
	s := rep.Summary
	if s.Acked < minAcked || s.Drained < s.Acked || s.Consumed < s.Drained || s.Commits == 0 || s.CommitReads == 0 {
		t.Errorf("too little traffic to check anything: %+v", s)
	}
	if !s.GroupCaughtUp {
		t.Errorf("the group did not catch up with the producers")
	}
	return h
}
