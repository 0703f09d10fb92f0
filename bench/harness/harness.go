// Package harness holds the measuring parts of `weir bench`: a latency
// histogram, a pacer for a target rate, CPU and memory use of this process
// and of a child broker, a description of the machine, and JSON-lines
// result files. It knows nothing about Kafka; the workloads live in
// cmd/weir.
package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Usage is the CPU time and peak resident memory of a process.
type Usage struct {
	CPUSeconds   float64 // user + system
	PeakRSSBytes int64
}

// Sub returns the CPU time used between before and u. The peak memory is
// u's: a peak cannot be differenced.
func (u Usage) Sub(before Usage) Usage {
	return Usage{CPUSeconds: u.CPUSeconds - before.CPUSeconds, PeakRSSBytes: u.PeakRSSBytes}
}

// Self returns this process's usage from getrusage(RUSAGE_SELF).
func Self() (Usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, fmt.Errorf("getrusage: %w", err)
	}
	cpu := tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	return Usage{CPUSeconds: cpu, PeakRSSBytes: int64(ru.Maxrss) * 1024}, nil // Maxrss is in KiB on Linux
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// Proc returns the usage of process pid from /proc/<pid>/stat (utime and
// stime) and /proc/<pid>/status (VmHWM, the peak resident set).
func Proc(pid int) (Usage, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	cpu, err := parseStatCPU(string(raw))
	if err != nil {
		return Usage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	raw, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	hwm, err := parseStatusHWM(string(raw))
	if err != nil {
		return Usage{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return Usage{CPUSeconds: cpu, PeakRSSBytes: hwm}, nil
}

// parseStatCPU returns utime+stime in seconds from a /proc/<pid>/stat line.
func parseStatCPU(stat string) (float64, error) {
	// The command name is parenthesised and may hold spaces and
	// parentheses, so count fields from the last ')'. utime and stime are
	// fields 14 and 15 of the line, 12 and 13 after the name.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// parseStatusHWM returns VmHWM in bytes from a /proc/<pid>/status text.
func parseStatusHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM line")
}

// Machine describes where a benchmark ran.
type Machine struct {
	NumCPU int    `json:"nproc"`
	CPU    string `json:"cpu"` // model name from /proc/cpuinfo; empty if unknown
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Go     string `json:"go"`
}

// ThisMachine returns a description of the machine running this process.
func ThisMachine() Machine {
	return Machine{
		NumCPU: runtime.NumCPU(),
		CPU:    cpuModel("/proc/cpuinfo"),
		OS:     runtime.GOOS,
		Arch:   runtime.GOARCH,
		Go:     runtime.Version(),
	}
}

func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model": // x86, arm64, others
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// AppendJSONL appends v as one JSON line to the file at path, creating the
// file and its directory if needed.
func AppendJSONL(path string, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
