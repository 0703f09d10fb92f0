package raftmux

import (
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// BenchmarkApply16KiB measures committed Apply throughput of one three-voter
// group whose members all run in this process, with in-memory log stores, on
// loopback: over the mux, and over hashicorp/raft's own TCP transport for
// comparison. MB/s counts command payload only.
//
//	go test -run '^$' -bench Apply16KiB -benchtime 3000x ./internal/raftmux/
func BenchmarkApply16KiB(b *testing.B) {
	for _, transport := range []string{"mux", "tcp"} {
		for _, appliers := range []int{1, 8} {
			name := fmt.Sprintf("transport=%s/appliers=%d", transport, appliers)
			bc := newBenchCluster(b, transport)
			b.Run(name, func(b *testing.B) { bc.run(b, appliers, 16<<10) })
			bc.close()
		}
	}
}

type benchCluster struct {
	rafts  []*raft.Raft
	trans  []*raft.NetworkTransport
	muxes  []*Mux
	leader *raft.Raft
}

func newBenchCluster(b *testing.B, transport string) *benchCluster {
	bc := &benchCluster{}
	var servers []raft.Server
	for i := range 3 {
		var tr *raft.NetworkTransport
		switch transport {
		case "mux":
			m, err := Listen("127.0.0.1:0", WithNodeID(fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			bc.muxes = append(bc.muxes, m)
			if tr, err = m.Transport("p0", nil); err != nil {
				b.Fatal(err)
			}
		case "tcp":
			var err error
			tr, err = raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, DefaultMaxPool, DefaultTimeout, hclog.NewNullLogger())
			if err != nil {
				b.Fatal(err)
			}
		}
		bc.trans = append(bc.trans, tr)
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprint(i)), Address: tr.LocalAddr()})
	}
	for i, tr := range bc.trans {
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(fmt.Sprint(i))
		conf.HeartbeatTimeout = 500 * time.Millisecond
		conf.ElectionTimeout = 500 * time.Millisecond
		conf.LeaderLeaseTimeout = 250 * time.Millisecond
		conf.Logger = hclog.NewNullLogger()
		store := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(conf, store, store, snaps, tr, raft.Configuration{Servers: servers}); err != nil {
			b.Fatal(err)
		}
		r, err := raft.NewRaft(conf, &countFSM{}, store, store, snaps, tr)
		if err != nil {
			b.Fatal(err)
		}
		bc.rafts = append(bc.rafts, r)
	}
	waitFor(b, pollLimit, "leader", func() error {
		for _, r := range bc.rafts {
			if r.State() == raft.Leader {
				bc.leader = r
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	return bc
}

func (bc *benchCluster) run(b *testing.B, appliers, size int) {
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	b.SetBytes(int64(size))
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range appliers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := bc.leader.Apply(payload, 0).Error(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func (bc *benchCluster) close() {
	for _, r := range bc.rafts {
		_ = r.Shutdown().Error()
	}
	for _, t := range bc.trans {
		_ = t.Close()
	}
	for _, m := range bc.muxes {
		_ = m.Close()
	}
}
