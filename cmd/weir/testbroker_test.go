package main

import (
	"testing"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// startTestBroker starts an embedded weir broker on loopback for the
// duration of t and returns its address. Auto-creation is off so a test
// that forgets `weir topic create` fails instead of passing by accident.
func startTestBroker(t *testing.T) string {
	t.Helper()
	return brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.AutoCreateTopics = false
	})).Addr()
}
