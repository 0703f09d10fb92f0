package runtime

import (
	"errors"
	"log/slog"
	"time"
)

var (
	// ErrMissingTopic: a source or sink topic does not exist.
	ErrMissingTopic = errors.New("missing topic")
	// ErrTopicMismatch: an internal topic exists with the wrong
	// partition count.
	ErrTopicMismatch = errors.New("internal topic mismatch")
	// ErrBadRecord wraps the failure of a record under FailOnBadRecord.
	ErrBadRecord = errors.New("bad record")
	// ErrProduce: a produced record was not acknowledged.
	ErrProduce = errors.New("produce failed")
	// ErrStoreNotFound: no store of that name in the topology.
	ErrStoreNotFound = errors.New("store not found")
	// ErrNotLocal: the task owning the key is not running here.
	ErrNotLocal = errors.New("store partition not hosted by this instance")
	// ErrFenced: another instance with this instance's identity (a copy
	// of its state directory) started, taking its static group
	// membership or, under exactly-once, its transactional id: this one
	// must stop.
	ErrFenced = errors.New("fenced by a newer instance with the same instance id")
)

// PolicyKind says what happens to a record that cannot be decoded or whose
// processing fails.
type PolicyKind int

const (
	PolicyFail       PolicyKind = iota // stop the application
	PolicySkip                         // count, log and go on
	PolicyDeadLetter                   // produce the input record to Topic, count, go on
)

// Policy is the bad-record policy.
type Policy struct {
	Kind  PolicyKind
	Topic string // dead-letter topic
}

// Dead-letter record headers.
const (
	HeaderError           = "weir.error"
	HeaderSourceTopic     = "weir.source.topic"
	HeaderSourcePartition = "weir.source.partition"
	HeaderSourceOffset    = "weir.source.offset"
)

// Metric names the runtime counts; tasks add their own (such as
// "dropped-late-records").
const (
	MetricProcessed    = "records-processed"
	MetricSkipped      = "records-skipped"
	MetricDeadLettered = "records-dead-lettered"
	MetricRestored     = "records-restored"
	MetricCommits      = "commits"
	// MetricAborts counts aborted transactions (exactly-once only).
	MetricAborts = "transactions-aborted"
)

// Config is a validated, defaulted application config (stream.AppConfig
// does the user-facing validation).
type Config struct {
	AppID             string
	Brokers           []string
	StateDir          string // the application's own directory: <state dir>/<app id>
	CommitInterval    time.Duration
	CacheMaxBytes     int
	BadRecords        Policy
	ReplicationFactor int16
	Logger            *slog.Logger
	// Workers is how many tasks process records at once; zero means
	// GOMAXPROCS.
	Workers int

	// Group timing; zero keeps the client defaults (session 45s,
	// heartbeat 3s, rebalance 60s). Tests shorten them.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration
	// PurgeInterval is how often consumed repartition records are
	// deleted; zero means 30s (Kafka Streams' repartition.purge.interval.ms).
	PurgeInterval time.Duration

	// ExactlyOnce selects Kafka Streams' exactly_once_v2 (see eos.go);
	// false is at-least-once.
	ExactlyOnce bool
	// TransactionTimeout bounds a transaction under ExactlyOnce; zero
	// means 10s.
	TransactionTimeout time.Duration
}
