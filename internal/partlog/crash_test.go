package partlog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weir-io/weir/internal/batch"
)

// TestKill9 runs a child process that appends and syncs in a loop,
// reporting each synced offset, kills it with SIGKILL mid-stream, and checks
// that the reopened log holds a valid prefix including everything
// reported synced.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("PARTLOG_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "PARTLOG_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var synced int64
	for n := 0; n < 300 && sc.Scan(); n++ {
		v, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			continue // test framework chatter
		}
		synced = v
	}
	cmd.Process.Kill()
	cmd.Wait()
	if synced == 0 {
		t.Fatal("child reported nothing")
	}
	quietLogs(t)
	l := openLog(t, dir, crashConfig())
	if l.EndOffset() < synced {
		t.Fatalf("LEO %d below synced %d", l.EndOffset(), synced)
	}
	checkLog(t, l)
}

func crashConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 64 << 10
	return c
}

func crashChild(dir string) {
	l, err := Open(dir, crashConfig())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := mkBatch(nil, 10, 100, time.Now().UnixMilli())
			for {
				off, err := l.Append(b)
				if err != nil {
					os.Exit(1)
				}
				if err := l.Sync(off + 10); err != nil {
					os.Exit(1)
				}
				mu.Lock()
				fmt.Println(off + 10)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestReadDuringRetention(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionBytes = 8 << 10
	l := openLog(t, t.TempDir(), cfg)
	for i := range 50 {
		mustAppend(t, l, mkBatch(t, 2, 100, int64(i)))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				off := l.StartOffset()
				data, err := l.Read(off, 4096, l.EndOffset())
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err != nil {
					t.Error(err)
					return
				}
				parts, err := batch.Split(data)
				if err != nil {
					t.Error(err)
					return
				}
				for _, p := range parts {
					if _, err := batch.Validate(p); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for i := range 200 {
		if _, err := l.Append(mkBatch(t, 2, 100, int64(i))); err != nil {
			t.Fatal(err)
		}
		if _, err := l.EnforceRetention(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
