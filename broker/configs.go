package broker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
)

// topicConfig is one topic-level setting we understand. Anything else is
// refused with INVALID_CONFIG rather than silently stored and ignored.
type topicConfig struct {
	name     string
	def      func(Config) string
	validate func(string) error
}

func constant(v string) func(Config) string { return func(Config) string { return v } }

var topicConfigs = []topicConfig{
	{"cleanup.policy", constant("delete"), oneOf("delete", "compact", "compact,delete", "delete,compact")},
	{"compression.type", constant("producer"), oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{"delete.retention.ms", constant("86400000"), intAtLeast(0)},
	{"index.interval.bytes", constant("4096"), intAtLeast(0)},
	{"max.message.bytes", func(c Config) string { return strconv.Itoa(int(c.MaxMessageBytes)) }, intAtLeast(0)},
	{"message.timestamp.type", constant("CreateTime"), oneOf("CreateTime", "LogAppendTime")},
	{"min.compaction.lag.ms", constant("0"), intAtLeast(0)},
	{"min.insync.replicas", constant("1"), intAtLeast(1)},
	{"retention.bytes", constant("-1"), intAtLeast(-1)},
	{"retention.ms", constant("604800000"), intAtLeast(-1)},
	{"segment.bytes", func(c Config) string { return strconv.FormatInt(c.SegmentBytes, 10) }, intAtLeast(14)},
	{"segment.ms", constant("604800000"), intAtLeast(1)},
}

func lookupTopicConfig(name string) (topicConfig, bool) {
	for _, tc := range topicConfigs {
		if tc.name == name {
			return tc, true
		}
	}
	return topicConfig{}, false
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("value %q is not one of %v", v, vals)
	}
}

func intAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("value %q is not an integer", v)
		}
		if n < min {
			return fmt.Errorf("value %d is below the minimum %d", n, min)
		}
		return nil
	}
}

// validateConfigs checks a set of topic configs, returning an
// INVALID_CONFIG error naming the first bad one.
func validateConfigs(m map[string]string) error {
	for k, v := range m {
		tc, ok := lookupTopicConfig(k)
		if !ok {
			return configError{kerr.InvalidConfig, fmt.Sprintf("unknown or unsupported topic config %q", k)}
		}
		if err := tc.validate(v); err != nil {
			return configError{kerr.InvalidConfig, fmt.Sprintf("topic config %s: %v", k, err)}
		}
	}
	return nil
}

// configError carries a Kafka error code and a message for the response.
type configError struct {
	kerr *kerr.Error
	msg  string
}

func (e configError) Error() string { return e.msg }
func (e configError) Unwrap() error { return e.kerr }

// configValue returns a topic's effective value for name and whether it
// was set explicitly.
func configValue(cfg Config, set map[string]string, name string) (string, bool) {
	if v, ok := set[name]; ok {
		return v, true
	}
	tc, _ := lookupTopicConfig(name)
	return tc.def(cfg), false
}

func configInt(cfg Config, set map[string]string, name string) int64 {
	v, _ := configValue(cfg, set, name)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// topicSettings is a topic's effective configuration, resolved once when
// its configs change (Kafka's LogConfig), so that a produce reads fields
// instead of looking strings up and parsing them per request.
type topicSettings struct {
	log             partlog.Config
	maxMessageBytes int64
	minInsync       int
	// recompress is set unless compression.type is "producer": batches
	// in another codec than codec are then recompressed.
	recompress    bool
	codec         batch.Codec
	logAppendTime bool // message.timestamp.type=LogAppendTime
}

// codecs maps compression.type values to batch codecs.
var codecs = map[string]batch.Codec{
	"uncompressed": batch.CodecNone, "gzip": batch.CodecGzip, "snappy": batch.CodecSnappy,
	"lz4": batch.CodecLZ4, "zstd": batch.CodecZstd,
}

// resolveSettings resolves a topic's explicit configs (already validated)
// against the broker's defaults.
func resolveSettings(cfg Config, set map[string]string) topicSettings {
	compression, _ := configValue(cfg, set, "compression.type")
	stamp, _ := configValue(cfg, set, "message.timestamp.type")
	return topicSettings{
		log:             logConfig(cfg, set),
		maxMessageBytes: configInt(cfg, set, "max.message.bytes"),
		minInsync:       int(configInt(cfg, set, "min.insync.replicas")),
		recompress:      compression != "producer",
		codec:           codecs[compression],
		logAppendTime:   stamp == "LogAppendTime",
	}
}

// logConfig maps a topic's configs onto its partition logs' settings.
func logConfig(cfg Config, set map[string]string) partlog.Config {
	lc := partlog.DefaultConfig()
	lc.SegmentBytes = configInt(cfg, set, "segment.bytes")
	lc.SegmentAge = msDuration(configInt(cfg, set, "segment.ms"))
	lc.IndexIntervalBytes = int(configInt(cfg, set, "index.interval.bytes"))
	lc.RetentionTime = msDuration(configInt(cfg, set, "retention.ms"))
	lc.RetentionBytes = configInt(cfg, set, "retention.bytes")
	lc.DeleteRetention = msDuration(configInt(cfg, set, "delete.retention.ms"))
	lc.MinCompactionLag = msDuration(configInt(cfg, set, "min.compaction.lag.ms"))
	switch policy, _ := configValue(cfg, set, "cleanup.policy"); policy {
	case "compact":
		lc.Cleanup = partlog.Compact
	case "compact,delete", "delete,compact":
		lc.Cleanup = partlog.CompactDelete
	default:
		lc.Cleanup = partlog.Delete
	}
	return lc
}
