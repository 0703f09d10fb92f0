package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/weir-io/weir/internal/runtime"
	"github.com/weir-io/weir/internal/topology"
)

// Errors Run and NewApp return, for errors.Is.
var (
	// ErrConfig: the AppConfig cannot work.
	ErrConfig = errors.New("stream: invalid config")
	// ErrMissingTopic: a source or sink topic does not exist (Run
	// creates only internal topics).
	ErrMissingTopic = runtime.ErrMissingTopic
	// ErrTopicMismatch: an internal topic exists with a partition count
	// other than the topology needs.
	ErrTopicMismatch = runtime.ErrTopicMismatch
	// ErrInvalidTopology: the topology cannot run, for example because
	// joined topics are not co-partitioned.
	ErrInvalidTopology = topology.ErrInvalid
	// ErrBadRecord: a record could not be decoded or processed under
	// FailOnBadRecord. The error names the task and the record.
	ErrBadRecord = runtime.ErrBadRecord
	// ErrProduce: a record could not be written.
	ErrProduce = runtime.ErrProduce
	// ErrStoreNotFound: QueryStore named no store of the topology.
	ErrStoreNotFound = runtime.ErrStoreNotFound
	// ErrNotLocal: the task holding the key is not running on this
	// instance (another instance has it, or it is restoring).
	ErrNotLocal = runtime.ErrNotLocal
	// ErrFenced: a newer instance with this instance's id (a copy of its
	// state directory) took over its static group membership or, under
	// ExactlyOnceV2, its transactional id.
	ErrFenced = runtime.ErrFenced
)

// BadRecordPolicy says what happens to an input record that cannot be
// decoded, or whose processing fails (a user function returns an error or
// panics).
type BadRecordPolicy struct {
	kind  runtime.PolicyKind
	topic string
}

var (
	// FailOnBadRecord stops the application with ErrBadRecord, naming
	// the task and the record. It is the default: a bad record is
	// usually a bug, and nothing is lost (its offset is not committed).
	FailOnBadRecord = BadRecordPolicy{kind: runtime.PolicyFail}
	// SkipBadRecords logs and counts the record ("records-skipped") and
	// goes on.
	SkipBadRecords = BadRecordPolicy{kind: runtime.PolicySkip}
)

// DeadLetter writes bad records to topic and goes on: the original key,
// value, timestamp and headers, plus the headers weir.error (the error),
// weir.source.topic, weir.source.partition and weir.source.offset (decimal
// text). They are counted as "records-dead-lettered". The topic is created
// with the broker's defaults if it does not exist.
func DeadLetter(topic string) BadRecordPolicy {
	return BadRecordPolicy{kind: runtime.PolicyDeadLetter, topic: topic}
}

// String describes the policy.
func (p BadRecordPolicy) String() string {
	switch p.kind {
	case runtime.PolicySkip:
		return "skip"
	case runtime.PolicyDeadLetter:
		return "dead-letter to " + p.topic
	}
	return "fail"
}

// ProcessingGuarantee is Kafka Streams' processing.guarantee, with Kafka's
// names.
type ProcessingGuarantee string

const (
	// AtLeastOnce, the default: a crash loses no input, but the records
	// processed since the last commit are processed again, so outputs
	// and store updates may repeat.
	AtLeastOnce ProcessingGuarantee = "at_least_once"
	// ExactlyOnceV2 is Kafka Streams' exactly_once_v2 (KIP-447): each
	// commit is one Kafka transaction holding the outputs, changelog and
	// repartition records and the input offsets, so consumers reading
	// with isolation read_committed see every input's effects exactly
	// once, whatever crashes, rebalances or zombie instances. Stores keep
	// uncommitted writes in memory until their transaction commits, so a
	// crash never leaves them ahead of their changelog. It needs a broker
	// with transactions (weir, Kafka 2.5+), and the default commit
	// interval becomes 100 ms, as in Kafka Streams. See docs/delivery.md.
	ExactlyOnceV2 ProcessingGuarantee = "exactly_once_v2"
)

// ParseProcessingGuarantee returns the guarantee named s ("" is the
// default, AtLeastOnce), or an error wrapping ErrConfig.
func ParseProcessingGuarantee(s string) (ProcessingGuarantee, error) {
	switch g := ProcessingGuarantee(s); g {
	case "":
		return AtLeastOnce, nil
	case AtLeastOnce, ExactlyOnceV2:
		return g, nil
	}
	return "", fmt.Errorf("%w: ProcessingGuarantee %q: want %q or %q", ErrConfig, s, AtLeastOnce, ExactlyOnceV2)
}

// AppConfig configures an App. ApplicationID and Brokers are required.
type AppConfig struct {
	// ApplicationID names the application: it is the consumer group id,
	// the prefix of its internal topics (<id>-<store>-changelog,
	// <id>-<name>-repartition) and its directory under StateDir. Every
	// instance of one application uses the same id.
	ApplicationID string
	// Brokers are the bootstrap addresses (host:port) of any
	// Kafka-compatible cluster.
	Brokers []string
	// StateDir holds the local state: stores under
	// <StateDir>/<ApplicationID>/<task>/<store> and a checkpoint file per
	// task. Default: <os.TempDir()>/weir-streams. Use a directory that
	// survives reboots in production: without local state a task
	// restores its stores from the changelogs.
	StateDir string
	// CommitInterval is how often results are flushed and input offsets
	// committed. Default 1s (100 ms under ExactlyOnceV2, as in Kafka
	// Streams). Kafka Streams' default is 30s under at-least-once. The
	// record caches are flushed at every commit and also, at most every
	// 50 ms, whenever the tasks run out of records, so at a trickle results
	// leave promptly while under load the caches still collapse updates
	// until the commit; under exactly-once read-committed consumers see
	// results at the commit. Raise it to collapse more updates per key and
	// produce less.
	CommitInterval time.Duration
	// ProcessingGuarantee is AtLeastOnce (the default, also for "") or
	// ExactlyOnceV2. Any other value is an ErrConfig.
	ProcessingGuarantee ProcessingGuarantee
	// SessionTimeout is how long the group waits for an instance that
	// stopped heartbeating (one that crashed) before its tasks move to
	// the other instances (Kafka's session.timeout.ms). An instance is a
	// static member (KIP-345) named by the id kept in its state
	// directory, so the same instance restarted takes its tasks back at
	// once; a clean stop leaves the group. Default 45s; brokers accept 6s
	// and more by default. Heartbeats go out every third of it, at most
	// every 3s.
	SessionTimeout time.Duration
	// CacheMaxBytes is the record-cache budget shared by the instance's
	// tasks (Kafka Streams' statestore.cache.max.bytes). Default 10 MiB;
	// a negative value disables caching, so every update is forwarded
	// and logged.
	CacheMaxBytes int
	// BadRecords is the bad-record policy for input records that cannot
	// be decoded or whose processing fails. Default FailOnBadRecord. A
	// failure while a commit flushes the record caches (a function
	// downstream of an aggregation fails on a flushed update) has no
	// single input record to blame and stops the application under every
	// policy.
	BadRecords BadRecordPolicy
	// ReplicationFactor of the internal topics Run creates. Default
	// (0 or -1): the broker's default.
	ReplicationFactor int16
	// Logger receives the runtime's logs. Default slog.Default().
	Logger *slog.Logger
	// Workers is how many tasks (partitions of a sub-topology) process
	// records at the same time, each on its own goroutine. Default
	// GOMAXPROCS. A task's records are processed one at a time and in
	// order; different tasks run in parallel, so user functions and
	// serdes must be safe for concurrent use (as with Kafka Streams'
	// num.stream.threads above 1). 1 processes one task at a time.
	Workers int
	// HTTPAddr, if set, serves the topology, task status (lag, restore
	// progress), metrics and the stores' contents as JSON on this address
	// while Run runs (see Handler). Default: no server.
	HTTPAddr string

	// Group timing, repartition purging and the transaction timeout,
	// for tests; zero keeps the defaults.
	sessionTimeout, heartbeatInterval, rebalanceTimeout, purgeInterval, transactionTimeout time.Duration
}

const (
	defaultCommitInterval    = time.Second
	defaultEOSCommitInterval = 100 * time.Millisecond
	defaultCacheMaxBytes     = 10 << 20
)

// App runs a topology against a Kafka-compatible broker, as one instance
// of the application: start as many instances (processes) with the same
// ApplicationID as needed, and they share the work.
type App struct {
	topo     *topology.Topology
	rt       *runtime.Runtime
	httpAddr string
}

// validAppID is what may appear in topic names, which the id prefixes.
var validAppID = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// NewApp builds the topology b describes and validates cfg. Nothing
// touches the broker until Run.
func NewApp(b *Builder, cfg AppConfig) (*App, error) {
	switch {
	case cfg.ApplicationID == "":
		return nil, fmt.Errorf("%w: ApplicationID is required", ErrConfig)
	case !validAppID.MatchString(cfg.ApplicationID):
		return nil, fmt.Errorf("%w: ApplicationID %q may contain only ASCII letters, digits, '.', '_' and '-'", ErrConfig, cfg.ApplicationID)
	case len(cfg.Brokers) == 0:
		return nil, fmt.Errorf("%w: Brokers is required", ErrConfig)
	case cfg.CommitInterval < 0:
		return nil, fmt.Errorf("%w: CommitInterval is negative", ErrConfig)
	case cfg.SessionTimeout < 0:
		return nil, fmt.Errorf("%w: SessionTimeout is negative", ErrConfig)
	case cfg.Workers < 0:
		return nil, fmt.Errorf("%w: Workers is negative", ErrConfig)
	case cfg.ReplicationFactor < -1:
		return nil, fmt.Errorf("%w: ReplicationFactor %d", ErrConfig, cfg.ReplicationFactor)
	case cfg.BadRecords.kind == runtime.PolicyDeadLetter && cfg.BadRecords.topic == "":
		return nil, fmt.Errorf("%w: DeadLetter needs a topic", ErrConfig)
	}
	guarantee, err := ParseProcessingGuarantee(string(cfg.ProcessingGuarantee))
	if err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(os.TempDir(), "weir-streams")
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = defaultCommitInterval
		if guarantee == ExactlyOnceV2 {
			cfg.CommitInterval = defaultEOSCommitInterval
		}
	}
	switch {
	case cfg.CacheMaxBytes == 0:
		cfg.CacheMaxBytes = defaultCacheMaxBytes
	case cfg.CacheMaxBytes < 0:
		cfg.CacheMaxBytes = 0
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.sessionTimeout == 0 && cfg.SessionTimeout > 0 {
		cfg.sessionTimeout = cfg.SessionTimeout
		if cfg.heartbeatInterval == 0 {
			cfg.heartbeatInterval = min(3*time.Second, cfg.SessionTimeout/3)
		}
	}
	topo, err := b.t.Build(cfg.ApplicationID)
	if err != nil {
		return nil, err
	}
	rt := runtime.New(topo, runtime.Config{
		AppID:             cfg.ApplicationID,
		Brokers:           cfg.Brokers,
		StateDir:          filepath.Join(cfg.StateDir, cfg.ApplicationID),
		CommitInterval:    cfg.CommitInterval,
		CacheMaxBytes:     cfg.CacheMaxBytes,
		BadRecords:        runtime.Policy{Kind: cfg.BadRecords.kind, Topic: cfg.BadRecords.topic},
		ReplicationFactor: cfg.ReplicationFactor,
		Logger:            cfg.Logger,
		Workers:           cfg.Workers,
		SessionTimeout:    cfg.sessionTimeout,
		HeartbeatInterval: cfg.heartbeatInterval,
		RebalanceTimeout:  cfg.rebalanceTimeout,
		PurgeInterval:     cfg.purgeInterval,

		ExactlyOnce:        guarantee == ExactlyOnceV2,
		TransactionTimeout: cfg.transactionTimeout,
	})
	return &App{topo: topo, rt: rt, httpAddr: cfg.HTTPAddr}, nil
}

// Run runs the application until ctx is done or a fatal error occurs. On
// start it checks that the source (and fixed sink) topics exist, resolves
// partition counts, and creates the internal topics it lacks. It then
// joins the group, restores and runs the tasks assigned to this instance,
// and commits every CommitInterval.
//
// When ctx is done it shuts down cleanly — flushes, waits for every
// produced record, writes checkpoints, commits, leaves the group — and
// returns nil. A fatal error (a bad record under FailOnBadRecord, a record
// that cannot be produced) returns it, wrapped with the task and the
// record, without committing: a restart resumes from the last commit.
// Under AtLeastOnce a crash loses no input, but records since the last
// commit are processed again. Under ExactlyOnceV2 they are processed again
// too, but what they produced and wrote before the crash was never
// committed: read-committed consumers and the stores see each input once.
// Another instance started with a copy of this one's state directory
// fences it: Run returns an error wrapping ErrFenced.
//
// An App runs once.
func (a *App) Run(ctx context.Context) error {
	if a.httpAddr != "" {
		stop, err := a.serveHTTP()
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := a.rt.Run(ctx); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// serveHTTP starts the HTTP endpoint and returns its shutdown.
func (a *App) serveHTTP() (stop func(), err error) {
	ln, err := net.Listen("tcp", a.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("stream: http: %w", err)
	}
	a.rt.Logger().Info("serving stores and status over HTTP", "addr", ln.Addr().String())
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// Describe renders the topology as text, in Kafka Streams' layout.
func (a *App) Describe() string { return a.topo.Describe() }

// Mermaid renders the topology as a Mermaid flowchart.
func (a *App) Mermaid() string { return a.topo.Mermaid() }

// DOT renders the topology for Graphviz.
func (a *App) DOT() string { return a.topo.DOT() }

// Metric names of App.Metrics; tasks add their own, such as
// "dropped-late-records" and "dropped-null-key-records".
const (
	MetricRecordsProcessed    = runtime.MetricProcessed    // input records processed (including skipped and dead-lettered ones)
	MetricRecordsSkipped      = runtime.MetricSkipped      // bad records skipped
	MetricRecordsDeadLettered = runtime.MetricDeadLettered // bad records sent to the dead-letter topic
	MetricRecordsRestored     = runtime.MetricRestored     // changelog records applied while restoring
	MetricCommits             = runtime.MetricCommits      // commits that committed offsets
	MetricTransactionsAborted = runtime.MetricAborts       // exactly-once transactions aborted (each rolls the tasks back)
)

// Metrics returns the instance's totals since it started. It is safe to
// call at any time, from any goroutine.
func (a *App) Metrics() map[string]int64 { return a.rt.Metrics() }

// TaskStatus is one task assigned to this instance.
type TaskStatus struct {
	// ID is "<sub-topology>_<partition>", as Describe numbers them.
	ID string
	// Running is false while the task restores its stores.
	Running bool
	// StreamTime is the largest record timestamp the task has seen; zero
	// before the first record.
	StreamTime time.Time
	Inputs     []InputStatus
	Stores     []StoreStatus
}

// InputStatus is one input partition of a task.
type InputStatus struct {
	Topic     string
	Partition int32
	// Offset is the next offset to process, -1 before the first record.
	Offset int64
	// Lag is how many records the partition holds beyond Offset, as of
	// the last fetch; -1 if unknown.
	Lag int64
}

// StoreStatus is one store of a task and its restoration progress.
type StoreStatus struct {
	Store     string
	Changelog string // empty for a store without changelog
	// Restored of Total changelog records have been applied; Done is set
	// once the store is up to date.
	Restored, Total int64
	Done            bool
}

// TaskStatus returns the tasks assigned to this instance, by id. It is safe
// to call at any time, from any goroutine, and never waits for processing.
func (a *App) TaskStatus() []TaskStatus {
	src := a.rt.TaskStatus()
	out := make([]TaskStatus, len(src))
	for i, s := range src {
		t := TaskStatus{ID: s.ID, Running: s.Running}
		if s.StreamTime >= 0 {
			t.StreamTime = time.UnixMilli(s.StreamTime)
		}
		for _, in := range s.Inputs {
			t.Inputs = append(t.Inputs, InputStatus(in))
		}
		for _, st := range s.Stores {
			t.Stores = append(t.Stores, StoreStatus(st))
		}
		out[i] = t
	}
	return out
}

// StoreQuery asks a running instance for a store's raw bytes: what an
// HTTP endpoint serves as keys, ranges and windows.
//
// With Key set it reads that key on the task that holds it. Key is the
// serialized record key (for an aggregation, the grouping key in its
// serde): keys are placed with Kafka's default partitioner, so the
// instance that holds the key is known from the key alone, and another
// instance answers ErrNotLocal. A key-value store returns the key's value;
// a window store returns every window of the key, with window store keys
// (decode them with window.DecodeKey).
//
// Without Key it scans [From, To) of the store's keys (nil bounds are
// open) in every partition of the store this instance holds, partition by
// partition, in key order within each, up to Limit entries (0: no limit).
//
// Queries read the stores as of the last commit: updates still in the
// record cache are not visible until the next commit (at most
// CommitInterval later).
type StoreQuery struct {
	Store    string
	Key      []byte
	From, To []byte
	Limit    int
}

// StoreEntry is one entry a query returns: the store's key and value, and
// the partition (task) it was read from.
type StoreEntry struct {
	Partition  int32
	Key, Value []byte
}

// QueryStore reads the committed state of this instance's tasks (see
// StoreQuery). A key that is absent returns no entries and no error. It is
// safe to call from any goroutine while the App runs.
func (a *App) QueryStore(q StoreQuery) ([]StoreEntry, error) {
	if q.Key != nil {
		p, entries, err := a.rt.Lookup(q.Store, q.Key)
		if err != nil {
			return nil, err
		}
		out := make([]StoreEntry, 0, len(entries))
		for _, e := range entries {
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
			out = append(out, StoreEntry{Partition: p, Key: e.Key, Value: e.Value})
		}
		return out, nil
	}
	var out []StoreEntry
	err := a.rt.Range(q.Store, q.From, q.To, func(p int32, k, v []byte) bool {
		out = append(out, StoreEntry{Partition: p, Key: k, Value: v})
		return q.Limit <= 0 || len(out) < q.Limit
	})
	return out, err
}
