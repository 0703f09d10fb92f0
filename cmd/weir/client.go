package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// reachTimeout bounds the first round trip to the cluster, so a wrong
// --brokers fails in seconds rather than after the client's retries.
const reachTimeout = 10 * time.Second

// clientID names the CLI's clients in group descriptions and broker logs.
const clientID = "weir"

func (a *app) seeds() []string {
	var seeds []string
	for _, s := range strings.Split(a.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// client returns a kgo client that has completed one round trip to the
// cluster, or an error saying what to check.
func (a *app) client(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := a.seeds()
	if len(seeds) == 0 {
		return nil, &usageError{msg: "--brokers is empty"}
	}
	base := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(clientID)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("invalid --brokers %q: %w", a.brokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unreachable(seeds, err)
	}
	return cl, nil
}

// admin returns an admin client; closing it closes its kgo client.
func (a *app) admin(ctx context.Context) (*kadm.Client, error) {
	cl, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func unreachable(seeds []string, err error) error {
	where := "broker at " + seeds[0]
	if len(seeds) > 1 {
		where = "any broker at " + strings.Join(seeds, ", ")
	}
	return fmt.Errorf("cannot reach %s: %s — is `weir broker` running?", where, dialReason(err))
}

// dialReason shortens a dial error to what a person acts on.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("unknown host %q", dnsErr.Name)
	}
	return err.Error()
}

// kafkaErr wraps a Kafka error code with the broker's message, if any.
func kafkaErr(err error, msg string) error {
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return fmt.Errorf("%w (%s)", err, msg)
	}
	return err
}

// topicErr explains err about topic; msg is the broker's error message.
func topicErr(topic string, err error, msg string) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("topic %q does not exist (see `weir topic list`)", topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %q already exists", topic)
	}
	return fmt.Errorf("topic %q: %w", topic, kafkaErr(err, msg))
}

// groupErr explains err about group; msg is the broker's error message.
func groupErr(group string, err error, msg string) error {
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("group %q does not exist (see `weir group list`)", group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("group %q has active members; stop its consumers first", group)
	}
	return fmt.Errorf("group %q: %w", group, kafkaErr(err, msg))
}
