package broker_test

import (
	"context"
	"testing"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// BenchmarkStartFresh measures how long an embedded broker takes to
// start on an empty data directory (its lone controller voter elects
// itself, registers and records the cluster id) and to close.
func BenchmarkStartFresh(b *testing.B) {
	for b.Loop() {
		cfg := brokertest.Config(b)
		br, err := broker.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		br.Close()
	}
}

// BenchmarkRestart measures a start on a data directory that already
// holds a controller log and a topic.
func BenchmarkRestart(b *testing.B) {
	cfg := brokertest.Config(b)
	br, err := broker.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	br.Close()
	for b.Loop() {
		br, err := broker.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		br.Close()
	}
}
