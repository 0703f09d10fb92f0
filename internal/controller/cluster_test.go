package controller

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

type node struct {
	id    raft.ServerID
	raft  *raft.Raft
	fsm   *FSM
	ctl   *Controller
	trans *raft.InmemTransport
}

// newCluster starts n in-memory raft nodes bootstrapped as one voter set.
func newCluster(t *testing.T, n int) []*node {
	t.Helper()
	nodes := make([]*node, n)
	var servers []raft.Server
	for i := range nodes {
		addr, trans := raft.NewInmemTransport("")
		id := raft.ServerID(fmt.Sprint("c", i+1))
		nodes[i] = &node{id: id, trans: trans, fsm: NewFSM()}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: addr})
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	for _, nd := range nodes {
		cfg := raft.DefaultConfig()
		cfg.LocalID = nd.id
		cfg.HeartbeatTimeout = 100 * time.Millisecond
		cfg.ElectionTimeout = 100 * time.Millisecond
		cfg.LeaderLeaseTimeout = 100 * time.Millisecond
		cfg.CommitTimeout = 5 * time.Millisecond
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Off})
		logs, stable, snaps := raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(cfg, logs, stable, snaps, nd.trans, raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(cfg, nd.fsm, logs, stable, snaps, nd.trans)
		if err != nil {
			t.Fatal(err)
		}
		nd.raft = r
		nd.ctl = New(r, nd.fsm)
		nd.ctl.ApplyTimeout = 2 * time.Second
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.raft.Shutdown().Error()
		}
	})
	return nodes
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, "a leader", func() bool {
		for _, nd := range nodes {
			if nd.raft.State() == raft.Leader {
				leader = nd
				return true
			}
		}
		return false
	})
	return leader
}

// sameImages waits until every node's image encodes identically and
// returns it.
func sameImages(t *testing.T, nodes []*node, minIndex uint64) *Image {
	t.Helper()
	waitFor(t, "identical images", func() bool {
		first := encodeImage(t, nodes[0].fsm.Image())
		for _, nd := range nodes {
			if nd.fsm.Image().Index() < minIndex || !bytes.Equal(first, encodeImage(t, nd.fsm.Image())) {
				return false
			}
		}
		return true
	})
	return nodes[0].fsm.Image()
}

func TestClusterReplicatesImage(t *testing.T) {
	nodes := newCluster(t, 3)
	leader := leaderOf(t, nodes)

	// Three brokers register and are unfenced through the leader.
	for id := int32(1); id <= 3; id++ {
		epoch, err := leader.ctl.RegisterBroker(id, [16]byte{byte(id)}, fmt.Sprintf("127.0.0.1:%d", 9090+id), fmt.Sprintf("127.0.0.1:%d", 9190+id))
		if err != nil {
			t.Fatal(err)
		}
		if err := leader.ctl.UnfenceBroker(id, epoch); err != nil {
			t.Fatal(err)
		}
	}
	// A follower refuses and names the leader.
	for _, nd := range nodes {
		if nd == leader {
			continue
		}
		// A follower learns who leads from the leader's next heartbeat:
		// poll until it names one.
		var err error
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err = nd.ctl.CreateTopic("nope", 1, 1, nil)
			var nc *NotControllerError
			if !errors.Is(err, ErrNotController) || !errors.As(err, &nc) {
				t.Fatalf("follower create: %v", err)
			}
			if nc.LeaderAddr != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("follower never named the leader: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	ordersID, err := leader.ctl.CreateTopic("orders", 6, 3, map[string]string{"retention.ms": "60000"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.ctl.CreateTopic("orders", 1, 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := leader.ctl.CreateTopic("big", 1, 4, nil); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf 4 on 3 brokers: %v", err)
	}
	auditID, err := leader.ctl.CreateTopic("audit", 2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.ctl.CreatePartitions(auditID, 3); err != nil {
		t.Fatal(err)
	}
	if err := leader.ctl.CreatePartitionsAssigned(auditID, 5, [][]int32{{3, 1}}); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("one assignment for two new partitions: %v", err)
	}
	if err := leader.ctl.CreatePartitionsAssigned(auditID, 4, [][]int32{{3, 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.ctl.CreateTopicAssigned("solo", [][]int32{{2}, {4}}, nil); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("assignment to an unregistered broker: %v", err)
	}
	if err := leader.ctl.AlterConfigs(auditID, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	if err := leader.ctl.ReportLeader(ordersID, 0, leader.ctl.Image().mustTopic(t, "orders").Partitions[0].Replicas[1], 1); err != nil {
		t.Fatal(err)
	}
	blk, err := leader.ctl.AllocateProducerIDs(1000)
	if err != nil || blk != (ProducerIDBlock{0, 1000}) {
		t.Fatalf("producer ids %+v %v", blk, err)
	}

	im := sameImages(t, nodes, leader.fsm.Image().Index())
	orders := im.mustTopic(t, "orders")
	if orders.ID != ordersID || len(orders.Partitions) != 6 || orders.Configs["retention.ms"] != "60000" {
		t.Fatalf("orders %+v", orders)
	}
	if audit := im.mustTopic(t, "audit"); len(audit.Partitions) != 4 || audit.Configs["cleanup.policy"] != "compact" ||
		fmt.Sprint(audit.Partitions[3].Replicas) != "[3 1]" {
		t.Fatalf("audit %+v", audit)
	}

	// The leader goes away; a new one is elected and keeps serving from
	// the same image.
	if err := leader.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	var rest []*node
	for _, nd := range nodes {
		if nd != leader {
			rest = append(rest, nd)
			// Calls to a dead in-memory node would wait out a timeout.
			nd.trans.Disconnect(leader.trans.LocalAddr())
		}
	}
	next := leaderOf(t, rest)
	if !bytes.Equal(encodeImage(t, next.ctl.Image()), encodeImage(t, im)) {
		t.Fatal("new leader's image differs")
	}
	if _, err := next.ctl.CreateTopic("orders", 1, 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create on new leader: %v", err)
	}
	if _, err := next.ctl.CreateTopic("after", 3, 2, nil); err != nil {
		t.Fatal(err)
	}
	blk, err = next.ctl.AllocateProducerIDs(10)
	if err != nil || blk.Start != 1000 {
		t.Fatalf("producer ids after failover %+v %v", blk, err)
	}
	im2 := sameImages(t, rest, next.fsm.Image().Index())
	if _, ok := im2.Topic("after"); !ok {
		t.Fatal("topic created after failover missing")
	}
	if im2.mustTopic(t, "orders").ID != ordersID {
		t.Fatal("orders changed across failover")
	}
	// A fenced broker gets no new replicas.
	b3, _ := next.ctl.Image().Broker(3)
	if err := next.ctl.FenceBroker(3, b3.Epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := next.ctl.CreateTopic("wide", 1, 3, nil); err == nil || err.Error() != "Replication factor: 3 larger than available brokers: 2." {
		t.Fatalf("rf 3 with a fenced broker: %v", err)
	}
	if _, err := next.ctl.CreateTopic("narrow", 4, 2, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range next.ctl.Image().mustTopic(t, "narrow").Partitions {
		if slices.Contains(p.Replicas, 3) {
			t.Fatalf("fenced broker 3 placed in %v", p.Replicas)
		}
	}
	if err := next.ctl.DeleteTopic(ordersID); err != nil {
		t.Fatal(err)
	}
	if _, ok := sameImages(t, rest, next.fsm.Image().Index()).Topic("orders"); ok {
		t.Fatal("orders not deleted")
	}

	// A follower installing a snapshot ends with the same image: snapshot
	// the new leader, then compare a fresh FSM restored from it.
	if err := next.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	restore(t, g, snapshot(t, next.fsm))
	if !bytes.Equal(encodeImage(t, g.Image()), encodeImage(t, next.fsm.Image())) {
		t.Fatal("snapshot of the live image does not restore identically")
	}
}

func (im *Image) mustTopic(t *testing.T, name string) Topic {
	t.Helper()
	tp, ok := im.Topic(name)
	if !ok {
		t.Fatalf("topic %q missing", name)
	}
	return tp
}
