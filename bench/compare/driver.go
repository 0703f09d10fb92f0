package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weir-io/weir/bench/harness"
)

// side is one system of a comparison and how to run it once.
type side struct {
	label string
	args  []string  // weir bench arguments; nil for a NATS side
	nats  *natsSide // set for a NATS side
	runs  []harness.Run
}

// comparison is two sides measured alternately, compared on one metric.
type comparison struct {
	name   string
	title  string
	metric metric
	a, b   *side // a is weir
	// target is the goal for a's metric over b's (higher is better) or
	// the bound on a's value (lower is better); 0 for none.
	target float64
	// prepare, if set, runs before the comparison with the results so far
	// and may fill in the sides' arguments (the e2e rate depends on the
	// measured maximum).
	prepare func(d *driver, c *comparison) error
}

// driver runs comparisons and keeps their results.
type driver struct {
	cfg     config
	jsonl   string
	started time.Time
	done    []*comparison
	skipped []string // comparisons not run, with why
}

func comparisonNames() []string {
	var names []string
	for _, c := range (&driver{cfg: config{scale: 1}}).plan() {
		names = append(names, c.name)
	}
	return names
}

// n scales a record count.
func (d *driver) n(records int) string {
	return strconv.Itoa(max(1000, int(float64(records)*d.cfg.scale)))
}

func weirSide(label string, args ...string) *side { return &side{label: label, args: args} }

// plan lists the comparisons in the order they run.
func (d *driver) plan() []*comparison {
	broker := func(workload, impl string, records int, extra ...string) []string {
		return append([]string{"bench", workload, "--embedded", "--broker-impl", impl, "--records", d.n(records)}, extra...)
	}
	stream := func(workload, engine string, records int) []string {
		return []string{"bench", workload, "--embedded", "--engine", engine, "--records", d.n(records)}
	}
	cs := []*comparison{
		{name: "produce", title: "produce, 100 B records, franz-go, acks=all, 3 partitions", metric: throughput, target: 0.9,
			a: weirSide("weir", broker("produce", "weir", 2_000_000)...), b: weirSide("kfake", broker("produce", "kfake", 2_000_000)...)},
		{name: "consume", title: "consume the same, franz-go", metric: throughput, target: 0.9,
			a: weirSide("weir", broker("consume", "weir", 2_000_000)...), b: weirSide("kfake", broker("consume", "kfake", 2_000_000)...)},
		{name: "e2e-max", title: "produce and consume at once, as fast as possible (the maximum rate for e2e)", metric: throughput,
			a: weirSide("weir", broker("e2e", "weir", 2_000_000, "--linger", "0")...),
			b: weirSide("kfake", broker("e2e", "kfake", 2_000_000, "--linger", "0")...)},
		{name: "e2e", title: "produce→consume latency at half weir's e2e-max rate", metric: p99, target: 5,
			a: weirSide("weir"), b: weirSide("kfake"), prepare: halfMaxRate},
		{name: "e2e-50k", title: "produce→consume latency at 50 k records/s", metric: p99, target: 5,
			a: weirSide("weir", broker("e2e", "weir", 500_000, "--rate", "50000", "--linger", "0")...),
			b: weirSide("kfake", broker("e2e", "kfake", 500_000, "--rate", "50000", "--linger", "0")...)},
		{name: "sarama-produce", title: "produce to weir: franz-go vs sarama clients", metric: throughput,
			a: weirSide("franz-go", broker("produce", "weir", 1_000_000, "--client", "franz-go")...),
			b: weirSide("sarama", broker("produce", "weir", 1_000_000, "--client", "sarama")...)},
		{name: "sarama-consume", title: "consume from weir: franz-go vs sarama clients", metric: throughput,
			a: weirSide("franz-go", broker("consume", "weir", 1_000_000, "--client", "franz-go")...),
			b: weirSide("sarama", broker("consume", "weir", 1_000_000, "--client", "sarama")...)},
		{name: "txn-produce", title: "produce in transactions committed every 100 ms vs idempotent produce, franz-go, one weir broker", metric: throughput,
			a: weirSide("transactional", broker("produce", "weir", 2_000_000, "--transaction-interval", "100ms")...),
			b: weirSide("idempotent", broker("produce", "weir", 2_000_000)...)},
		{name: "wordcount", title: "word count on one weir broker: weir vs goka (LevelDB); a record is a line of 10 words", metric: throughput, target: 10,
			a: weirSide("weir", stream("wordcount", "weir", 200_000)...), b: weirSide("goka", stream("wordcount", "goka", 200_000)...)},
		{name: "wordcount-eos", title: "word count under exactly_once_v2 (100 ms commits) vs at_least_once (1 s commits), one weir broker", metric: throughput, target: 0.8,
			a: weirSide("exactly-once", append(stream("wordcount", "weir", 200_000), "--processing-guarantee", "exactly_once_v2")...),
			b: weirSide("at-least-once", stream("wordcount", "weir", 200_000)...)},
		{name: "wordcount-100ms", title: "word count at_least_once: 100 ms vs 1 s commit interval, one weir broker", metric: throughput, target: 0.8,
			a: weirSide("100ms", append(stream("wordcount", "weir", 200_000), "--commit-interval", "100ms")...),
			b: weirSide("1s", stream("wordcount", "weir", 200_000)...)},
		{name: "wordcount-paced", title: "word count at 2 000 lines/s, which both sustain: delay, not throughput", metric: p99,
			a: weirSide("weir", append(stream("wordcount", "weir", 20_000), "--rate", "2000")...),
			b: weirSide("goka", append(stream("wordcount", "goka", 20_000), "--rate", "2000")...)},
		{name: "windowed-revenue", title: "windowed revenue on one weir broker: weir vs hand-written goka", metric: throughput, target: 5,
			a: weirSide("weir", stream("windowed-revenue", "weir", 500_000)...), b: weirSide("goka", stream("windowed-revenue", "goka", 500_000)...)},
		{name: "restore", title: "restore a word-count store from its changelog: weir vs goka", metric: throughput,
			a: weirSide("weir", stream("restore", "weir", 200_000)...), b: weirSide("goka", stream("restore", "goka", 200_000)...)},
	}
	return append(cs, d.natsPlan()...)
}

// halfMaxRate sets the e2e sides to produce at half the median rate weir
// reached in the e2e-max comparison (producer and consumer at once), for
// ten seconds. Linger is off: at a rate below the maximum it would only
// add latency.
func halfMaxRate(d *driver, c *comparison) error {
	rate := 0.0
	for _, p := range d.done {
		if p.name == "e2e-max" {
			rate = median(p.a.runs, throughput.value)
		}
	}
	if rate <= 0 {
		// Any other rate would be reported under the wrong title.
		return fmt.Errorf("e2e runs at half of e2e-max's rate: run e2e-max in the same invocation (-only e2e-max,e2e)")
	}
	rate = float64(int(rate / 2))
	records := strconv.Itoa(int(rate * 10 * d.cfg.scale))
	for _, s := range []*side{c.a, c.b} {
		s.args = []string{"bench", "e2e", "--embedded", "--broker-impl", s.label, "--records", records,
			"--rate", strconv.Itoa(int(rate)), "--linger", "0"}
	}
	return nil
}

// compare runs both sides cfg.runs times, alternating which goes first.
func (d *driver) compare(ctx context.Context, c *comparison) error {
	if c.prepare != nil {
		if err := c.prepare(d, c); err != nil {
			return err
		}
	}
	for i := range d.cfg.runs {
		order := []*side{c.a, c.b}
		if i%2 == 1 {
			order = []*side{c.b, c.a}
		}
		for _, s := range order {
			r, err := d.runOnce(ctx, s)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", s.label, i+1, err)
			}
			r.Comparison, r.Label, r.Command = c.name, s.label, d.command(s)
			if err := harness.AppendJSONL(d.jsonl, r); err != nil {
				return err
			}
			s.runs = append(s.runs, r)
			fmt.Fprintf(os.Stderr, "%-16s %-8s run %d/%d: %s\n", c.name, s.label, i+1, d.cfg.runs, brief(r))
		}
	}
	d.done = append(d.done, c)
	return nil
}

// brief is one run in a few numbers.
func brief(r harness.Run) string {
	s := fmt.Sprintf("%.0f records/s", r.Results.RecordsPerSec)
	if l := r.Results.Latency; l != nil {
		s += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms", l.P50, l.P99)
	}
	return s
}

// runOnce runs a side in a new process and returns its result line.
func (d *driver) runOnce(ctx context.Context, s *side) (harness.Run, error) {
	f, err := os.CreateTemp("", "weir-compare-*.jsonl")
	if err != nil {
		return harness.Run{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	if s.nats != nil {
		err = d.runNATS(ctx, s.nats, f.Name())
	} else {
		err = d.runWeir(ctx, s.args, f.Name())
	}
	if err != nil {
		return harness.Run{}, err
	}
	return readRun(f.Name())
}

func (d *driver) runWeir(ctx context.Context, args []string, results string) error {
	cmd := exec.CommandContext(ctx, d.cfg.weir, append(append([]string(nil), args...), "--results", results)...)
	// Interrupted, weir bench stops its broker and deletes its topics.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("weir %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// readRun reads the one JSON line a run wrote.
func readRun(path string) (harness.Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return harness.Run{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		return harness.Run{}, fmt.Errorf("%s: no result line", filepath.Base(path))
	}
	var r harness.Run
	if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
		return r, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return r, nil
}

// command is the shell command that reproduces one run of s: the one
// recorded with its last run, or else the one the plan gives.
func (d *driver) command(s *side) string {
	if n := len(s.runs); n > 0 && s.runs[n-1].Command != "" {
		return s.runs[n-1].Command
	}
	if s.nats != nil {
		return s.nats.command()
	}
	return "weir " + strings.Join(s.args, " ")
}

// reportOnly rebuilds the report from a results file: each comparison of
// the plan gets the runs recorded under its name, the last -runs of each
// side.
func reportOnly(c config) error {
	d := &driver{cfg: c, jsonl: filepath.Join(c.out, "runs.jsonl")}
	f, err := os.Open(d.jsonl)
	if err != nil {
		return err
	}
	defer f.Close()
	byName := make(map[string][]harness.Run)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r harness.Run
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", d.jsonl, err)
		}
		byName[r.Comparison+"\x00"+r.Label] = append(byName[r.Comparison+"\x00"+r.Label], r)
		if d.started.IsZero() || r.Time.Before(d.started) {
			d.started = r.Time
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, cmp := range d.plan() {
		for _, s := range []*side{cmp.a, cmp.b} {
			runs := byName[cmp.name+"\x00"+s.label]
			s.runs = runs[max(0, len(runs)-c.runs):]
			if len(s.runs) > 0 {
				s.setRecords(s.runs[len(s.runs)-1].Params.Records)
			}
		}
		if len(cmp.a.runs) > 0 && len(cmp.b.runs) > 0 {
			if cmp.prepare != nil {
				cmp.prepare(d, cmp)
			}
			d.done = append(d.done, cmp)
		}
	}
	return d.report()
}

// setRecords makes the side's command say the records its runs had, for
// runs recorded before runs carried their command.
func (s *side) setRecords(n int64) {
	if s.nats != nil {
		s.nats.records = strconv.FormatInt(n, 10)
	}
	for i := 0; i+1 < len(s.args); i++ {
		if s.args[i] == "--records" {
			s.args[i+1] = strconv.FormatInt(n, 10)
		}
	}
}
