package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-io/weir/bench/harness"
	"github.com/weir-io/weir/broker"
)

// internalBrokerCmd is the hidden `weir bench` subcommand that --embedded
// runs in a child process: a broker on a free loopback port whose address
// is the first line of its stdout.
const internalBrokerCmd = "internal-broker"

func (a *app) benchBrokerCmd(ctx context.Context, w io.Writer, args []string) error {
	fs := newFlagSet("bench "+internalBrokerCmd, "weir bench "+internalBrokerCmd+" --data-dir DIR [--impl weir|kfake] [--cpuprofile F] [--memprofile F]",
		"Runs a broker for weir bench --embedded and prints its address.")
	dir := fs.String("data-dir", "", "keep the broker's data in `DIR` (required)")
	impl := fs.String("impl", "weir", "the broker: weir or kfake")
	cpuprofile := fs.String("cpuprofile", "", "write the broker's CPU profile to `F`")
	memprofile := fs.String("memprofile", "", "write the broker's heap profile at shutdown to `F`")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := fs.positional(pos); err != nil {
		return err
	}
	if *dir == "" {
		return fs.usageErr("--data-dir is required")
	}
	stopProfiles, err := startProfiles(*cpuprofile, *memprofile)
	if err != nil {
		return err
	}
	serve := map[string]func(context.Context, io.Writer, string) error{"weir": a.serveWeir, "kfake": serveKfake}[*impl]
	if serve == nil {
		return fs.usageErr("--impl must be weir or kfake, got %q", *impl)
	}
	err = serve(ctx, w, *dir)
	return errors.Join(err, stopProfiles())
}

// serveWeir runs a weir broker until ctx ends, printing its address first.
func (a *app) serveWeir(ctx context.Context, w io.Writer, dir string) error {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	// A new group's first rebalance waits this long for more members; the
	// stream workloads start one member and measure from its warm-up.
	cfg.GroupInitialRebalanceDelay = 0
	cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("starting broker: %w", err)
	}
	fmt.Fprintln(w, b.Addr())
	<-ctx.Done()
	return b.Close()
}

// serveKfake runs franz-go's in-memory fake Kafka, the peer weir's broker
// is measured against, until ctx ends.
func serveKfake(ctx context.Context, w io.Writer, _ string) error {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	fmt.Fprintln(w, c.ListenAddrs()[0])
	<-ctx.Done()
	c.Close()
	return nil
}

// embeddedBroker is a broker in a child process.
type embeddedBroker struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startEmbeddedBroker runs this executable's hidden internal-broker command
// in a child process and waits for its address.
func (a *app) startEmbeddedBroker(ctx context.Context, impl, cpuprofile, memprofile string) (*embeddedBroker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--embedded: finding the weir executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return nil, err
	}
	args := []string{"bench", internalBrokerCmd, "--data-dir", dir, "--impl", impl,
		"--cpuprofile", cpuprofile, "--memprofile", memprofile}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = a.stderr
	cmd.SysProcAttr = childProcAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--embedded: starting the broker: %w", err)
	}
	b := &embeddedBroker{cmd: cmd, dir: dir}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case b.addr = <-lines:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	if b.addr == "" {
		b.stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.New("--embedded: the broker did not start (see its errors above)")
	}
	return b, nil
}

// usage is the broker's CPU time so far and its peak memory.
func (b *embeddedBroker) usage() (harness.Usage, error) {
	u, err := harness.Proc(b.cmd.Process.Pid)
	if err != nil {
		return u, fmt.Errorf("reading the embedded broker's usage: %w", err)
	}
	return u, nil
}

// stop shuts the broker down, killing it if it takes more than 10 s, and
// removes its data.
func (b *embeddedBroker) stop() error {
	defer os.RemoveAll(b.dir)
	b.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-exited
		return errors.New("embedded broker did not shut down within 10s; killed it")
	}
}

// showProgress rewrites one line of w every interval with the phase, the
// records done, the rate over the last interval and, for latency
// workloads, the p99 so far, until the returned stop is called.
func (r *benchRun) showProgress(w io.Writer, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		shown := false
		last, lastAt, lastPhase := int64(0), time.Now(), ""
		for {
			select {
			case now := <-tick.C:
				phase, n := r.phase.Load().(string), r.done.Load()
				if phase != lastPhase {
					last, lastPhase = 0, phase
				}
				line := fmt.Sprintf("%s %d/%d records, %s records/s", phase, n, r.records,
					humanCount(float64(n-last)/now.Sub(lastAt).Seconds()))
				if r.hist != nil && r.hist.Count() > 0 && r.phase.Load() != "warming up" {
					line += fmt.Sprintf(", p99 %s ms", fmtMs(r.hist.Quantile(99).Seconds()*1e3))
				}
				last, lastAt = n, now
				fmt.Fprintf(w, "\r\033[K%s", line)
				shown = true
			case <-done:
				if shown {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// humanCount formats n with a k or M suffix.
func humanCount(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

// fmtMs formats milliseconds with three significant digits.
func fmtMs(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f", ms)
	}
	return fmt.Sprintf("%.3f", ms)
}

func (r *benchRun) brokerKind() string {
	if r.embedded {
		return "embedded " + r.brokerImpl
	}
	return "external (" + r.a.brokers + ")"
}

func (r *benchRun) rateText() string {
	if r.rate == 0 {
		return "max rate"
	}
	return fmt.Sprintf("rate %g records/s", r.rate)
}

const mib = 1 << 20

// header is the summary's first line: what ran, with which parameters.
func (r *benchRun) header() string {
	if isStreamWorkload(r.workload) {
		return fmt.Sprintf("weir bench %s: engine %s, %d records, %d keys, %d partitions, %s, broker %s",
			r.workload, r.engine, r.records, r.keys, r.partitions, r.rateText(), r.brokerKind())
	}
	keys := "no keys"
	if r.keys > 0 {
		keys = fmt.Sprintf("%d keys", r.keys)
	}
	return fmt.Sprintf("weir bench %s: %d records of %d B, %s, %d partitions, acks=%s, compression=%s, linger=%v, %s, %s, broker %s",
		r.workload, r.records, r.recordSize, keys, r.partitions, r.acks, r.compression, r.linger, r.rateText(), r.client, r.brokerKind())
}

func (r *benchRun) writeSummary(w io.Writer, res benchResult) {
	fmt.Fprintln(w, r.header())
	sec := res.elapsed.Seconds()
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row("records", res.records, fmt.Sprintf("in %.3f s", sec))
	t.row("throughput", fmt.Sprintf("%.0f records/s", float64(res.records)/sec),
		fmt.Sprintf("%.2f MB/s", float64(res.bytes)/sec/1e6))
	if st := res.stream; st != nil && st.unitName != "" {
		t.row(st.unitName, st.units, fmt.Sprintf("%.0f %s/s", float64(st.units)/sec, st.unitName))
	}
	if st := res.stream; st != nil && st.dropped > 0 {
		t.row("dropped", st.dropped, "input records no result includes (late for their window)")
	}
	if res.latency != nil {
		l := res.latency.Summary()
		t.row("latency", fmt.Sprintf("p50 %s ms  p99 %s ms  p99.9 %s ms  max %s ms", fmtMs(l.P50), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max)),
			r.latencyKind())
	}
	t.row("client", fmt.Sprintf("%.2f CPU s (%.2f cores)", res.client.CPUSeconds, res.client.CPUSeconds/sec),
		fmt.Sprintf("peak RSS %.1f MiB", float64(res.client.PeakRSSBytes)/mib))
	if res.broker != nil {
		t.row("broker", fmt.Sprintf("%.2f CPU s (%.2f cores)", res.broker.CPUSeconds, res.broker.CPUSeconds/sec),
			fmt.Sprintf("peak RSS %.1f MiB", float64(res.broker.PeakRSSBytes)/mib))
	}
	t.flush()
}

func (r *benchRun) latencyKind() string {
	switch r.workload {
	case "e2e":
		return "produce→consume"
	case "produce":
		return "produce→ack"
	}
	return "produce→result"
}

func (r *benchRun) jsonRecord(res benchResult) harness.Run {
	sec := res.elapsed.Seconds()
	out := harness.Results{
		Records:          res.records,
		Seconds:          sec,
		RecordsPerSec:    float64(res.records) / sec,
		MBPerSec:         float64(res.bytes) / sec / 1e6,
		ClientCPUSeconds: res.client.CPUSeconds,
		ClientPeakRSSMiB: float64(res.client.PeakRSSBytes) / mib,
	}
	if st := res.stream; st != nil {
		out.UnitName, out.Dropped = st.unitName, st.dropped
		if st.unitName != "" {
			out.UnitsPerSec = float64(st.units) / sec
		}
	}
	if res.latency != nil {
		l := res.latency.Summary()
		out.Latency, out.LatencyKind, out.CDF = &l, r.latencyKind(), res.latency.CDF()
	}
	if res.broker != nil {
		cpu, rss := res.broker.CPUSeconds, float64(res.broker.PeakRSSBytes)/mib
		out.BrokerCPUSeconds, out.BrokerPeakRSSMiB = &cpu, &rss
	}
	return harness.Run{
		Time:     time.Now().UTC(),
		Workload: r.workload,
		Params:   r.jsonParams(),
		Machine:  harness.ThisMachine(),
		Results:  out,
	}
}

func (r *benchRun) jsonParams() harness.Params {
	p := harness.Params{
		Broker:      "external",
		Records:     r.records,
		RecordSize:  r.recordSize,
		Keys:        r.keys,
		Partitions:  r.partitions,
		Acks:        r.acks,
		Compression: r.compression,
		LingerMs:    float64(r.linger) / float64(time.Millisecond),
		Rate:        r.rate,
		Client:      r.client,
		Engine:      r.engine,
	}
	if r.embedded {
		p.Broker, p.BrokerImpl = "embedded", r.brokerImpl
	}
	if r.engine == "weir" {
		p.CommitIntervalMs = float64(r.commitInterval) / float64(time.Millisecond)
		p.Guarantee = r.guarantee
	}
	return p
}
