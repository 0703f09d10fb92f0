// Package demo is what the example programs share: flags, an embedded
// broker when no --brokers is given, a sample-data generator, and a
// printer that follows the output topic.
package demo

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/stream"
)

// Flags are the options every example takes.
type Flags struct {
	Brokers  string
	Input    string
	Output   string
	AppID    string
	StateDir string
	HTTP     string
	Records  int
	// Guarantee is --processing-guarantee: at_least_once or
	// exactly_once_v2.
	Guarantee stream.ProcessingGuarantee
	// SessionTimeout is --session-timeout (0: the default, 45s).
	SessionTimeout time.Duration
}

// Parse reads the common flags with the example's defaults.
func Parse(input, output, appID string) Flags {
	var f Flags
	flag.StringVar(&f.Brokers, "brokers", "", "Kafka bootstrap addresses, comma-separated; empty starts an embedded broker and a sample-data generator")
	flag.StringVar(&f.Input, "input", input, "input topic")
	flag.StringVar(&f.Output, "output", output, "output topic")
	flag.StringVar(&f.AppID, "app-id", appID, "application id (consumer group and internal-topic prefix)")
	flag.StringVar(&f.StateDir, "state-dir", "", "state directory (default: a temporary directory)")
	flag.StringVar(&f.HTTP, "http", "", "serve stores, topology and task status on this address, e.g. 127.0.0.1:8080")
	flag.IntVar(&f.Records, "records", 2000, "sample records to generate (embedded mode only)")
	flag.Func("processing-guarantee", "at_least_once (default) or exactly_once_v2 (transactions: read the output with isolation read_committed)",
		func(s string) error {
			g, err := stream.ParseProcessingGuarantee(s)
			f.Guarantee = g
			return err
		})
	flag.DurationVar(&f.SessionTimeout, "session-timeout", 0,
		"how long the group waits for a crashed instance before moving its tasks (default 45s; at least 6s)")
	flag.Parse()
	return f
}

// Embedded starts a broker in a temporary directory, with the given topics
// created, and returns its address and a stop function.
func Embedded(ctx context.Context, topics map[string]int32) (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "weir-demo-")
	if err != nil {
		return "", nil, err
	}
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", filepath.Join(dir, "broker")
	cfg.GroupInitialRebalanceDelay = 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop = func() { b.Close(); os.RemoveAll(dir) }
	if err := CreateTopics(ctx, b.Addr(), topics); err != nil {
		stop()
		return "", nil, err
	}
	fmt.Printf("embedded weir broker on %s\n", b.Addr())
	return b.Addr(), stop, nil
}

// CreateTopics creates topics that do not exist yet.
func CreateTopics(ctx context.Context, addr string, topics map[string]int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for topic, partitions := range topics {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err != nil && resp.Err == nil {
			return err
		}
	}
	return nil
}

// Produce writes records with franz-go, stopping early if ctx ends.
func Produce(ctx context.Context, addr, topic string, next func(i int) *kgo.Record, n int, every time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	tick := time.NewTicker(max(every, time.Microsecond))
	defer tick.Stop()
	for i := range n {
		cl.Produce(ctx, next(i), nil)
		if every > 0 {
			select {
			case <-ctx.Done():
				return cl.Flush(context.Background())
			case <-tick.C:
			}
		}
	}
	return cl.Flush(ctx)
}

// Follow prints every record of topic from the start until ctx ends or
// stop returns true. It reads committed records only (isolation
// read_committed), which for an application under at-least-once, whose
// records are not transactional, is every record.
func Follow(ctx context.Context, addr, topic string, print func(r *kgo.Record) (stop bool)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return err
		}
		stop := false
		fs.EachRecord(func(r *kgo.Record) { stop = stop || print(r) })
		if stop {
			return nil
		}
	}
}

func guarantee(g stream.ProcessingGuarantee) stream.ProcessingGuarantee {
	if g == "" {
		return stream.AtLeastOnce
	}
	return g
}

// StateDir returns dir, or a new temporary directory.
func StateDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return os.MkdirTemp("", "weir-state-")
}

// Example is one example program: its topology and, for the embedded mode,
// how to feed it and check its output.
type Example struct {
	Name       string
	Input      string // default input topic
	Output     string // default output topic
	AppID      string // default application id
	Partitions int32  // of both topics in embedded mode
	Topology   func(input, output string) *stream.Builder
	// Demo feeds the input and follows the output on an embedded broker,
	// returning when the results are checked (or wrong).
	Demo func(ctx context.Context, f Flags, brokers string) error
}

// Run parses the flags and runs the example: against --brokers until ctx
// ends, or on an embedded broker with its generator and check.
func Run(ctx context.Context, ex Example) error {
	f := Parse(ex.Input, ex.Output, ex.AppID)
	stateDir, err := StateDir(f.StateDir)
	if err != nil {
		return err
	}
	brokers, embedded := f.Brokers, f.Brokers == ""
	if embedded {
		addr, stopBroker, err := Embedded(ctx, map[string]int32{f.Input: ex.Partitions, f.Output: ex.Partitions})
		if err != nil {
			return err
		}
		defer stopBroker()
		brokers = addr
	}
	app, err := stream.NewApp(ex.Topology(f.Input, f.Output), stream.AppConfig{
		ApplicationID: f.AppID, Brokers: strings.Split(brokers, ","), StateDir: stateDir, HTTPAddr: f.HTTP,
		ProcessingGuarantee: f.Guarantee, SessionTimeout: f.SessionTimeout,
	})
	if err != nil {
		return err
	}
	if !embedded {
		fmt.Printf("%s: %s → %s on %s (state in %s, %s)\n", ex.Name, f.Input, f.Output, brokers, stateDir, guarantee(f.Guarantee))
		return app.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	err = ex.Demo(ctx, f, brokers)
	cancel()
	if runErr := <-done; err == nil {
		err = runErr
	}
	return err
}
