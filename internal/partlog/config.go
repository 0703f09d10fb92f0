package partlog

import (
	"math"
	"time"
)

// CleanupPolicy is Kafka's cleanup.policy.
type CleanupPolicy uint8

const (
	// Delete removes whole old segments by RetentionTime and RetentionBytes.
	Delete CleanupPolicy = iota
	// Compact keeps the latest record per key (changelog topics).
	Compact
	// CompactDelete is cleanup.policy=compact,delete: both.
	CompactDelete
)

func (p CleanupPolicy) deletes() bool  { return p == Delete || p == CompactDelete }
func (p CleanupPolicy) compacts() bool { return p == Compact || p == CompactDelete }

// String returns the policy as Kafka's cleanup.policy spells it.
func (p CleanupPolicy) String() string {
	switch p {
	case Delete:
		return "delete"
	case Compact:
		return "compact"
	case CompactDelete:
		return "compact,delete"
	}
	return "unknown"
}

// Config holds the per-topic settings that govern one partition's log.
// Start from DefaultConfig: the zero value would, for example, retain
// records for zero time.
type Config struct {
	// SegmentBytes (segment.bytes) rolls a new segment when the active one
	// would exceed it. Default 1 GiB; values <= 0 mean the default and
	// values above 2 GiB-1 are capped, since index positions are int32.
	SegmentBytes int64
	// SegmentAge (segment.ms) rolls a new segment when an appended batch's
	// max timestamp is this much newer than the segment's first batch.
	// Default 7 days; <= 0 means the default.
	SegmentAge time.Duration
	// IndexIntervalBytes (index.interval.bytes) is the number of log bytes
	// between sparse index entries. Default 4096; <= 0 means the default.
	IndexIntervalBytes int
	// RetentionTime (retention.ms) deletes segments whose newest record is
	// older. Negative means forever. Default 7 days.
	RetentionTime time.Duration
	// RetentionBytes (retention.bytes) deletes oldest segments while the
	// log stays at least this large. Negative (the default) is unlimited.
	RetentionBytes int64
	// Cleanup (cleanup.policy) chooses retention, compaction or both.
	// Default Delete.
	Cleanup CleanupPolicy
	// DeleteRetention (delete.retention.ms) is how long compaction keeps a
	// tombstone after first seeing it. Default 24 hours.
	DeleteRetention time.Duration
	// MinCompactionLag (min.compaction.lag.ms) keeps segments with records
	// younger than this out of compaction. Default 0.
	MinCompactionLag time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentAge:         7 * 24 * time.Hour,
		IndexIntervalBytes: 4096,
		RetentionTime:      7 * 24 * time.Hour,
		RetentionBytes:     -1,
		Cleanup:            Delete,
		DeleteRetention:    24 * time.Hour,
		MinCompactionLag:   0,
	}
}

// normalized replaces unusable sizes with defaults.
func (c Config) normalized() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, math.MaxInt32)
	if c.SegmentAge <= 0 {
		c.SegmentAge = d.SegmentAge
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	return c
}
