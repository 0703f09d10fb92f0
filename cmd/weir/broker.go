package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"syscall"

	"github.com/weir-io/weir/broker"
)

func (a *app) brokerCmd(ctx context.Context, w io.Writer, args []string) error {
	cfg := broker.DefaultConfig()
	fs, logLevel, configFile := brokerFlags(&cfg)
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
	if err := completeClusterConfig(&cfg); err != nil {
		return fs.usageErr("%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return fs.usageErr("%v", err)
	}
	return a.serveBroker(ctx, w, cfg)
}

// brokerFlags defines the flags of weir broker on cfg and returns them with
// the two that are not Config fields.
func brokerFlags(cfg *broker.Config) (fs *flagSet, logLevel, configFile *string) {
	fs = newFlagSet("broker", "weir broker --data-dir DIR [--listen ADDR] [--node-id N --voters ID@HOST:PORT,...] [flags]",
		"Runs a weir broker until interrupted (SIGINT or SIGTERM), then shuts it down cleanly.\n"+
			"With --voters it is one node of a Raft-replicated cluster: start every voter the same way,\n"+
			"each with its own --node-id, --listen, --raft-listen and --data-dir.")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "accept Kafka clients on `host:port` (port 0 picks a free one)")
	fs.StringVar(&cfg.AdvertisedAddr, "advertised-addr", cfg.AdvertisedAddr,
		"`host:port` clients are told to connect to (default: the listen address)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "keep partition logs and metadata in `DIR` (required)")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create", cfg.AutoCreateTopics,
		"create a topic when a client first produces to or asks for it")
	fs.Var(int32Value{&cfg.DefaultPartitions}, "default-partitions", "partition count `N` of topics created without one")
	fs.Var(int32Value{&cfg.OffsetsPartitions}, "offsets-partitions",
		"partition count `N` of __consumer_offsets, fixed when it is first created (offsets.topic.num.partitions; default 50)")
	fs.Var(int32Value{&cfg.TransactionPartitions}, "transaction-partitions",
		"partition count `N` of __transaction_state, fixed when it is first created (transaction.state.log.num.partitions; default 50)")
	fs.DurationVar(&cfg.TransactionMaxTimeout, "transaction-max-timeout", cfg.TransactionMaxTimeout,
		"the longest transaction timeout a producer may ask for (transaction.max.timeout.ms; default 15m)")
	fs.DurationVar(&cfg.TransactionalIDExpiration, "transactional-id-expiration", cfg.TransactionalIDExpiration,
		"forget a transactional id idle this `long` (transactional.id.expiration.ms; default 168h)")
	fs.DurationVar(&cfg.TransactionAbortInterval, "transaction-abort-interval", cfg.TransactionAbortInterval,
		"how often to abort timed-out transactions (transaction.abort.timed.out.transaction.cleanup.interval.ms; default 10s)")
	fs.Var(int32Value{&cfg.NodeID}, "node-id", "this broker's node `ID` (default 1); with --voters, one of theirs")
	fs.Var(votersValue{&cfg.Voters}, "voters",
		"run as one node of a Raft-replicated cluster whose controller voters are `ID@HOST:PORT,...` (their Raft addresses); "+
			"a --node-id not among them joins as a broker-only node")
	fs.StringVar(&cfg.RaftListen, "raft-listen", cfg.RaftListen,
		"serve Raft traffic on `host:port` (default: this node's address in --voters, or 127.0.0.1:0 on a single node; "+
			"required for a broker-only node, and for a single node that others should be able to join)")
	fs.Var(int16Value{&cfg.DefaultReplicationFactor}, "replication-factor",
		"replication factor `N` of topics created without one (default min(3, voters); 1 without --voters)")
	fs.DurationVar(&cfg.RaftTimeout, "raft-timeout", cfg.RaftTimeout,
		"Raft heartbeat and election `timeout` (default 500ms)")
	fs.DurationVar(&cfg.ReplicaLagTimeMax, "replica-lag-time-max", cfg.ReplicaLagTimeMax,
		"a follower not caught up with its leader for this `long` leaves the ISR (replica.lag.time.max.ms; default 30s)")
	fs.BoolFunc("auto-leader-rebalance", "hand partitions back to their preferred leaders when a broker leads too few of them "+
		"(auto.leader.rebalance.enable; default true)", func(v string) error {
		on, err := strconv.ParseBool(v)
		cfg.DisableAutoLeaderRebalance = !on
		return err
	})
	fs.DurationVar(&cfg.LeaderImbalanceCheckInterval, "leader-imbalance-check-interval", cfg.LeaderImbalanceCheckInterval,
		"check the leader balance every `interval` (leader.imbalance.check.interval.seconds; default 5m)")
	fs.IntVar(&cfg.LeaderImbalancePerBrokerPercentage, "leader-imbalance-percentage", cfg.LeaderImbalancePerBrokerPercentage,
		"a broker leading more than this `percent` fewer of its preferred partitions gets them back "+
			"(leader.imbalance.per.broker.percentage; default 10)")
	logLevel = fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	configFile = fs.String("config", "", "read settings from `FILE` of key = value lines named like these flags; "+
		"flags on the command line win")
	return fs, logLevel, configFile
}

// serveBroker runs a broker on the validated cfg until ctx is done.
func (a *app) serveBroker(ctx context.Context, w io.Writer, cfg broker.Config) error {
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) && cfg.RaftListen != "" {
			// Either listener may be the one that failed.
			return fmt.Errorf("cannot listen on %s or %s: address already in use — is another broker running? "+
				"(pick other addresses with --listen and --raft-listen)", cfg.Listen, cfg.RaftListen)
		}
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

// completeClusterConfig defaults --raft-listen to this node's voter address
// and rejects the cluster settings broker.Config.Validate lets pass because
// they are meaningless without voters rather than wrong.
func completeClusterConfig(cfg *broker.Config) error {
	if len(cfg.Voters) == 0 {
		switch {
		case cfg.DefaultReplicationFactor > 1:
			return fmt.Errorf("--replication-factor %d needs --voters: a single node holds one replica",
				cfg.DefaultReplicationFactor)
		case cfg.DefaultReplicationFactor < 0:
			return fmt.Errorf("--replication-factor %d is negative", cfg.DefaultReplicationFactor)
		}
		return nil
	}
	if cfg.RaftListen == "" {
		for _, v := range cfg.Voters {
			if v.ID == cfg.NodeID {
				cfg.RaftListen = v.RaftAddr
			}
		}
	}
	return nil
}
