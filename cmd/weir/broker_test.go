package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-io/weir/broker"
)

// runBroker runs `weir broker args...` until the test ends or stop is
// called, and returns the address it listens on.
func runBroker(t *testing.T, args ...string) (addr string, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"broker"}, args...), strings.NewReader(""), &stdout, &stderr)
	}()
	stop = sync.OnceValue(func() result {
		cancel()
		select {
		case code := <-done:
			return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
		case <-time.After(30 * time.Second):
			t.Fatalf("weir broker did not stop; stderr:\n%s", stderr.String())
			return result{}
		}
	})
	t.Cleanup(func() { stop() })
	waitFor(t, "weir broker to listen", func() error {
		select {
		case code := <-done:
			t.Fatalf("weir broker exited %d:\n%s", code, stderr.String())
		default:
		}
		rest, ok := strings.CutPrefix(stdout.String(), "weir broker listening on ")
		addr, _, _ = strings.Cut(rest, " ")
		return check(ok && strings.HasSuffix(rest, "\n"), "stdout: "+stdout.String())
	})
	return addr, stop
}

func TestBrokerCommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	addr, stop := runBroker(t, "--listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn")

	mustWeir(t, addr, "", "topic", "create", "t", "--partitions", "2")
	mustWeir(t, addr, "a\nb\n", "produce", "t")
	r := stop()
	if want := fmt.Sprintf("weir broker listening on %s (data in %s)\n", addr, dir); r.code != 0 || r.stdout != want {
		t.Errorf("weir broker: exit %d, stdout %q; want 0, %q", r.code, r.stdout, want)
	}
	if !strings.Contains(r.stderr, "weir broker shutting down") {
		t.Errorf("weir broker stderr lacks the shutdown notice:\n%s", r.stderr)
	}

	// The records survive a restart, here configured by a file.
	conf := filepath.Join(t.TempDir(), "weir.conf")
	if err := os.WriteFile(conf, []byte("listen = 127.0.0.1:0\ndata-dir = "+dir+"\nlog-level = warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ = runBroker(t, "--config", conf)
	r = mustWeir(t, addr, "", "consume", "t", "--from-beginning", "--max", "2", "--format", "%v")
	if got := strings.Fields(r.stdout); len(got) != 2 {
		t.Errorf("after restart consumed %q, want the 2 records", r.stdout)
	}
}

func TestBrokerCommandUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"broker"}, 2, "--data-dir is required"},
		{[]string{"broker", "--data-dir", t.TempDir(), "--default-partitions", "0"}, 2, "DefaultPartitions 0"},
		{[]string{"broker", "--data-dir", t.TempDir(), "--log-level", "loud"}, 2, "invalid --log-level"},
		{[]string{"broker", "--config", filepath.Join(t.TempDir(), "missing.conf")}, 1, "reading config"},
	} {
		r := weirCtx(context.Background(), "", "", tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("weir %q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.stderr)
		}
	}
	r := weirCtx(context.Background(), "", "", "broker", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "--data-dir DIR") || strings.Contains(r.stdout, "--brokers") {
		t.Errorf("weir broker -h: exit %d\n%s", r.code, r.stdout)
	}
	for _, flag := range []string{"--voters ID@HOST:PORT,...", "--raft-listen host:port", "--replication-factor N",
		"--raft-timeout timeout", "--node-id ID"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("weir broker -h lacks %q:\n%s", flag, r.stdout)
		}
	}
}

const testVoters = "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"

// TestBrokerClusterFlags checks that the cluster flags land in
// broker.Config, from the command line and from a config file.
func TestBrokerClusterFlags(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "weir.conf")
	if err := os.WriteFile(conf, []byte("voters = "+testVoters+"\nreplication.factor = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--node-id", "2", "--voters", testVoters, "--replication-factor", "2", "--raft-timeout", "250ms", "--offsets-partitions", "6", "--replica-lag-time-max", "5s"},
		{"--node-id=2", "--config", conf, "--raft-timeout=250ms", "--offsets-partitions=6", "--replica-lag-time-max=5s"},
	} {
		cfg := broker.DefaultConfig()
		fs, _, configFile := brokerFlags(&cfg)
		if _, err := fs.parse(io.Discard, args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if *configFile != "" {
			if err := applyConfigFile(fs.FlagSet, *configFile); err != nil {
				t.Fatal(err)
			}
		}
		if err := completeClusterConfig(&cfg); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		want := []broker.Voter{{ID: 1, RaftAddr: "127.0.0.1:9101"}, {ID: 2, RaftAddr: "127.0.0.1:9102"}, {ID: 3, RaftAddr: "127.0.0.1:9103"}}
		if cfg.NodeID != 2 || !slices.Equal(cfg.Voters, want) || cfg.DefaultReplicationFactor != 2 ||
			cfg.RaftTimeout != 250*time.Millisecond || cfg.OffsetsPartitions != 6 || cfg.ReplicaLagTimeMax != 5*time.Second {
			t.Errorf("%q: node %d, voters %v, replication factor %d, raft timeout %v", args,
				cfg.NodeID, cfg.Voters, cfg.DefaultReplicationFactor, cfg.RaftTimeout)
		}
		// --raft-listen defaults to this node's voter address.
		if cfg.RaftListen != "127.0.0.1:9102" {
			t.Errorf("%q: RaftListen = %q, want node 2's voter address", args, cfg.RaftListen)
		}
	}
}

// TestBrokerClusterFlagErrors checks that bad cluster flags fail as usage
// errors that name the problem, before any broker starts.
func TestBrokerClusterFlagErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--voters", "1@127.0.0.1"}, `invalid value "1@127.0.0.1" for flag -voters: voter "1@127.0.0.1"`},
		{[]string{"--voters", "one@127.0.0.1:9101"}, "node id must be a non-negative integer"},
		{[]string{"--voters", "1@127.0.0.1:9101,1@127.0.0.1:9102"}, "node id 1 appears twice"},
		{[]string{"--voters", testVoters, "--node-id", "4"}, "RaftListen is required for node 4, which is not among the voters (a broker-only node)"},
		{[]string{"--voters", testVoters, "--node-id", "4", "--raft-listen", "0.0.0.0:9104"}, "not a wildcard"},
		{[]string{"--voters", testVoters, "--replication-factor", "4"}, "DefaultReplicationFactor 4 is outside 1..3"},
		{[]string{"--voters", testVoters, "--raft-timeout", "-1s"}, "RaftTimeout is negative"},
		{[]string{"--voters", testVoters, "--replica-lag-time-max", "-1s"}, "ReplicaLagTimeMax is negative"},
		{[]string{"--raft-timeout", "soon"}, `invalid value "soon" for flag -raft-timeout`},
		{[]string{"--replication-factor", "70000"}, "want a 16-bit integer"},
		{[]string{"--replication-factor", "2"}, "--replication-factor 2 needs --voters"},
		{[]string{"--replication-factor", "-1"}, "--replication-factor -1 is negative"},
	} {
		args := append([]string{"broker", "--data-dir", dir}, tt.args...)
		r := weirCtx(context.Background(), "", "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("weir %q: exit %d, stderr %q; want 2 and %q", args, r.code, r.stderr, tt.stderr)
		}
	}
}
