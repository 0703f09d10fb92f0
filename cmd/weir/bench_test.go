package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/weir-io/weir/bench/harness"
	"github.com/weir-io/weir/broker/brokertest"
)

// benchChildEnv, when set, makes the test binary act as the weir binary, so
// that `weir bench --embedded` can re-execute it as the broker child.
const benchChildEnv = "WEIR_TEST_AS_WEIR"

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// runBench runs weir bench with args and returns its summary and the JSON
// line it appended to a results file.
func runBench(t *testing.T, args ...string) (string, harness.Run) {
	t.Helper()
	results := filepath.Join(t.TempDir(), "results", "runs.jsonl")
	var stdout, stderr bytes.Buffer
	args = append([]string{"bench"}, append(args, "--results", results)...)
	if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("weir %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, &stdout, &stderr)
	}
	if stderr.Len() > 0 { // not a terminal: no progress line
		t.Errorf("unexpected stderr: %q", &stderr)
	}
	raw, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 1 {
		t.Fatalf("results file has %d lines, want 1:\n%s", len(lines), raw)
	}
	var rec harness.Run
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("results line %s: %v", lines[0], err)
	}
	return stdout.String(), rec
}

// summaryNumber returns the number matched by re's first group in summary.
func summaryNumber(t *testing.T, summary, re string) float64 {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary does not match %q:\n%s", re, summary)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const benchRecords = 2000

func checkBench(t *testing.T, workload, summary string, rec harness.Run, embedded bool) {
	t.Helper()
	if got := summaryNumber(t, summary, `(?m)^records\s+(\d+)\s`); got != benchRecords {
		t.Errorf("summary records = %v, want %d", got, benchRecords)
	}
	if got := summaryNumber(t, summary, `(?m)^throughput\s+(\d+) records/s`); got <= 0 {
		t.Errorf("summary throughput = %v records/s", got)
	}
	summaryNumber(t, summary, `(?m)^client\s+([\d.]+) CPU s`)
	if rec.Workload != workload || rec.Params.Records != benchRecords {
		t.Errorf("JSON workload and params = %q %+v", rec.Workload, rec.Params)
	}
	if rec.Machine.NumCPU < 1 || rec.Machine.Go == "" || rec.Time.IsZero() {
		t.Errorf("JSON machine and time = %+v %v", rec.Machine, rec.Time)
	}
	r := rec.Results
	if r.Records != benchRecords || r.Seconds <= 0 || r.RecordsPerSec <= 0 || r.MBPerSec <= 0 ||
		r.ClientCPUSeconds <= 0 || r.ClientPeakRSSMiB <= 0 {
		t.Errorf("JSON results = %+v", r)
	}
	if workload == "consume" {
		if r.Latency != nil || strings.Contains(summary, "latency") {
			t.Errorf("consume reports a latency: %+v\n%s", r.Latency, summary)
		}
	} else {
		l := r.Latency
		if l == nil {
			t.Fatalf("JSON has no latency:\n%s", summary)
		}
		if l.Count != benchRecords || l.P50 <= 0 || l.P99 < l.P50 || l.P999 < l.P99 || l.Max < l.P999 || l.Mean <= 0 {
			t.Errorf("JSON latency = %+v", *l)
		}
		if got := summaryNumber(t, summary, `(?m)^latency\s+p50 ([\d.]+) ms\s+p99 [\d.]+ ms\s+p99\.9 [\d.]+ ms\s+max [\d.]+ ms`); got <= 0 {
			t.Errorf("summary p50 = %v ms", got)
		}
	}
	if embedded {
		if r.BrokerCPUSeconds == nil || r.BrokerPeakRSSMiB == nil || *r.BrokerPeakRSSMiB <= 0 {
			t.Errorf("JSON broker usage = %v %v", r.BrokerCPUSeconds, r.BrokerPeakRSSMiB)
		}
		summaryNumber(t, summary, `(?m)^broker\s+([\d.]+) CPU s`)
	} else if r.BrokerCPUSeconds != nil || strings.Contains(summary, "\nbroker ") {
		t.Errorf("broker usage reported for an external broker:\n%s", summary)
	}
}

func TestBenchWorkloads(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	for _, tc := range []struct {
		workload string
		args     []string
	}{
		{"produce", []string{"--acks", "1", "--compression", "lz4", "--keys", "10"}},
		{"produce", []string{"--transaction-interval", "5ms"}},
		{"consume", []string{"--compression", "snappy", "--partitions", "2"}},
		{"e2e", []string{"--rate", "40000", "--record-size", "64"}},
		{"produce", []string{"--client", "sarama", "--compression", "zstd"}},
		{"consume", []string{"--client", "sarama", "--acks", "0"}},
		{"e2e", []string{"--client", "sarama", "--keys", "3"}},
	} {
		client := "franz-go"
		for i, a := range tc.args {
			if a == "--client" {
				client = tc.args[i+1]
			}
		}
		t.Run(client+"/"+tc.workload, func(t *testing.T) {
			args := append([]string{tc.workload, "--brokers", addr, "--records", strconv.Itoa(benchRecords), "--linger", "1ms"}, tc.args...)
			summary, rec := runBench(t, args...)
			checkBench(t, tc.workload, summary, rec, false)
			if rec.Params.Client != client {
				t.Errorf("JSON client = %q, want %q", rec.Params.Client, client)
			}
			if tc.workload == "e2e" && client == "franz-go" && (rec.Params.Rate != 40000 || rec.Params.RecordSize != 64) {
				t.Errorf("JSON params = %+v", rec.Params)
			}
		})
	}
}

func TestBenchEmbedded(t *testing.T) {
	t.Setenv(benchChildEnv, "1") // the child re-executes this test binary
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	summary, rec := runBench(t, "e2e", "--embedded", "--records", strconv.Itoa(benchRecords), "--linger", "1ms", "--cpuprofile", prof)
	checkBench(t, "e2e", summary, rec, true)
	if rec.Params.Broker != "embedded" {
		t.Errorf("JSON broker = %q, want embedded", rec.Params.Broker)
	}
	for _, p := range []string{prof, prof + ".broker"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("CPU profile %s: %v", p, err)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "nope"},
		{"bench", "produce", "--client", "confluent"},
		{"bench", "produce", "--acks", "2"},
		{"bench", "produce", "--compression", "brotli"},
		{"bench", "produce", "--records", "0"},
		{"bench", "e2e", "--record-size", "4"},
		{"bench", "e2e", "--rate", "-1"},
		{"bench", "consume", "extra"},
		{"bench", "produce", "--broker-impl", "kfake"}, // without --embedded
		{"bench", "produce", "--broker-impl", "redpanda", "--embedded"},
		{"bench", "produce", "--embedded", "--broker-pid", "1"},
		{"bench", "wordcount", "--engine", "flink"},
		{"bench", "wordcount", "--keys", "0"},
		{"bench", "restore", "--keys", "3"}, // restore has no --keys
		{"bench", "produce", "--transaction-interval", "1s", "--acks", "1"},
		{"bench", "e2e", "--transaction-interval", "1s"},
		{"bench", "wordcount", "--processing-guarantee", "exactly_once"},
		{"bench", "wordcount", "--engine", "goka", "--processing-guarantee", "exactly_once_v2"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("weir %s: exit %d, want 2; stderr: %s", strings.Join(args, " "), code, &stderr)
		}
	}
}
