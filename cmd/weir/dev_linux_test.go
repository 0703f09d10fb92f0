package main

import (
	"strings"
	"testing"
	"time"
)

// TestDevClusterKilled checks that the nodes die with weir dev cluster
// even when it cannot stop them, as when it is SIGKILLed: Linux's Pdeathsig.
func TestDevClusterKilled(t *testing.T) {
	t.Parallel()
	p := startDevCluster(t, "--nodes", "2", "--base-port", "0", "--data-dir", t.TempDir(), "--log-level", "warn")
	pids := p.pids(t, 2)
	// Once the nodes have printed their one line, they write nothing more,
	// so a dead parent's broken pipe cannot be what ends them.
	p.await(t, "the nodes to listen", 30*time.Second, func() bool {
		return strings.Count(p.stderr.String(), "| weir broker listening on") == 2
	})
	p.cmd.Process.Kill()
	<-p.exited
	assertNodesGone(t, pids)
}
