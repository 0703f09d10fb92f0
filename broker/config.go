package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/weir-io/weir/internal/raftmux"
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
	// TransactionPartitions is the partition count of __transaction_state
	// (transaction.state.log.num.partitions). Default 50.
	TransactionPartitions int32
	// TransactionMaxTimeout is transaction.max.timeout.ms: the longest
	// transaction.timeout.ms a producer may ask for. Default 15 minutes.
	TransactionMaxTimeout time.Duration
	// TransactionalIDExpiration is transactional.id.expiration.ms: how
	// long an idle transactional id is remembered. Default 7 days.
	TransactionalIDExpiration time.Duration
	// TransactionAbortInterval is how often timed-out transactions are
	// aborted (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	// Default 10 seconds.
	TransactionAbortInterval time.Duration
	// Logger receives the broker's structured logs. Default slog.Default().
	Logger *slog.Logger

	// Voters are the members of the controller quorum, whose Raft group
	// keeps the metadata; every voter is also a broker. A NodeID not among
	// them makes a broker-only node, which joins the running cluster,
	// follows the metadata log as a Raft non-voter and holds partition
	// replicas like any broker. Empty: a single node, the only voter of
	// its own quorum (at RaftListen). Partitions with one replica keep
	// their log without Raft in every case.
	Voters []Voter
	// RaftListen is the address of this node's Raft transport, shared by
	// the controller and every partition group. Required for a broker-only
	// node, whose address it registers, so other nodes must be able to
	// dial it; a voter's must equal its entry in Voters. Default for a
	// single node: "127.0.0.1:0" (no other node can join it then).
	RaftListen string
	// DefaultReplicationFactor is the replication factor of auto-created
	// topics and of CreateTopics requests that ask for the default (-1),
	// as default.replication.factor. Internal topics use it too. Default:
	// min(3, number of voters); 1 on a single node.
	DefaultReplicationFactor int16
	// RaftTimeout is the heartbeat, election and leader-lease timeout of
	// every Raft group: a follower that hears nothing from its leader for
	// between one and two of these starts an election. Default 500ms, which
	// keeps a leader's failover under ~1.5 s; raise it on loaded or
	// high-latency networks.
	RaftTimeout time.Duration
	// RaftSnapshotInterval, RaftSnapshotThreshold and RaftTrailingLogs tune
	// when a partition's Raft log is compacted: checked every
	// RaftSnapshotInterval, after RaftSnapshotThreshold new entries a
	// snapshot is taken and all but the last RaftTrailingLogs entries are
	// dropped (raft-wal frees whole 8 MiB segments), so a follower further
	// behind catches up by a snapshot that streams the segment files.
	// Defaults: hashicorp/raft's 2m, 8192 and 10240.
	RaftSnapshotInterval  time.Duration
	RaftSnapshotThreshold uint64
	RaftTrailingLogs      uint64
	// ReplicaLagTimeMax is how long a follower may go without catching up
	// to its leader before it leaves the ISR (replica.lag.time.max.ms).
	// Default 30s, as in Kafka.
	ReplicaLagTimeMax time.Duration
	// LeaderImbalanceCheckInterval is how often the active controller
	// checks that brokers lead their preferred partitions
	// (leader.imbalance.check.interval.seconds; default 5m, as in Kafka),
	// and LeaderImbalancePerBrokerPercentage how many of a broker's
	// preferred partitions may be led elsewhere before it asks for them
	// back (leader.imbalance.per.broker.percentage; default 10).
	// DisableAutoLeaderRebalance turns the check off
	// (auto.leader.rebalance.enable=false); ElectLeaders still works.
	LeaderImbalanceCheckInterval       time.Duration
	LeaderImbalancePerBrokerPercentage int
	DisableAutoLeaderRebalance         bool
	// RaftNetwork injects faults between nodes' Raft traffic; tests only.
	RaftNetwork *raftmux.Network
}

// Voter is one member of the controller quorum.
type Voter struct {
	ID       int32
	RaftAddr string // host:port of the node's Raft transport
}

// ParseVoters parses the --voters form: "1@host:port,2@host:port,...".
func ParseVoters(s string) ([]Voter, error) {
	var vs []Voter
	seen := map[int32]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		id, addr, ok := strings.Cut(part, "@")
		if !ok {
			return nil, fmt.Errorf("%w: voter %q is not id@host:port", ErrInvalidConfig, part)
		}
		n, err := strconv.ParseInt(id, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: voter %q: node id must be a non-negative integer", ErrInvalidConfig, part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: voter %q: %v", ErrInvalidConfig, part, err)
		}
		if seen[int32(n)] {
			return nil, fmt.Errorf("%w: node id %d appears twice in voters", ErrInvalidConfig, n)
		}
		seen[int32(n)] = true
		vs = append(vs, Voter{ID: int32(n), RaftAddr: addr})
	}
	return vs, nil
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
		TransactionPartitions:      50,
		TransactionMaxTimeout:      15 * time.Minute,
		TransactionalIDExpiration:  7 * 24 * time.Hour,
		TransactionAbortInterval:   10 * time.Second,
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
	case c.TransactionPartitions < 1:
		return bad("TransactionPartitions %d must be at least 1", c.TransactionPartitions)
	case c.TransactionMaxTimeout <= 0 || c.TransactionalIDExpiration <= 0 || c.TransactionAbortInterval <= 0:
		return bad("TransactionMaxTimeout, TransactionalIDExpiration and TransactionAbortInterval must be positive")
	}
	return c.validateCluster(bad)
}

func (c Config) validateCluster(bad func(string, ...any) error) error {
	if len(c.Voters) == 0 {
		// A single node: its own only voter.
		c.Voters = []Voter{{ID: c.NodeID, RaftAddr: c.RaftListen}}
		if c.RaftListen == "" {
			c.RaftListen = "127.0.0.1:0"
		}
	}
	self := -1
	for i, v := range c.Voters {
		if v.ID == c.NodeID {
			self = i
		}
	}
	switch {
	case c.RaftListen == "" && self < 0:
		return bad("RaftListen is required for node %d, which is not among the voters (a broker-only node)", c.NodeID)
	case self < 0 && !dialable(c.RaftListen):
		return bad("RaftListen %q of broker-only node %d is the address other nodes dial: give a reachable host and port, not a wildcard",
			c.RaftListen, c.NodeID)
	case c.RaftListen == "":
		return bad("RaftListen is required with Voters")
	case c.DefaultReplicationFactor < 0 || int(c.DefaultReplicationFactor) > len(c.Voters):
		return bad("DefaultReplicationFactor %d is outside 1..%d (the voters)", c.DefaultReplicationFactor, len(c.Voters))
	case c.RaftTimeout < 0:
		return bad("RaftTimeout is negative")
	case c.ReplicaLagTimeMax < 0:
		return bad("ReplicaLagTimeMax is negative")
	case c.LeaderImbalanceCheckInterval < 0:
		return bad("LeaderImbalanceCheckInterval is negative")
	case c.LeaderImbalancePerBrokerPercentage < 0 || c.LeaderImbalancePerBrokerPercentage > 100:
		return bad("LeaderImbalancePerBrokerPercentage %d is outside 0..100", c.LeaderImbalancePerBrokerPercentage)
	}
	return nil
}

// dialable reports whether addr names a host and port another node can
// connect to: no wildcard host, no port 0.
func dialable(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "0" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsUnspecified()
}
