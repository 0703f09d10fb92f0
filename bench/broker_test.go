package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
)

// WEIR_BENCH_BROKER_CPUPROFILE=path writes each broker child's CPU profile
// to path.<kind>.

// serveEnv, when set in a child's environment, makes the test binary serve
// a broker instead of running tests.
const serveEnv = "WEIR_BENCH_SERVE"

const (
	recordSize = 100
	partitions = 3
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(serveEnv); kind != "" {
		if err := serve(kind); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// serve runs one broker until SIGTERM, printing its address first.
func serve(kind string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if path := os.Getenv("WEIR_BENCH_BROKER_CPUPROFILE"); path != "" {
		f, err := os.Create(path + "." + kind)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	switch kind {
	case "weir":
		cfg := broker.DefaultConfig()
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", os.Getenv("WEIR_BENCH_DIR")
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		b, err := broker.Start(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Println(b.Addr())
		<-ctx.Done()
		return b.Close()
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
		if err != nil {
			return err
		}
		fmt.Println(c.ListenAddrs()[0])
		<-ctx.Done()
		c.Close()
		return nil
	}
	return fmt.Errorf("unknown broker kind %q", kind)
}

// child is a broker running in a child process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(b *testing.B, kind string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+kind, "WEIR_BENCH_DIR="+b.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		b.Fatalf("%s broker did not start: %v", kind, err)
	}
	c := &child{cmd: cmd, addr: strings.TrimSpace(line)}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	return c
}

// cpuSeconds is the child's user+system CPU time so far.
func (c *child) cpuSeconds(b *testing.B) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// peakRSSMiB is the child's peak resident memory.
func (c *child) peakRSSMiB(b *testing.B) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func newClient(b *testing.B, addr string, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

func createTopic(b *testing.B, cl *kgo.Client, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
}

// values are incompressible record values, reused round-robin.
var values = func() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	vs := make([][]byte, 4096)
	for i := range vs {
		vs[i] = make([]byte, recordSize)
		for j := range vs[i] {
			vs[i][j] = byte(rng.Uint32())
		}
	}
	return vs
}()

// produce sends n records of recordSize bytes with acks=all (franz-go's
// default: idempotent) and waits for every acknowledgement.
func produce(b *testing.B, cl *kgo.Client, topic string, n int) {
	ctx := context.Background()
	var failed error
	for i := range n {
		// Random values: franz-go compresses batches by default, and
		// constant bytes would measure the compressor, not the broker.
		value := values[i%len(values)]
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if failed != nil {
		b.Fatal(failed)
	}
}

// report adds throughput and the broker's resource use to the result.
func report(b *testing.B, c *child, cpu0 float64, start time.Time) {
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "records/s")
	b.ReportMetric((c.cpuSeconds(b)-cpu0)/el, "broker-cores")
	b.ReportMetric(c.peakRSSMiB(b), "broker-peak-MiB")
}

var brokers = []string{"weir", "kfake"}

func BenchmarkBrokerProduce(b *testing.B) {
	for _, kind := range brokers {
		b.Run(kind, func(b *testing.B) {
			c := startChild(b, kind)
			cl := newClient(b, c.addr)
			createTopic(b, cl, "produce")
			produce(b, cl, "produce", 1000) // warm up connections and metadata
			b.SetBytes(recordSize)
			cpu0, start := c.cpuSeconds(b), time.Now()
			b.ResetTimer()
			produce(b, cl, "produce", b.N)
			b.StopTimer()
			report(b, c, cpu0, start)
		})
	}
}

func BenchmarkBrokerConsume(b *testing.B) {
	for _, kind := range brokers {
		b.Run(kind, func(b *testing.B) {
			c := startChild(b, kind)
			pcl := newClient(b, c.addr)
			createTopic(b, pcl, "consume")
			produce(b, pcl, "consume", b.N)
			cl := newClient(b, c.addr, kgo.ConsumeTopics("consume"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.SetBytes(recordSize)
			cpu0, start := c.cpuSeconds(b), time.Now()
			b.ResetTimer()
			for got := 0; got < b.N; {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				got += fs.NumRecords()
			}
			b.StopTimer()
			report(b, c, cpu0, start)
		})
	}
}
