package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
)

// childEnv makes the test binary serve a broker from the named directory
// instead of running tests, so a test can kill -9 a real process.
const childEnv = "WEIR_TEST_BROKER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		serveChild(dir)
		return
	}
	os.Exit(m.Run())
}

func serveChild(dir string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(b.Addr())
	<-ctx.Done()
	b.Close()
}

// startProcess runs a broker in a child process and returns its address.
func startProcess(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("broker process did not start: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

// TestKillNineLosesNoAcknowledgedRecord kills the broker process mid-produce
// and checks, after a restart, that every acknowledged record is present,
// in order, exactly once.
func TestKillNineLosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns broker processes")
	}
	dir := t.TempDir()
	cmd, addr := startProcess(t, dir)
	ctx := testCtx(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("crash"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.RecordRetries(0),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked = make(map[string]bool)
	)
	produced := 0
	killAt := 5000
	for ; produced < killAt*4; produced++ {
		v := fmt.Sprintf("r%06d", produced)
		cl.Produce(ctx, kgo.StringRecord(v), func(_ *kgo.Record, err error) {
			if err == nil {
				mu.Lock()
				acked[v] = true
				mu.Unlock()
			}
		})
		if produced == killAt {
			// Wait until some records are acknowledged, then kill with
			// more in flight.
			waitFor(t, ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 1000 })
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			break
		}
	}
	cl.Close() // fails whatever was still in flight
	// Close has run every callback, but the race detector only knows
	// that through mu: read acked under it from here on.
	mu.Lock()
	defer mu.Unlock()
	nAcked := len(acked)

	_, addr2 := startProcess(t, dir)
	got := consumeAll(t, ctx, addr2, "crash")
	seen := make(map[string]int)
	for _, r := range got {
		seen[string(r.Value)]++
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged record %s appears %d times after restart", v, seen[v])
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %s appears %d times", v, n)
		}
	}
	// Within a partition, order is production order.
	last := make(map[int32]string)
	for _, r := range got {
		if v := string(r.Value); v <= last[r.Partition] {
			t.Fatalf("partition %d: %s after %s", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = string(r.Value)
	}
	t.Logf("%d acknowledged before kill -9, %d records after restart", nAcked, len(got))
}

func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met before deadline")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// consumeAll reads topic from the start up to its current end.
func consumeAll(t *testing.T, ctx context.Context, addr, topic string) []*kgo.Record {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ends := listEnds(t, ctx, cl, topic)
	var got []*kgo.Record
	done := func() bool {
		for p, end := range ends {
			if end > 0 && !reached(got, p, end) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records before deadline; ends %v", len(got), ends)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func reached(recs []*kgo.Record, p int32, end int64) bool {
	for _, r := range recs {
		if r.Partition == p && r.Offset == end-1 {
			return true
		}
	}
	return false
}
