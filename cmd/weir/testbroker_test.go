package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// startTestBroker starts a one-broker cluster on loopback for the duration of
// t and returns its address. It is the only place that knows which broker
// the CLI tests run against: today franz-go's in-memory kfake, later the
// embedded weir broker (broker.Start with a t.TempDir() data directory).
//
// kfake does not create topics automatically, so tests create the topics
// they use with `weir topic create`.
func startTestBroker(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting test broker: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}
