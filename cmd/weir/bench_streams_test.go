package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/weir-io/weir/bench/harness"
)

// TestBenchStreams runs every stream workload on both engines through a
// test broker, small, and checks that the results account for every input
// record.
func TestBenchStreams(t *testing.T) {
	addr := startTestBroker(t)
	for _, tc := range []struct {
		workload string
		records  int
		args     []string
	}{
		{"wordcount", 300, []string{"--keys", "50"}},
		{"windowed-revenue", 3000, []string{"--keys", "4", "--rate", "20000"}},
		{"restore", 500, nil},
	} {
		for _, engine := range []string{"weir", "goka"} {
			t.Run(tc.workload+"/"+engine, func(t *testing.T) {
				args := append([]string{tc.workload, "--brokers", addr, "--engine", engine,
					"--records", strconv.Itoa(tc.records), "--commit-interval", "50ms"}, tc.args...)
				_, rec := runBench(t, args...)
				checkStreamRun(t, tc.workload, engine, int64(tc.records), rec)
			})
		}
	}
	t.Run("wordcount/weir/exactly_once_v2", func(t *testing.T) {
		_, rec := runBench(t, "wordcount", "--brokers", addr, "--records", "300", "--keys", "50", "--processing-guarantee", "exactly_once_v2")
		checkStreamRun(t, "wordcount", "weir", 300, rec)
		if rec.Params.Guarantee != "exactly_once_v2" {
			t.Errorf("JSON processing guarantee = %q", rec.Params.Guarantee)
		}
	})
}

func checkStreamRun(t *testing.T, workload, engine string, records int64, rec harness.Run) {
	t.Helper()
	r := rec.Results
	if rec.Workload != workload || rec.Params.Engine != engine || r.Records != records || r.Dropped != 0 {
		t.Errorf("run = %s %s: %d records, %d dropped; want %d, none dropped", rec.Workload, rec.Params.Engine, r.Records, r.Dropped, records)
	}
	if r.RecordsPerSec <= 0 || r.MBPerSec <= 0 || r.ClientCPUSeconds <= 0 {
		t.Errorf("results = %+v", r)
	}
	if workload == "restore" {
		if r.Latency != nil {
			t.Errorf("restore reports a latency: %+v", r.Latency)
		}
		return
	}
	if l := r.Latency; l == nil || l.Count != records || l.P50 <= 0 || l.Max < l.P99 || len(r.CDF) == 0 {
		t.Errorf("latency = %+v, %d CDF points; want %d delays", l, len(r.CDF), records)
	}
	if want := r.RecordsPerSec * wordsPerLine; workload == "wordcount" && (r.UnitName != "words" || math.Abs(r.UnitsPerSec-want) > want*1e-9) {
		t.Errorf("words = %q %v, want %v words/s", r.UnitName, r.UnitsPerSec, r.RecordsPerSec*wordsPerLine)
	}
}

// TestBenchEmbeddedKfake runs a workload on the kfake peer in a child
// process, with heap profiles of both processes.
func TestBenchEmbeddedKfake(t *testing.T) {
	t.Setenv(benchChildEnv, "1") // the child re-executes this test binary
	prof := filepath.Join(t.TempDir(), "heap.prof")
	summary, rec := runBench(t, "consume", "--embedded", "--broker-impl", "kfake", "--records", strconv.Itoa(benchRecords),
		"--linger", "1ms", "--memprofile", prof)
	checkBench(t, "consume", summary, rec, true)
	if rec.Params.BrokerImpl != "kfake" {
		t.Errorf("JSON broker_impl = %q, want kfake", rec.Params.BrokerImpl)
	}
	for _, p := range []string{prof, prof + ".broker"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("heap profile %s: %v", p, err)
		}
	}
}
