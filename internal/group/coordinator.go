package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Record is one record of __consumer_offsets. A nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// Log persists coordinator records in __consumer_offsets, using Kafka's exact
// key/value encoding (kmsg.OffsetCommitKey/Value, kmsg.GroupMetadataKey/Value)
// so Kafka tooling can read them.
type Log interface {
	// Append writes recs to partition p of __consumer_offsets and returns
	// once they are durable (fsynced). An error that wraps a *kerr.Error is
	// mapped to a client error the way Kafka maps append errors (for
	// example kerr.NotLeaderForPartition becomes NOT_COORDINATOR); any other
	// error becomes COORDINATOR_NOT_AVAILABLE.
	Append(ctx context.Context, partition int32, recs []Record) error

	// AppendTxn is Append for the offsets of a TxnOffsetCommit: recs go
	// in one transactional batch of producer (producerID, epoch) with no
	// sequence (Kafka's NO_SEQUENCE, checked by epoch only), so that the
	// producer's COMMIT or ABORT marker on partition settles them. A
	// fenced producer (an epoch older than the partition knows) must be
	// refused with an error wrapping kerr.InvalidProducerEpoch, which the
	// client gets as INVALID_PRODUCER_EPOCH, as from Kafka; other errors
	// map as for Append.
	AppendTxn(ctx context.Context, partition int32, producerID int64, epoch int16, recs []Record) error
}

// Topics lets the coordinator validate commits.
type Topics interface {
	PartitionCount(topic string) (int32, bool)
}

// TopicIDs is optionally implemented by a Topics. When it is, OffsetCommit
// v10+ and OffsetFetch v10+ (which name topics by id) are served; when it is
// not, their topic ids resolve to UNKNOWN_TOPIC_ID.
type TopicIDs interface {
	TopicName(id [16]byte) (string, bool)
	TopicID(name string) ([16]byte, bool)
}

// Config configures a Coordinator. Start from DefaultConfig. Zero fields take
// the defaults of DefaultConfig, except InitialRebalanceDelay, where zero (as
// in Kafka) means no delay.
type Config struct {
	Partitions                           int32         // __consumer_offsets partition count; default 50
	InitialRebalanceDelay                time.Duration // group.initial.rebalance.delay.ms; DefaultConfig: 3s; <= 0: none
	MinSessionTimeout, MaxSessionTimeout time.Duration // 6s, 30min
	OffsetsRetention                     time.Duration // offsets.retention.minutes; 7 days
	Logger                               *slog.Logger
}

// Kafka's defaults.
const (
	defaultPartitions            = 50
	defaultInitialRebalanceDelay = 3 * time.Second
	defaultMinSessionTimeout     = 6 * time.Second
	defaultMaxSessionTimeout     = 30 * time.Minute
	defaultOffsetsRetention      = 7 * 24 * time.Hour
	// offsets.retention.check.interval.ms
	defaultRetentionCheckInterval = 10 * time.Minute
	// offset.metadata.max.bytes
	maxMetadataBytes = 4096
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:            defaultPartitions,
		InitialRebalanceDelay: defaultInitialRebalanceDelay,
		MinSessionTimeout:     defaultMinSessionTimeout,
		MaxSessionTimeout:     defaultMaxSessionTimeout,
		OffsetsRetention:      defaultOffsetsRetention,
		Logger:                slog.Default(),
	}
}

// Coordinator is the classic consumer-group coordinator for every group whose
// __consumer_offsets partition this broker leads. It is safe for concurrent
// use; each group has its own lock, so one group never blocks another.
type Coordinator struct {
	cfg    Config
	log    Log
	topics Topics
	logger *slog.Logger
	now    func() time.Time

	ctx    context.Context // cancelled by Close; passed to Log.Append
	cancel context.CancelFunc
	done   chan struct{} // closed by Close
	closed atomic.Bool

	// activated arms the session timers of members restored by Load on the
	// first request after startup, so that replay time does not eat into
	// their sessions.
	activateOnce sync.Once
	activated    atomic.Bool

	mu     sync.Mutex
	groups map[string]*group
	// txnGroups holds, by producer id, the groups with pending
	// transactional offsets of that producer, for CompleteTxn. Guarded by
	// mu; changed only with the group's lock held too.
	txnGroups map[int64]map[*group]struct{}

	// logSeq numbers offset records in the order they are queued or
	// loaded (see offset.seq).
	logSeq atomic.Uint64

	writers []*partWriter

	expireMu    sync.Mutex
	expireTimer *time.Timer
}

// New returns a Coordinator. log must not be nil; topics may be nil (then
// commits are not validated against existing topics).
func New(cfg Config, log Log, topics Topics) *Coordinator {
	def := DefaultConfig()
	if cfg.Partitions <= 0 {
		cfg.Partitions = def.Partitions
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = def.MinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = def.MaxSessionTimeout
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = def.OffsetsRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{
		cfg:    cfg,
		log:    log,
		topics: topics,
		logger: cfg.Logger.With("component", "group-coordinator"),
		now:    time.Now,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		groups: make(map[string]*group),

		txnGroups: make(map[int64]map[*group]struct{}),
	}
	c.writers = make([]*partWriter, cfg.Partitions)
	for i := range c.writers {
		c.writers[i] = &partWriter{c: c, partition: int32(i)}
	}
	c.scheduleExpiry(defaultRetentionCheckInterval)
	return c
}

// PartitionFor returns the __consumer_offsets partition of group, as Kafka
// computes it: Utils.abs(groupId.hashCode) % partitions.
func (c *Coordinator) PartitionFor(group string) int32 {
	return KeyPartition(group, c.cfg.Partitions)
}

// KeyPartition is Kafka's Utils.abs(key.hashCode) % n, with Java's
// String.hashCode: the partition of an internal topic that owns a group id
// (__consumer_offsets) or a transactional id (__transaction_state).
func KeyPartition(key string, n int32) int32 {
	h := javaStringHash(key)
	if h == -1<<31 { // Utils.abs maps MIN_VALUE to 0
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

// javaStringHash is Java's String.hashCode over the UTF-16 code units of s.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + r1
			h = 31*h + r2
			continue
		}
		h = 31*h + r
	}
	return h
}

// Close stops all timers, fails every request waiting in JoinGroup, SyncGroup
// or a commit with NOT_COORDINATOR (as Kafka does when a coordinator resigns),
// and makes every later call answer NOT_COORDINATOR. Writes already handed to
// the Log see a cancelled context.
func (c *Coordinator) Close() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	close(c.done)
	c.cancel()
	c.expireMu.Lock()
	if c.expireTimer != nil {
		c.expireTimer.Stop()
	}
	c.expireMu.Unlock()
	for _, g := range c.snapshotGroups() {
		g.mu.Lock()
		g.shutdown(kerr.NotCoordinator.Code)
		g.mu.Unlock()
	}
}

// Unload drops every group of __consumer_offsets partition p, for when this
// broker stops leading it (Kafka's onResignation): requests waiting in
// JoinGroup or SyncGroup get NOT_COORDINATOR, timers stop, and nothing more
// is written for them (writes already queued still go to the Log, which
// decides their fate). The broker must then answer NOT_COORDINATOR itself for
// groups of p (the coordinator would otherwise create them afresh); to serve
// p again, Load its records again.
func (c *Coordinator) Unload(p int32) {
	for _, g := range c.snapshotGroups() {
		if g.partition != p {
			continue
		}
		g.mu.Lock()
		if !g.removed {
			g.shutdown(kerr.NotCoordinator.Code)
			c.removeGroup(g)
		}
		g.mu.Unlock()
	}
}

// activate arms session timers of members restored by Load. It runs once, at
// the first request.
func (c *Coordinator) activate() {
	if c.activated.Load() {
		return
	}
	c.activateOnce.Do(func() {
		c.activated.Store(true)
		for _, g := range c.snapshotGroups() {
			g.mu.Lock()
			if !g.removed {
				for _, m := range g.members {
					g.armSession(m)
				}
			}
			g.mu.Unlock()
		}
	})
}

func (c *Coordinator) snapshotGroups() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	return gs
}

// lockGroup returns the named group, locked, creating it if create is set. It
// returns nil if the group does not exist (and create is unset) or the
// coordinator is closed. A group removed between lookup and lock is looked up
// again.
func (c *Coordinator) lockGroup(name string, create bool) *group {
	for {
		if c.closed.Load() {
			return nil
		}
		c.mu.Lock()
		g := c.groups[name]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil
			}
			g = newGroup(c, name)
			c.groups[name] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if !g.removed {
			return g
		}
		g.mu.Unlock()
	}
}

// removeGroup drops g from the coordinator's map. g.mu must be held.
func (c *Coordinator) removeGroup(g *group) {
	g.removed = true
	g.state = stateDead
	c.mu.Lock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	for pid := range g.txnOffsets {
		c.unindexTxn(pid, g)
	}
	c.mu.Unlock()
}

// errCode maps an append error to the error code a client sees, the way
// Kafka's coordinator maps append errors.
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		return kerr.NotCoordinator.Code
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
			return kerr.CoordinatorNotAvailable.Code
		case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
			return kerr.NotCoordinator.Code
		case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
			return kerr.InvalidCommitOffsetSize.Code
		}
		return ke.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

type clientInfoKey struct{}

type clientInfo struct{ id, host string }

// WithClientInfo returns a context carrying the client id (from the request
// header) and client host (the remote address) of a request. JoinGroup uses
// them for new member ids (clientID-uuid, as Kafka does) and DescribeGroups
// reports them. Without it, member ids start with "member".
func WithClientInfo(ctx context.Context, clientID, clientHost string) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, clientInfo{clientID, clientHost})
}

func clientInfoFrom(ctx context.Context) clientInfo {
	ci, _ := ctx.Value(clientInfoKey{}).(clientInfo)
	return ci
}

// newMemberID returns prefix-uuid, Kafka's member id format.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	if prefix == "" {
		prefix = "member"
	}
	return prefix + "-" + string(s[:])
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
