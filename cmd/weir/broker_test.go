package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
}
