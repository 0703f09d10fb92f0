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
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/weir-io/weir/bench/harness"
	"github.com/weir-io/weir/broker"
)

// internalBrokerCmd is the hidden `weir bench` subcommand that --embedded
// runs in a child process: a broker on a free loopback port whose address
// is the first line of its stdout.
const internalBrokerCmd = "internal-broker"

func (a *app) benchBrokerCmd(ctx context.Context, w io.Writer, args []string) error {
	fs := newFlagSet("bench "+internalBrokerCmd, "weir bench "+internalBrokerCmd+" --data-dir DIR [--cpuprofile F]",
		"Runs a broker for weir bench --embedded and prints its address.")
	dir := fs.String("data-dir", "", "keep the broker's data in `DIR` (required)")
	profile := fs.String("cpuprofile", "", "write the broker's CPU profile to `F`")
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
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", *dir
	cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("starting broker: %w", err)
	}
	fmt.Fprintln(w, b.Addr())
	<-ctx.Done()
	return b.Close()
}

// embeddedBroker is a weir broker in a child process.
type embeddedBroker struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startEmbeddedBroker runs this executable's hidden internal-broker command
// in a child process and waits for its address.
func (a *app) startEmbeddedBroker(ctx context.Context, cpuprofile string) (*embeddedBroker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--embedded: finding the weir executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return nil, err
	}
	args := []string{"bench", internalBrokerCmd, "--data-dir", dir}
	if cpuprofile != "" {
		args = append(args, "--cpuprofile", cpuprofile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = a.stderr
	// Its own process group keeps a terminal's Ctrl-C from the broker, so
	// that it outlives the clients and stops when bench has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
	if r.broker != nil {
		return "embedded weir"
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

func (r *benchRun) writeSummary(w io.Writer, res benchResult) {
	keys := "no keys"
	if r.keys > 0 {
		keys = fmt.Sprintf("%d keys", r.keys)
	}
	fmt.Fprintf(w, "weir bench %s: %d records of %d B, %s, %d partitions, acks=%s, compression=%s, linger=%v, %s, %s, broker %s\n",
		r.workload, r.records, r.recordSize, keys, r.partitions, r.acks, r.compression, r.linger, r.rateText(), r.client, r.brokerKind())
	sec := res.elapsed.Seconds()
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row("records", res.records, fmt.Sprintf("in %.3f s", sec))
	t.row("throughput", fmt.Sprintf("%.0f records/s", float64(res.records)/sec),
		fmt.Sprintf("%.2f MB/s", float64(res.records)*float64(r.recordSize)/sec/1e6))
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
	if r.workload == "e2e" {
		return "produce→consume"
	}
	return "produce→ack"
}

// benchJSON is one line of a results file.
type benchJSON struct {
	Time     time.Time       `json:"time"`
	Workload string          `json:"workload"`
	Params   benchParamsJSON `json:"params"`
	Machine  harness.Machine `json:"machine"`
	Results  benchResultJSON `json:"results"`
}

type benchParamsJSON struct {
	Broker      string  `json:"broker"` // "embedded" or "external"
	Records     int64   `json:"records"`
	RecordSize  int     `json:"record_size"`
	Keys        int     `json:"keys"`
	Partitions  int     `json:"partitions"`
	Acks        string  `json:"acks"`
	Compression string  `json:"compression"`
	LingerMs    float64 `json:"linger_ms"`
	Rate        float64 `json:"rate"` // records/s; 0 is as fast as possible
	Client      string  `json:"client"`
}

type benchResultJSON struct {
	Records          int64            `json:"records"`
	Seconds          float64          `json:"seconds"`
	RecordsPerSec    float64          `json:"records_per_sec"`
	MBPerSec         float64          `json:"mb_per_sec"`
	LatencyKind      string           `json:"latency_kind,omitempty"` // "produce→ack" or "produce→consume"
	Latency          *harness.Latency `json:"latency,omitempty"`
	ClientCPUSeconds float64          `json:"client_cpu_seconds"`
	ClientPeakRSSMiB float64          `json:"client_peak_rss_mib"`
	BrokerCPUSeconds *float64         `json:"broker_cpu_seconds,omitempty"`
	BrokerPeakRSSMiB *float64         `json:"broker_peak_rss_mib,omitempty"`
}

func (r *benchRun) jsonRecord(res benchResult) benchJSON {
	brokerKind := "external"
	if r.broker != nil {
		brokerKind = "embedded"
	}
	sec := res.elapsed.Seconds()
	out := benchResultJSON{
		Records:          res.records,
		Seconds:          sec,
		RecordsPerSec:    float64(res.records) / sec,
		MBPerSec:         float64(res.records) * float64(r.recordSize) / sec / 1e6,
		ClientCPUSeconds: res.client.CPUSeconds,
		ClientPeakRSSMiB: float64(res.client.PeakRSSBytes) / mib,
	}
	if res.latency != nil {
		l := res.latency.Summary()
		out.Latency, out.LatencyKind = &l, r.latencyKind()
	}
	if res.broker != nil {
		cpu, rss := res.broker.CPUSeconds, float64(res.broker.PeakRSSBytes)/mib
		out.BrokerCPUSeconds, out.BrokerPeakRSSMiB = &cpu, &rss
	}
	return benchJSON{
		Time:     time.Now().UTC(),
		Workload: r.workload,
		Params: benchParamsJSON{
			Broker:      brokerKind,
			Records:     r.records,
			RecordSize:  r.recordSize,
			Keys:        r.keys,
			Partitions:  r.partitions,
			Acks:        r.acks,
			Compression: r.compression,
			LingerMs:    float64(r.linger) / float64(time.Millisecond),
			Rate:        r.rate,
			Client:      r.client,
		},
		Machine: harness.ThisMachine(),
		Results: out,
	}
}
