package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"

	"github.com/weir-io/weir/broker"
)

func (a *app) brokerCmd(ctx context.Context, w io.Writer, args []string) error {
	cfg := broker.DefaultConfig()
	fs := newFlagSet("broker", "weir broker --data-dir DIR [--listen ADDR] [flags]",
		"Runs a weir broker until interrupted (SIGINT or SIGTERM), then shuts it down cleanly.")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "accept Kafka clients on `host:port` (port 0 picks a free one)")
	fs.StringVar(&cfg.AdvertisedAddr, "advertised-addr", cfg.AdvertisedAddr,
		"`host:port` clients are told to connect to (default: the listen address)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "keep partition logs and metadata in `DIR` (required)")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create", cfg.AutoCreateTopics,
		"create a topic when a client first produces to or asks for it")
	fs.Var(int32Value{&cfg.DefaultPartitions}, "default-partitions", "partition count `N` of topics created without one")
	fs.Var(int32Value{&cfg.NodeID}, "node-id", "this broker's node `ID`")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	configFile := fs.String("config", "", "read settings from `FILE` of key = value lines named like these flags; "+
		"flags on the command line win")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := fs.positional(pos); err != nil {
		return err
	}
	if *configFile != "" {
		if err := applyConfigFile(fs.FlagSet, *configFile); err != nil {
			return err
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fs.usageErr("invalid --log-level %q: want debug, info, warn or error", *logLevel)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	if cfg.DataDir == "" {
		return fs.usageErr("--data-dir is required")
	}
	if err := cfg.Validate(); err != nil {
		return fs.usageErr("%v", err)
	}

	b, err := broker.Start(ctx, cfg)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot listen on %s: address already in use — is another broker running? "+
				"(pick another address with --listen)", cfg.Listen)
		}
		return fmt.Errorf("starting broker: %w", err)
	}
	fmt.Fprintf(w, "weir broker listening on %s (data in %s)\n", b.Addr(), cfg.DataDir)
	<-ctx.Done()
	fmt.Fprintln(a.stderr, "weir broker shutting down")
	if err := b.Close(); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
