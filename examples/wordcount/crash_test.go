package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/examples/internal/demo"
	"github.com/weir-io/weir/examples/wordcount/wordcount"
	"github.com/weir-io/weir/stream"
)

// The crash tests run the wordcount binary against a broker the test
// starts, feed it a corpus while it processes, kill -9 it four times at
// random points and restart it on the same state directory each time.
//
// Under exactly_once_v2 the final counts are exact, and a read_committed
// reader of the output sees each word's counts strictly increase: no
// update is ever repeated. Under at_least_once no count falls short, but
// the input processed after a crash's last commit is counted again; the
// test logs how many updates it saw repeated or inflated.

func TestCrashExactlyOnce(t *testing.T) { crashTest(t, stream.ExactlyOnceV2) }

func TestCrashAtLeastOnce(t *testing.T) { crashTest(t, stream.AtLeastOnce) }

const (
	crashKills = 4
	// crashFeedRate is the lines fed per second.
	crashFeedRate = 500
	// crashSession is the group session timeout of the app: how long the
	// broker waits for a killed instance before its restarted self gets
	// the tasks (the broker's minimum).
	crashSession = 6 * time.Second
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// wordcountBinary builds this command once per test binary.
func wordcountBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-wordcount-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wordcount")
		cmd := exec.Command(goTool(), "build", "-o", binPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build wordcount: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// app is one run of the wordcount binary.
type app struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

func startApp(t *testing.T, bin, addr, stateDir string, g stream.ProcessingGuarantee) *app {
	t.Helper()
	out := new(syncBuffer)
	cmd := exec.Command(bin, "--brokers", addr, "--state-dir", stateDir,
		"--processing-guarantee", string(g), "--session-timeout", crashSession.String())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &app{cmd: cmd, log: out, exited: make(chan struct{})}
	go func() {
		a.err = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() { a.kill() })
	return a
}

func (a *app) kill() {
	a.cmd.Process.Kill()
	<-a.exited
}

func (a *app) running() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

func crashTest(t *testing.T, g stream.ProcessingGuarantee) {
	if testing.Short() {
		t.Skip("builds and kills app processes")
	}
	bin := wordcountBinary(t)
	addr := brokertest.Start(t).Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := demo.CreateTopics(ctx, addr, map[string]int32{wordcount.Input: 3, wordcount.Output: 3}); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// The corpus is fed at a steady pace for the whole test, so the app
	// is mid-work whenever it is killed.
	feed := startFeeding(t, addr, seed)
	out := newOutputReader(t, addr)
	adm := kadm.NewClient(newClient(t, addr))
	stateDir := t.TempDir()
	var runs []*app
	for kill := range crashKills {
		a := startApp(t, bin, addr, stateDir, g)
		runs = append(runs, a)
		// A random point: once the app makes progress (the broker gives
		// its tasks to the restarted instance when the killed one's
		// session expires), a random number of lines further.
		base := committedLines(ctx, adm)
		waitUntil(t, a, fmt.Sprintf("run %d: progress", kill+1), func() bool { return committedLines(ctx, adm) > base })
		target := committedLines(ctx, adm) + int64(rng.IntN(crashFeedRate))
		waitUntil(t, a, fmt.Sprintf("run %d: %d lines committed", kill+1, target), func() bool {
			return committedLines(ctx, adm) >= target
		})
		a.kill()
		t.Logf("killed the app (-9) with %d lines committed", committedLines(ctx, adm))
	}
	a := startApp(t, bin, addr, stateDir, g)
	runs = append(runs, a)
	base := committedLines(ctx, adm)
	waitUntil(t, a, "progress after the last restart", func() bool { return committedLines(ctx, adm) > base })
	lines := feed.finish(t)
	want := make(map[string]int64)
	for _, l := range lines {
		for _, w := range wordcount.Words(l) {
			want[w]++
		}
	}
	waitUntil(t, a, "every line committed", func() bool { return committedLines(ctx, adm) == int64(len(lines)) })
	waitUntil(t, a, "every count at least the input's", func() bool {
		out.poll()
		return out.atLeast(want)
	})
	if g == stream.ExactlyOnceV2 {
		waitUntil(t, a, "exact counts", func() bool {
			out.poll()
			return out.exact(want)
		})
	}
	a.cmd.Process.Signal(os.Interrupt)
	<-a.exited

	got, repeated := out.result()
	var excess int64
	for w, n := range got {
		excess += n - want[w]
	}
	t.Logf("%s: %d lines, %d distinct words, %d kills: %d output updates, %d of them not above the word's previous count, final counts %d above the input's",
		g, len(lines), len(want), crashKills, out.count(), repeated, excess)
	if g == stream.ExactlyOnceV2 {
		if repeated != 0 {
			t.Errorf("read_committed saw %d updates that did not increase their word's count", repeated)
		}
		if excess != 0 {
			t.Errorf("final counts exceed the input's by %d", excess)
		}
	}
	// The restarted instances restore their stores from the checkpoints,
	// only the changelog tail: under exactly-once the stores on disk never
	// hold uncommitted writes, so no crash makes them unusable. (A store
	// whose task never committed has no checkpoint and restores its
	// changelog from the start: that is not a wiped store.)
	var restores, wiped, restored int
	for _, r := range runs[1:] {
		for _, line := range strings.Split(r.log.String(), "\n") {
			switch {
			case strings.Contains(line, "checkpoint not usable"), strings.Contains(line, "corrupt store"):
				wiped++
			case strings.Contains(line, "restoring store"):
				restores++
				restored += logInt(line, "to=") - logInt(line, "from=")
			}
		}
	}
	t.Logf("restarts restored %d stores, %d changelog records in all; %d stores wiped and rebuilt", restores, restored, wiped)
	if g == stream.ExactlyOnceV2 && wiped > 0 {
		t.Errorf("%d stores were wiped and rebuilt from the changelog after a crash", wiped)
	}
	for w, n := range want {
		if got[w] < n {
			t.Errorf("%q counted %d times, %d in the input: updates lost", w, got[w], n)
		}
	}
}

// logInt reads the integer after key in a log line, or -1.
func logInt(line, key string) int {
	_, rest, ok := strings.Cut(line, key)
	if !ok {
		return -1
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return n
}

// feeder produces random lines of a small vocabulary until finished.
type feeder struct {
	mu    sync.Mutex
	lines []string
	err   error
	stop  chan struct{}
	done  chan error
}

func startFeeding(t *testing.T, addr string, seed uint64) *feeder {
	vocabulary := strings.Fields("the quick brown fox jumps over lazy dog stream table record count " +
		"kafka weir broker commit offset partition task store changelog crash")
	rng := rand.New(rand.NewPCG(seed, 2))
	cl := newClient(t, addr, kgo.DefaultProduceTopic(wordcount.Input))
	f := &feeder{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		tick := time.NewTicker(time.Second / crashFeedRate)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				f.done <- cl.Flush(context.Background())
				return
			case <-tick.C:
			}
			ws := make([]string, 3+rng.IntN(6))
			for j := range ws {
				ws[j] = vocabulary[rng.IntN(len(vocabulary))]
			}
			line := strings.Join(ws, " ")
			f.mu.Lock()
			f.lines = append(f.lines, line)
			f.mu.Unlock()
			cl.Produce(context.Background(), kgo.StringRecord(line), func(_ *kgo.Record, err error) {
				if err != nil {
					f.mu.Lock()
					f.err = err
					f.mu.Unlock()
				}
			})
		}
	}()
	t.Cleanup(func() {
		select {
		case <-f.stop:
		default:
			close(f.stop)
		}
	})
	return f
}

// finish stops feeding and returns the lines fed.
func (f *feeder) finish(t *testing.T) []string {
	close(f.stop)
	if err := <-f.done; err != nil {
		t.Fatalf("feed: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Fatalf("feed: %v", f.err)
	}
	return f.lines
}

// waitUntil polls cond until it holds; the app exiting on its own or the
// deadline fails the test.
func waitUntil(t *testing.T, a *app, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if !a.running() {
			t.Fatalf("the app exited (%v) while waiting for %s:\n%s", a.err, what, a.log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; app log:\n%s", what, a.log)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an effect
	}
}

// committedLines sums the app's committed offsets on the input topic.
func committedLines(ctx context.Context, adm *kadm.Client) int64 {
	offs, err := adm.FetchOffsets(ctx, "wordcount")
	if err != nil {
		return 0
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == wordcount.Input && o.At > 0 {
			n += o.At
		}
	})
	return n
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// outputReader follows the output topic with isolation read_committed.
type outputReader struct {
	cl       *kgo.Client
	latest   map[string]int64
	records  int
	repeated int // updates not above the word's previous count
}

func newOutputReader(t *testing.T, addr string) *outputReader {
	cl := newClient(t, addr, kgo.ConsumeTopics(wordcount.Output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	return &outputReader{cl: cl, latest: make(map[string]int64)}
}

func (o *outputReader) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	o.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
		n, _ := strconv.ParseInt(string(r.Value), 10, 64)
		if n <= o.latest[string(r.Key)] {
			o.repeated++
		}
		o.latest[string(r.Key)] = n
		o.records++
	})
}

func (o *outputReader) count() int { return o.records }

func (o *outputReader) atLeast(want map[string]int64) bool {
	for w, n := range want {
		if o.latest[w] < n {
			return false
		}
	}
	return true
}

func (o *outputReader) exact(want map[string]int64) bool {
	if len(o.latest) != len(want) {
		return false
	}
	return o.atLeast(want) && func() bool {
		for w, n := range o.latest {
			if want[w] != n {
				return false
			}
		}
		return true
	}()
}

func (o *outputReader) result() (map[string]int64, int) {
	o.poll()
	return o.latest, o.repeated
}
