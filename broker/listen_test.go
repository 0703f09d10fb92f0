package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// A broker with a fixed Kafka port opens it only once it is registered
// and caught up, as Kafka's does: a script that waits for a cluster's ports
// and then creates a topic replicated to all of them must not find a
// broker missing.
func TestFixedPortOpensOnceRegistered(t *testing.T) {
	const n = 3
	var kafka []string
	var voters []broker.Voter
	for i := range n {
		kafka = append(kafka, brokertest.FreeAddr(t))
		voters = append(voters, broker.Voter{ID: int32(i + 1), RaftAddr: brokertest.FreeAddr(t)})
	}
	started := make([]chan *broker.Broker, n)
	start := func(i int) {
		cfg := brokertest.Config(t)
		cfg.NodeID, cfg.Voters, cfg.RaftListen, cfg.Listen = int32(i+1), voters, voters[i].RaftAddr, kafka[i]
		started[i] = make(chan *broker.Broker, 1)
		go func() {
			b, err := broker.Start(context.Background(), cfg)
			if err != nil {
				t.Errorf("start node %d: %v", i+1, err)
			}
			started[i] <- b
		}()
	}
	var running []*broker.Broker
	t.Cleanup(func() {
		for _, b := range running {
			b.Close()
		}
	})
	ctx := testCtx(t)

	// Alone, node 1 has no quorum to register with: once its Raft port is
	// up (it is bound after where the Kafka port used to be), the Kafka
	// port must still refuse connections.
	start(0)
	awaitDial(t, ctx, voters[0].RaftAddr)
	if c, err := net.Dial("tcp", kafka[0]); err == nil {
		c.Close()
		t.Fatal("node 1's Kafka port accepts connections before it could register")
	}

	start(1)
	start(2)
	for i := range n {
		awaitDial(t, ctx, kafka[i])
	}
	// Every port is open, so every broker is registered: an RF 3 topic
	// can be created at once.
	cl := client(t, kafka[0], kgo.SeedBrokers(kafka...))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "all-three"); err != nil {
		t.Fatalf("create an RF 3 topic as soon as the ports open: %v", err)
	}
	for i := range n {
		if b := <-started[i]; b != nil {
			running = append(running, b)
		}
	}
}

// awaitDial polls until addr accepts a TCP connection.
func awaitDial(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never accepted a connection", addr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
