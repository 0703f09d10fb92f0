package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-io/weir/bench/harness"
)

func fakeRun(rps float64, p99ms float64) harness.Run {
	h := harness.NewHistogram()
	h.Record(time.Duration(p99ms * float64(time.Millisecond)))
	l := h.Summary()
	return harness.Run{Results: harness.Results{RecordsPerSec: rps, MBPerSec: rps / 1e4, Latency: &l, CDF: h.CDF()}}
}

func TestMedian(t *testing.T) {
	rps := func(r harness.Run) float64 { return r.Results.RecordsPerSec }
	for _, tc := range []struct {
		runs []harness.Run
		want float64
	}{
		{nil, 0},
		{[]harness.Run{fakeRun(3, 1), fakeRun(1, 1), fakeRun(2, 1)}, 2},
		{[]harness.Run{fakeRun(4, 1), fakeRun(1, 1), fakeRun(2, 1), fakeRun(10, 1)}, 3},
	} {
		if got := median(tc.runs, rps); got != tc.want {
			t.Errorf("median of %d runs = %v, want %v", len(tc.runs), got, tc.want)
		}
	}
}

// TestReport checks the ratios, verdicts, table and plots of a made-up
// set of results.
func TestReport(t *testing.T) {
	out := t.TempDir()
	d := &driver{cfg: config{runs: 3, scale: 1, out: out}, started: time.Now()}
	tput := &comparison{name: "produce", title: "produce title", metric: throughput, target: 0.9,
		a: &side{label: "weir", args: []string{"bench", "produce"}, runs: []harness.Run{fakeRun(200, 2), fakeRun(100, 3), fakeRun(300, 4)}},
		b: &side{label: "kfake", args: []string{"bench", "produce", "--broker-impl", "kfake"}, runs: []harness.Run{fakeRun(100, 5), fakeRun(50, 6), fakeRun(150, 7)}}}
	lat := &comparison{name: "e2e", title: "e2e title", metric: p99, target: 5,
		a: &side{label: "weir", runs: []harness.Run{fakeRun(10, 6), fakeRun(10, 8), fakeRun(10, 7)}},
		b: &side{label: "kfake", runs: []harness.Run{fakeRun(10, 1), fakeRun(10, 2), fakeRun(10, 3)}}}
	d.done = []*comparison{tput, lat}
	if got := tput.ratio(); got != 2 {
		t.Errorf("produce ratio = %v, want 2", got)
	}
	if got := tput.verdict(); got != "≥0.9× ✓" {
		t.Errorf("produce verdict = %q", got)
	}
	if got := lat.verdict(); got != "≤5 ms ✗" {
		t.Errorf("e2e verdict = %q (median p99 7 ms)", got)
	}
	if err := d.report(); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| produce title | weir | kfake | records/s | 200 | 100 | 2.00× | 2.00× | ≥0.9× ✓ |",
		"`weir bench produce --broker-impl kfake`",
		"median of 3 runs",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("README.md lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"throughput.svg", "throughput.png", "latency.svg", "latency.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestNATSClient publishes and consumes through a real nats-server, when
// one is installed.
func TestNATSClient(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server is not installed")
	}
	for _, mode := range []string{"publish", "consume"} {
		t.Run(mode, func(t *testing.T) {
			servers, err := startNATS(context.Background(), bin, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer servers.stop()
			results := filepath.Join(t.TempDir(), "r.jsonl")
			err = natsClientMain(context.Background(), []string{"--url", servers.urls(), "--mode", mode, "--records", "2000",
				"--results", results, "--broker-pids", servers.pids()})
			if err != nil {
				t.Fatal(err)
			}
			r, err := readRun(results)
			if err != nil {
				t.Fatal(err)
			}
			res := r.Results
			if res.Records != 2000 || res.RecordsPerSec <= 0 || res.BrokerCPUSeconds == nil || *res.BrokerPeakRSSMiB <= 0 {
				t.Errorf("results = %+v", res)
			}
			if got := res.Latency != nil; got != (mode == "publish") || (got && res.Latency.Count != 2000) {
				t.Errorf("%s latency = %+v", mode, res.Latency)
			}
		})
	}
}
