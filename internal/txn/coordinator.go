package txn

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/group"
)

// Record is one record of __transaction_state. A nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// Log persists coordinator records in __transaction_state, using Kafka's
// exact encoding (kmsg.TxnMetadataKey/Value) so Kafka tooling can read them.
type Log interface {
	// Append writes recs to partition of __transaction_state and returns
	// once they are durable. An error wrapping a *kerr.Error is mapped the
	// way Kafka maps append errors (kerr.NotLeaderForPartition becomes
	// NOT_COORDINATOR, for example); any other error becomes
	// COORDINATOR_NOT_AVAILABLE.
	Append(ctx context.Context, partition int32, recs []Record) error
}

// Markers writes transaction markers to the leaders of data partitions
// (Kafka's WriteTxnMarkers).
type Markers interface {
	// WriteMarkers writes a COMMIT or ABORT control batch for
	// producerID/epoch on every partition, stamped with coordinatorEpoch; it
	// returns per-partition errors (nil map value = written). A partition
	// missing from the map is retried; kerr.UnknownTopicOrPartition means
	// the topic is gone and the partition is dropped.
	WriteMarkers(ctx context.Context, m MarkerRequest) map[TopicPartition]error
}

// IDs allocates producer ids, unique across the cluster.
type IDs interface {
	AllocateProducerID(ctx context.Context) (int64, error)
}

// Topics lets AddPartitions reject partitions that do not exist.
type Topics interface {
	PartitionCount(topic string) (int32, bool)
}

// MarkerRequest asks for one transaction's markers.
type MarkerRequest struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Partitions       []TopicPartition
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// offsetsTopic holds the offsets a transaction commits (AddOffsets).
const offsetsTopic = "__consumer_offsets"

// Config configures a Coordinator. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	Partitions        int32         // transaction.state.log.num.partitions; 50
	OffsetsPartitions int32         // offsets.topic.num.partitions, to place a group; 50
	MaxTimeout        time.Duration // transaction.max.timeout.ms; 15 min
	IDExpiration      time.Duration // transactional.id.expiration.ms; 7 days
	AbortInterval     time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms; 10 s
	ExpireInterval    time.Duration // transaction.remove.expired.transaction.cleanup.interval.ms; 1 h
	Logger            *slog.Logger
	Now               func() time.Time // the clock; time.Now
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:        50,
		OffsetsPartitions: 50,
		MaxTimeout:        15 * time.Minute,
		IDExpiration:      7 * 24 * time.Hour,
		AbortInterval:     10 * time.Second,
		ExpireInterval:    time.Hour,
		Logger:            slog.Default(),
		Now:               time.Now,
	}
}

func (cfg *Config) fill() {
	def := DefaultConfig()
	if cfg.Partitions <= 0 {
		cfg.Partitions = def.Partitions
	}
	if cfg.OffsetsPartitions <= 0 {
		cfg.OffsetsPartitions = def.OffsetsPartitions
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = def.MaxTimeout
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = def.IDExpiration
	}
	if cfg.AbortInterval <= 0 {
		cfg.AbortInterval = def.AbortInterval
	}
	if cfg.ExpireInterval <= 0 {
		cfg.ExpireInterval = def.ExpireInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
}

// Coordinator is the transaction coordinator of every transactional id whose
// __transaction_state partition this broker has been elected for. It is
// safe for concurrent use.
type Coordinator struct {
	cfg     Config
	log     Log
	markers Markers
	ids     IDs
	topics  Topics
	logger  *slog.Logger

	ctx    context.Context // parent of every partition's context; cancelled by Close
	cancel context.CancelFunc

	// goMu makes spawn and Close agree on whether goroutines may start, so
	// that Close's wg.Wait never races with a wg.Add.
	goMu   sync.Mutex
	closed atomic.Bool
	wg     sync.WaitGroup

	mu    sync.RWMutex
	parts map[int32]*partition // loading or served

	// Backoff between marker and Complete-write retries; tests shorten it.
	retryMin, retryMax time.Duration
}

// New returns a Coordinator serving no partition yet. log, markers and ids
// must not be nil; topics may be nil (then partitions are not validated).
func New(cfg Config, log Log, markers Markers, ids IDs, topics Topics) *Coordinator {
	cfg.fill()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{
		cfg:      cfg,
		log:      log,
		markers:  markers,
		ids:      ids,
		topics:   topics,
		logger:   cfg.Logger.With("component", "txn-coordinator"),
		ctx:      ctx,
		cancel:   cancel,
		parts:    make(map[int32]*partition),
		retryMin: 50 * time.Millisecond,
		retryMax: 5 * time.Second,
	}
	c.spawn(c.sweepLoop)
	return c
}

// PartitionFor returns the __transaction_state partition of a transactional
// id, as Kafka computes it (FindCoordinator key type 1).
func (c *Coordinator) PartitionFor(txnID string) int32 {
	return group.KeyPartition(txnID, c.cfg.Partitions)
}

// Close stops the sweeps and all marker work, resigns every partition and
// waits for the coordinator's goroutines. Later requests answer
// NOT_COORDINATOR.
func (c *Coordinator) Close() {
	// Cancel before closing: a write that can no longer get a goroutine
	// then drains inline against a cancelled context (see persist).
	c.cancel()
	c.goMu.Lock()
	c.closed.Store(true)
	c.goMu.Unlock()
	c.mu.Lock()
	parts := c.parts
	c.parts = make(map[int32]*partition)
	c.mu.Unlock()
	for _, p := range parts {
		p.shutdown()
	}
	c.wg.Wait()
}

// spawn runs f in a goroutine that Close waits for. It reports false, and
// does not run f, once Close has begun.
func (c *Coordinator) spawn(f func()) bool {
	c.goMu.Lock()
	defer c.goMu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

func (c *Coordinator) nowMs() int64 { return c.cfg.Now().UnixMilli() }

// appendErr maps a Log.Append error to what the client is told, as Kafka's
// TransactionStateManager maps append errors.
func appendErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kerr.NotCoordinator // the partition resigned or we closed
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.CoordinatorNotAvailable
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		return kerr.UnknownServerError
	}
	return ke
}

// idErr maps an IDs failure: retriable unless the allocator says otherwise.
func idErr(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return kerr.CoordinatorNotAvailable
}
