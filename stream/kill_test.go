package stream

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
)

// childEnv makes the test binary run a word-count App instead of tests:
// "addr|state dir|app id|input|output[|session and rebalance timeout]". A
// test can then kill -9 a real process.
const childEnv = "WEIR_TEST_WORDCOUNT_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(spec string) int {
	flag.Parse() // testConfig's logger asks testing.Verbose
	f := strings.Split(spec, "|")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := testConfig(&testing.T{}, f[0], f[2], f[1])
	if len(f) > 5 {
		d, err := time.ParseDuration(f[5])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg.sessionTimeout, cfg.rebalanceTimeout = d, d
	}
	app, err := NewApp(wordCount(f[3], f[4]), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("started")
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startChild runs a word-count App in a child process; extra is the
// optional session and rebalance timeout.
func startChild(t *testing.T, addr, stateDir, appID, in, out string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", fmt.Sprintf("-test.v=%v", testing.Verbose()))
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(append([]string{addr, stateDir, appID, in, out}, extra...), "|"))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("child did not start: %v", err)
	}
	return cmd
}

// committedOn sums the app's committed input offsets on topic.
func committedOn(t *testing.T, adm *kadm.Client, appID, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, appID)
	if err != nil {
		return 0
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// producer writes lines to topic in the background until stopped and
// remembers them.
type producer struct {
	mu    sync.Mutex
	lines []string
	stop  chan struct{}
	done  chan struct{}
}

func startProducing(t *testing.T, addr, topic string) *producer {
	cl := newClient(t, addr)
	p := &producer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				cl.Flush(context.Background())
				return
			default:
			}
			line := fmt.Sprintf("w%d w%d common", i%11, i%5)
			rec := &kgo.Record{Topic: topic, Value: []byte(line)}
			if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err == nil {
				p.mu.Lock()
				p.lines = append(p.lines, line)
				p.mu.Unlock()
			}
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // a steady stream, not a flood
			}
		}
	}()
	return p
}

func (p *producer) finish() []string {
	close(p.stop)
	<-p.done
	return p.lines
}

// TestKillNineRecountsOnlyAfterTheLastCommit kills a word-count process
// with SIGKILL mid-stream and restarts it on the same state directory: the
// store is restored from its changelog, no count is lost, and only words
// after the last commit may be counted twice. Stopped with SIGTERM
// instead, the restart must count exactly.
func TestKillNineRecountsOnlyAfterTheLastCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns app processes")
	}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			b := brokertest.Start(t)
			addr, appID, stateDir := b.Addr(), "crash-"+strings.ReplaceAll(sig.String(), " ", ""), t.TempDir()
			createTopics(t, addr, 4, "in", "out")
			adm := kadm.NewClient(newClient(t, addr))
			prod := startProducing(t, addr, "in")
			child := startChild(t, addr, stateDir, appID, "in", "out")
			waitFor(t, "a first commit", func() bool {
				prod.mu.Lock()
				n := len(prod.lines)
				prod.mu.Unlock()
				return n > 0 && committedOn(t, adm, appID, "in") > 500
			})
			child.Process.Signal(sig)
			child.Wait()
			lines := prod.finish()

			startChild(t, addr, stateDir, appID, "in", "out")
			want := countWords(lines...)
			out := readTopic(t, addr, "out")
			var got map[string]int64
			waitFor(t, "every line counted", func() bool {
				got = out.counts()
				for w, n := range want {
					if got[w] < n {
						return false
					}
				}
				return committedOn(t, adm, appID, "in") == int64(len(lines))
			})
			var excess int64
			for w, n := range got {
				excess += n - want[w]
			}
			t.Logf("%s: %d lines, %d words counted twice", sig, len(lines), excess)
			if sig == syscall.SIGTERM && excess != 0 {
				t.Fatalf("after a clean stop %d words were counted twice:\n got %v\nwant %v", excess, got, want)
			}
		})
	}
}

// TestKillNineRejoinsAtOnce: an instance killed with SIGKILL and restarted
// on its state directory rejoins as the same static member (KIP-345) and
// resumes processing at once, though its old member's session has not
// expired: a new member would wait for the old one until the rebalance
// timeout (both two minutes here, four times waitFor's deadline).
func TestKillNineRejoinsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns app processes")
	}
	b := brokertest.Start(t)
	addr, appID, stateDir := b.Addr(), "static", t.TempDir()
	createTopics(t, addr, 2, "in", "out")
	adm := kadm.NewClient(newClient(t, addr))
	prod := startProducing(t, addr, "in")
	defer prod.finish()
	child := startChild(t, addr, stateDir, appID, "in", "out", "2m")
	waitFor(t, "a first commit", func() bool { return committedOn(t, adm, appID, "in") > 0 })
	child.Process.Kill()
	child.Wait()
	before := committedOn(t, adm, appID, "in")

	startChild(t, addr, stateDir, appID, "in", "out", "2m")
	waitFor(t, "the restarted instance to commit again", func() bool { return committedOn(t, adm, appID, "in") > before })
}

// TestStaticMemberFencedByCopy: two instances started on copies of one
// state directory share a group instance id; the group fences the older
// one, whose Run stops with ErrFenced rather than both processing (under
// at-least-once, where no transactional id tells them apart).
func TestStaticMemberFencedByCopy(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 2, "text", "counts-out")
	dirA, dirB := t.TempDir(), t.TempDir()
	produce(t, addr, "text", lines("a", 10)...)
	a := start(t, wordCount("text", "counts-out"), testConfig(t, addr, "copied", dirA))
	waitFor(t, "the first instance's tasks", func() bool { return len(a.app.TaskStatus()) > 0 })
	id, err := os.ReadFile(filepath.Join(dirA, "copied", "instance.id"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dirB, "copied"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "copied", "instance.id"), id, 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, wordCount("text", "counts-out"), testConfig(t, addr, "copied", dirB))
	var aErr error
	waitFor(t, "the first instance fenced", func() bool {
		select {
		case aErr = <-a.done:
			a.done <- aErr
			return true
		default:
			return false
		}
	})
	if !errors.Is(aErr, ErrFenced) {
		t.Fatalf("the older instance's Run = %v, want ErrFenced", aErr)
	}
}
