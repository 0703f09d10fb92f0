package harness

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseProc(t *testing.T) {
	stat := "1234 (weir (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0"
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3.25 {
		t.Errorf("parseStatCPU = %v, %v; want 3.25", cpu, err)
	}
	hwm, err := parseStatusHWM("Name:\tweir\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1000 kB\n")
	if err != nil || hwm != 2048*1024 {
		t.Errorf("parseStatusHWM = %v, %v; want %d", hwm, err, 2048*1024)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("parseStatCPU(garbage) succeeded")
	}
}

func TestProcAndSelf(t *testing.T) {
	u, err := Proc(os.Getpid())
	if err != nil || u.PeakRSSBytes <= 0 {
		t.Fatalf("Proc(self) = %+v, %v", u, err)
	}
	s, err := Self()
	if err != nil || s.PeakRSSBytes <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("Self() = %+v, %v", s, err)
	}
}

func TestHistogram(t *testing.T) {
	h := NewHistogram()
	if (h.Summary() != Latency{}) {
		t.Errorf("empty summary = %+v", h.Summary())
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.Record(-time.Second) // clamps to 0
	l := h.Summary()
	near := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 }
	if l.Count != 1001 || !near(l.P50, 500) || !near(l.P99, 990) || !near(l.P999, 999) || !near(l.Max, 1000) {
		t.Errorf("summary = %+v", l)
	}
}

func TestPacer(t *testing.T) {
	p := NewPacer(1000)
	if got := p.Due(500).Sub(p.Start()); got != 500*time.Millisecond {
		t.Errorf("Due(500) = start + %v, want 500ms", got)
	}
	due, err := p.Wait(context.Background(), 5)
	if err != nil || time.Now().Before(due) {
		t.Errorf("Wait(5) returned early or failed: %v", err)
	}
	// Many events close together: the pacer reuses its clock reading and
	// timer, and still never lets one go early.
	fast := NewPacer(200_000)
	for i := range int64(2000) {
		due, err := fast.Wait(context.Background(), i)
		if now := time.Now(); err != nil || now.Before(due) {
			t.Fatalf("Wait(%d) = %v, %v at %v: early or failed", i, due, err, now)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fast.Wait(ctx, 2000); err == nil {
		t.Error("Wait on a cancelled context succeeded for a due event")
	}
	if _, err := p.Wait(ctx, 1_000_000); err == nil {
		t.Error("Wait on a cancelled context succeeded")
	}
	if d := time.Since(NewPacer(0).Due(1 << 40)); d < 0 || d > time.Second {
		t.Errorf("unpaced Due is %v from now", d)
	}
}

func TestAppendJSONL(t *testing.T) {
	path := t.TempDir() + "/a/b.jsonl"
	for i := range 2 {
		if err := AppendJSONL(path, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(path)
	if string(raw) != "{\"i\":0}\n{\"i\":1}\n" {
		t.Errorf("file = %q", raw)
	}
	if m := ThisMachine(); m.NumCPU < 1 || m.Go == "" {
		t.Errorf("ThisMachine() = %+v", m)
	}
}

func TestHistogramCDF(t *testing.T) {
	if NewHistogram().CDF() != nil {
		t.Error("empty histogram has a CDF")
	}
	h := NewHistogram()
	for i := 1; i <= 100_000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	cdf := h.CDF()
	if len(cdf) != 52 || cdf[0].P != 0 || cdf[len(cdf)-1].P != 100 {
		t.Fatalf("CDF has %d points from %v to %v; want 52 from 0 to 100", len(cdf), cdf[0].P, cdf[len(cdf)-1].P)
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].P < cdf[i-1].P || cdf[i].Ms < cdf[i-1].Ms {
			t.Errorf("CDF not monotonic at %d: %+v after %+v", i, cdf[i], cdf[i-1])
		}
	}
	if p50 := cdf[3]; p50.Ms < 49 || p50.Ms > 51 { // point 3 is 1-10^-0.3 ≈ 49.9 %
		t.Errorf("CDF point 3 = %+v, want about 50 ms", p50)
	}
	if last := cdf[len(cdf)-1]; last.Ms < 99.9 || last.Ms > 100.1 {
		t.Errorf("CDF max = %+v, want 100 ms", last)
	}
}
