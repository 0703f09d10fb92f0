package faultcheck

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a Workload. Zero durations and a zero Rate take the
// defaults their docs give.
type Config struct {
	// Seeds are the brokers' client addresses. Required.
	Seeds []string
	// Topic is created with Partitions partitions if it does not exist.
	// It must hold nothing but this workload's records: anything else is
	// reported as a phantom. Required, as is Partitions >= 1.
	Topic      string
	Partitions int32
	// ReplicationFactor of the topic; 0 asks for the broker's default.
	ReplicationFactor int16
	// Producers is the number of idempotent acks=all producers (>= 1).
	Producers int
	// Consumers is the number of group consumers (>= 0), all in Group.
	// The group must be new, or have committed only this workload's
	// offsets. Group is required when Consumers > 0.
	Consumers int
	Group     string
	// Rate is the total records per second over all producers. Default
	// 1000.
	Rate float64
	// DeliveryTimeout is how long a record may be retried before its
	// produce fails. Default 30s.
	DeliveryTimeout time.Duration
	// ConsumerRestart, when positive, closes and recreates each consumer's
	// client this often (staggered), forcing rebalances. Default never.
	ConsumerRestart time.Duration
	// MonitorInterval is how often the group's committed offsets are read.
	// Default 50ms.
	MonitorInterval time.Duration
	// CatchUp bounds how long Stop waits for the group to commit up to the
	// end of every partition before stopping the consumers. Default 10s.
	CatchUp time.Duration
	// DrainTimeout bounds Stop's final read of the topic. Default 30s.
	DrainTimeout time.Duration
	// ClientOpts are appended to every client's options, after the
	// workload's own, so they can override them.
	ClientOpts []kgo.Opt
	// Logf receives client errors, each once per change. Default: none.
	Logf func(format string, args ...any)
}

func (c *Config) fill() error {
	switch {
	case len(c.Seeds) == 0:
		return errors.New("faultcheck: no seeds")
	case c.Topic == "" || c.Partitions < 1:
		return errors.New("faultcheck: a topic and at least one partition are required")
	case c.Producers < 1 || c.Consumers < 0:
		return errors.New("faultcheck: at least one producer is required, and consumers cannot be negative")
	case c.Consumers > 0 && c.Group == "":
		return errors.New("faultcheck: consumers need a group")
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1 // CreateTopics' "broker default"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DeliveryTimeout, 30*time.Second)
	def(&c.MonitorInterval, 50*time.Millisecond)
	def(&c.CatchUp, 10*time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	if c.Rate <= 0 {
		c.Rate = 1000
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// clientOpts are the options every client shares. Fault tests measure how
// soon the cluster recovers, so clients look for new leaders and retry
// quickly instead of backing off for seconds.
func (c *Config) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Seeds...),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	opts = append(opts, extra...)
	return append(opts, c.ClientOpts...)
}

// Workload runs producers, group consumers and an offset monitor against a
// cluster and records what they observe, until Stop.
type Workload struct {
	cfg    Config
	ctx    context.Context // ends with the run; records are produced under it
	cancel context.CancelFunc
	admin  *kgo.Client // topic setup, the offset monitor and end offsets

	prods        []*producer
	cons         []*consumer
	stopCons     context.CancelFunc
	stopMonitor  context.CancelFunc
	monitorDone  chan struct{}
	stopOnce     sync.Once
	final        *History
	acked        atomic.Int64
	failed       atomic.Int64
	consumed     atomic.Int64
	commitsAcked atomic.Int64

	mu        sync.Mutex
	h         History
	lastAck   time.Time
	maxGap    time.Duration
	committed map[int32]int64   // the monitor's latest read
	lastErr   map[string]string // the last error logged per source
}

// Start creates the topic, then starts the consumers, the offset monitor and
// the producers. ctx bounds the whole run: canceling it stops every client
// (Stop still drains). Call Stop before the test ends, since the workload
// logs through cfg.Logf until then.
func Start(ctx context.Context, cfg Config) (*Workload, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	admin, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("faultcheck: admin client: %w", err)
	}
	if err := createTopic(ctx, kadm.NewClient(admin), &cfg); err != nil {
		admin.Close()
		return nil, err
	}
	w := &Workload{cfg: cfg, admin: admin, committed: map[int32]int64{}, lastErr: map[string]string{}}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.h = History{Topic: cfg.Topic, Partitions: cfg.Partitions, Group: cfg.Group, Start: time.Now()}
	if err := w.startClients(); err != nil {
		w.cancel()
		admin.Close()
		return nil, err
	}
	return w, nil
}

// createTopic retries until the cluster accepts the topic, since a cluster
// that has just started may not have a controller yet.
func createTopic(ctx context.Context, adm *kadm.Client, cfg *Config) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := adm.CreateTopic(ctx, cfg.Partitions, cfg.ReplicationFactor, nil, cfg.Topic)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faultcheck: create topic %s: %w (last error: %v)", cfg.Topic, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// startClients creates the producers' clients first, so that bad client
// options fail Start before anything runs.
func (w *Workload) startClients() error {
	for i := range w.cfg.Producers {
		pr, err := w.newProducer(i)
		if err != nil {
			for _, pr := range w.prods {
				pr.cl.Close()
			}
			return err
		}
		w.prods = append(w.prods, pr)
	}
	consCtx, stopCons := context.WithCancel(w.ctx)
	w.stopCons = stopCons
	for i := range w.cfg.Consumers {
		c := &consumer{id: i, name: fmt.Sprintf("consumer %d", i), done: make(chan struct{})}
		w.cons = append(w.cons, c)
		go w.runConsumer(consCtx, c)
	}
	monCtx, stopMonitor := context.WithCancel(w.ctx)
	w.stopMonitor, w.monitorDone = stopMonitor, make(chan struct{})
	go w.runMonitor(monCtx)
	for _, pr := range w.prods {
		go w.runProducer(pr)
	}
	return nil
}

// Stats is a snapshot of a running workload's progress.
type Stats struct {
	Acked, Failed, Consumed, Commits int64
	// LastAck is when the latest acknowledgement arrived (so during an
	// outage time.Since(LastAck) is the gap so far); MaxAckGap is the
	// longest time so far between two consecutive ones.
	LastAck   time.Time
	MaxAckGap time.Duration
}

// Stats returns the progress so far.
func (w *Workload) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Stats{Acked: w.acked.Load(), Failed: w.failed.Load(), Consumed: w.consumed.Load(),
		Commits: w.commitsAcked.Load(), LastAck: w.lastAck, MaxAckGap: w.maxGap}
}

// Acked returns how many records have been acknowledged so far.
func (w *Workload) Acked() int64 { return w.acked.Load() }

// AwaitAcked waits until at least n records have been acknowledged.
func (w *Workload) AwaitAcked(ctx context.Context, n int64) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for w.acked.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("faultcheck: %d of %d records acknowledged: %w", w.acked.Load(), n, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// note logs err from source unless it repeats the source's previous error or
// only reports the workload shutting down.
func (w *Workload) note(source string, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	msg := err.Error()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr[source] == msg {
		return
	}
	w.lastErr[source] = msg
	w.cfg.Logf("faultcheck: %s: %v", source, err)
}
