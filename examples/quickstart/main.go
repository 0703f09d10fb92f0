// Command quickstart starts an embedded weir broker, produces records to it
// with franz-go, reads them back through a consumer group, and prints what
// happened. It is the demo `make demo` runs until the stream DSL lands.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
)

func main() {
	n := flag.Int("records", 200000, "records to produce and consume")
	dir := flag.String("data-dir", "", "broker data directory (default: a temporary one, removed at exit)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *n, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, n int, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "weir-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.GroupInitialRebalanceDelay = 0
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("weir broker listening on %s (data in %s)\n", b.Addr(), dir)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("quickstart"))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "quickstart"); err != nil {
		return err
	}
	if err := produce(ctx, cl, n); err != nil {
		return err
	}
	return consume(ctx, b.Addr(), n)
}

func produce(ctx context.Context, cl *kgo.Client, n int) error {
	start := time.Now()
	value := make([]byte, 100)
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", i%100), Value: value}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("produced %d records of 100 bytes in %v (%.0f records/s, acks=all, fsynced)\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return nil
}

func consume(ctx context.Context, addr string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("quickstart-group"),
		kgo.ConsumeTopics("quickstart"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		got += fs.NumRecords()
	}
	el := time.Since(start)
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return err
	}
	fmt.Printf("consumed %d records through group quickstart-group in %v (%.0f records/s), offsets committed\n", got, el.Round(time.Millisecond), float64(got)/el.Seconds())
	return nil
}
