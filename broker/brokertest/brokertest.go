// Package brokertest starts in-process weir brokers for tests: on a
// loopback ephemeral port, in a temporary directory, closed when the test
// ends.
package brokertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/weir-io/weir/broker"
)

// Option adjusts the broker's config before it starts.
type Option func(*broker.Config)

// WithConfig applies f to the config.
func WithConfig(f func(*broker.Config)) Option { return Option(f) }

// WithDataDir uses dir instead of a fresh temporary directory, so a test can
// restart a broker on the same data.
func WithDataDir(dir string) Option {
	return func(c *broker.Config) { c.DataDir = dir }
}

// Config returns the config Start uses: 127.0.0.1:0, a temp dir, no initial
// rebalance delay (tests would otherwise wait 3 s per group), and logs
// discarded unless the test runs verbose.
func Config(t testing.TB, opts ...Option) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.GroupInitialRebalanceDelay = 0
	cfg.OffsetsPartitions = 4
	cfg.TransactionPartitions = 4
	// Timed-out transactions are found within a tenth of a second.
	cfg.TransactionAbortInterval = 100 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Start starts a broker and registers its Close with t.Cleanup.
func Start(t testing.TB, opts ...Option) *broker.Broker {
	t.Helper()
	b, err := broker.Start(context.Background(), Config(t, opts...))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
