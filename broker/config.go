package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Broker. Start from DefaultConfig; every field's doc
// states its default.
type Config struct {
	// NodeID is this broker's id in Metadata responses. Default 1.
	NodeID int32
	// Listen is the TCP address to accept Kafka clients on. Default
	// "127.0.0.1:9092"; use "127.0.0.1:0" for an ephemeral port.
	Listen string
	// AdvertisedAddr is the host:port clients are told to connect to.
	// Default: the address the listener is bound to.
	AdvertisedAddr string
	// DataDir holds partition logs and metadata. Required.
	DataDir string
	// AutoCreateTopics creates a topic on first Metadata or Produce
	// reference, as Kafka's auto.create.topics.enable. Default true.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics
	// (num.partitions). Default 1.
	DefaultPartitions int32
	// MaxPartitionsPerTopic bounds the partition count a create or grow
	// may ask for, so one request cannot exhaust file handles. Default
	// 10000.
	MaxPartitionsPerTopic int32
	// MaxRequestBytes bounds a request frame (socket.request.max.bytes);
	// a larger frame closes the connection. Default 100 MiB.
	MaxRequestBytes int32
	// MaxMessageBytes is the default max.message.bytes of topics: the
	// largest record batch a produce may carry. Default 1 MiB + 12 bytes
	// (Kafka's 1048588).
	MaxMessageBytes int32
	// SegmentBytes is the default segment.bytes. Default 1 GiB.
	SegmentBytes int64
	// RetentionCheckInterval is how often retention and compaction run
	// (log.retention.check.interval.ms). Default 5 minutes.
	RetentionCheckInterval time.Duration
	// ProducerIDExpiration is how long an idempotent producer's sequence
	// state is kept after its last batch (producer.id.expiration.ms).
	// Default 24 hours.
	ProducerIDExpiration time.Duration
	// OffsetsPartitions is the partition count of __consumer_offsets.
	// Default 50.
	OffsetsPartitions int32
	// GroupInitialRebalanceDelay is group.initial.rebalance.delay.ms.
	// Default 3s, as in Kafka.
	GroupInitialRebalanceDelay time.Duration
	// Logger receives the broker's structured logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config, with DataDir
// left empty.
func DefaultConfig() Config {
	return Config{
		NodeID:                     1,
		Listen:                     "127.0.0.1:9092",
		AutoCreateTopics:           true,
		DefaultPartitions:          1,
		MaxPartitionsPerTopic:      10000,
		MaxRequestBytes:            100 << 20,
		MaxMessageBytes:            1<<20 + 12,
		SegmentBytes:               1 << 30,
		RetentionCheckInterval:     5 * time.Minute,
		ProducerIDExpiration:       24 * time.Hour,
		OffsetsPartitions:          50,
		GroupInitialRebalanceDelay: 3 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("broker: invalid config")

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.DataDir == "":
		return bad("DataDir is required")
	case c.Listen == "":
		return bad("Listen is required")
	case c.NodeID < 0:
		return bad("NodeID %d is negative", c.NodeID)
	case c.DefaultPartitions < 1:
		return bad("DefaultPartitions %d must be at least 1", c.DefaultPartitions)
	case c.MaxPartitionsPerTopic < c.DefaultPartitions:
		return bad("MaxPartitionsPerTopic %d is below DefaultPartitions %d", c.MaxPartitionsPerTopic, c.DefaultPartitions)
	case c.MaxRequestBytes < 1<<10:
		return bad("MaxRequestBytes %d is below 1 KiB", c.MaxRequestBytes)
	case c.MaxMessageBytes < 1<<10:
		return bad("MaxMessageBytes %d is below 1 KiB", c.MaxMessageBytes)
	case c.SegmentBytes < 1<<14:
		return bad("SegmentBytes %d is below 16 KiB", c.SegmentBytes)
	case c.RetentionCheckInterval <= 0:
		return bad("RetentionCheckInterval must be positive")
	case c.ProducerIDExpiration <= 0:
		return bad("ProducerIDExpiration must be positive")
	case c.OffsetsPartitions < 1:
		return bad("OffsetsPartitions %d must be at least 1", c.OffsetsPartitions)
	case c.GroupInitialRebalanceDelay < 0:
		return bad("GroupInitialRebalanceDelay is negative")
	}
	return nil
}
