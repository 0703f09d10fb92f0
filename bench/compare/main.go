// Command compare runs weir's benchmarks side by side with their peers —
// franz-go's kfake broker, goka, the sarama client and NATS JetStream —
// alternating the two sides of each comparison run by run in one
// invocation, so that both see the same machine state. Every run is a
// fresh process (`weir bench ...`, or this program's own NATS client) with
// a fresh broker; it appends one JSON line to <out>/runs.jsonl. At the end
// it writes the medians and ratios to <out>/README.md and plots them in
// <out>/throughput.svg and <out>/latency.svg.
//
//	go run ./bench/compare -runs 5            # or: make bench
//	go run ./bench/compare -runs 3 -scale 0.2 -only produce,wordcount
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == natsClientCmd {
		if err := natsClientMain(ctx, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "nats client:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// config is the driver's flags.
type config struct {
	weir     string  // the weir binary
	runs     int     // runs of each side
	scale    float64 // multiplies every workload's record count
	out      string  // results directory
	only     map[string]bool
	cluster  string // bootstrap list of a running weir cluster, for the RF3 comparison
	natsPath string // nats-server binary; empty to skip NATS
	report   bool   // only rewrite the report from <out>/runs.jsonl
}

func parseFlags() (config, error) {
	var c config
	var only string
	flag.StringVar(&c.weir, "weir", "", "weir binary to benchmark (default: go build ./cmd/weir into a temporary directory)")
	flag.IntVar(&c.runs, "runs", 5, "runs of each side of each comparison")
	flag.Float64Var(&c.scale, "scale", 1, "multiply every workload's record count by this")
	flag.StringVar(&c.out, "out", "bench/results", "write runs.jsonl, README.md and the plots here")
	flag.StringVar(&only, "only", "", "comma-separated comparisons to run (default all): "+strings.Join(comparisonNames(), ","))
	flag.StringVar(&c.cluster, "cluster", "", "bootstrap list of a running 3-broker weir cluster (e.g. from `weir dev cluster`) for the RF3 comparison against NATS R3")
	flag.StringVar(&c.natsPath, "nats-server", "nats-server", "nats-server binary for the NATS JetStream comparisons; they are skipped if it is not found")
	flag.BoolVar(&c.report, "report", false, "run nothing: rewrite README.md and the plots from the runs in <out>/runs.jsonl (with the -scale they ran at)")
	flag.Parse()
	if only != "" {
		c.only = make(map[string]bool)
		for _, n := range strings.Split(only, ",") {
			c.only[strings.TrimSpace(n)] = true
		}
	}
	if c.runs < 1 || c.scale <= 0 {
		return c, fmt.Errorf("-runs must be at least 1 and -scale positive")
	}
	return c, nil
}

func run(ctx context.Context) error {
	c, err := parseFlags()
	if err != nil {
		return err
	}
	if c.report {
		return reportOnly(c)
	}
	if c.weir == "" {
		if c.weir, err = buildWeir(ctx); err != nil {
			return err
		}
	}
	if p, err := exec.LookPath(c.natsPath); err == nil {
		c.natsPath = p
	} else {
		fmt.Fprintf(os.Stderr, "compare: %s not found (apt-get install nats-server); skipping the NATS comparisons\n", c.natsPath)
		c.natsPath = ""
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	d := &driver{cfg: c, jsonl: filepath.Join(c.out, "runs.jsonl"), started: time.Now().UTC()}
	for _, cmp := range d.plan() {
		if c.only != nil && !c.only[cmp.name] {
			continue
		}
		if err := d.compare(ctx, cmp); err != nil {
			return fmt.Errorf("%s: %w", cmp.name, err)
		}
	}
	return d.report()
}

// buildWeir builds ./cmd/weir into a temporary directory.
func buildWeir(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "weir-compare-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "weir")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/weir")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building weir (run from the repository root, or pass -weir): %w", err)
	}
	return bin, nil
}
