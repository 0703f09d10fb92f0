package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
	"github.com/weir-io/weir/internal/producer"
	"github.com/weir-io/weir/internal/raftlog"
)

// ErrNotLeader is what NotLeaderError matches with errors.Is. The broker
// answers it with NOT_LEADER_OR_FOLLOWER so the client refreshes metadata
// and retries elsewhere.
var ErrNotLeader = errors.New("replica: not the leader")

// NotLeaderError reports a proposal this replica could not commit because
// it is not (or stopped being) the partition's Raft leader.
type NotLeaderError struct {
	// Leader is the leader this replica knows of, "" if none.
	Leader raft.ServerID
	// Indeterminate is set when leadership was lost after the entry was
	// appended to the Raft log: it may still commit under the next leader.
	// Retrying is safe for idempotent producers (the retry is answered
	// with the original offset); a non-idempotent retry may duplicate,
	// as in Kafka.
	Indeterminate bool
	cause         error
}

func (e *NotLeaderError) Error() string {
	s := "replica: not the leader"
	if e.Leader != "" {
		s += " (leader " + string(e.Leader) + ")"
	}
	if e.Indeterminate {
		s += ": leadership lost while committing, outcome unknown"
	}
	return s
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
func (e *NotLeaderError) Unwrap() error        { return e.cause }

// Config describes one partition replica.
type Config struct {
	// ID is this replica's Raft server id (the broker id).
	ID raft.ServerID
	// Dir is the partition directory (segments and the FSM checkpoint).
	Dir string
	// Log configures the partition log.
	Log partlog.Config
	// Raft is the Raft configuration; nil means raft.DefaultConfig().
	// LocalID is set from ID, and NoSnapshotRestoreOnStart is decided by
	// NewGroup (restore only a snapshot the FSM's checkpoint does not
	// cover).
	Raft *raft.Config
	// LogStore, StableStore, Snapshots and Transport are raft's. Those
	// left nil are opened in RaftDir.
	LogStore    raft.LogStore
	StableStore raft.StableStore
	Snapshots   raft.SnapshotStore
	Transport   raft.Transport
	// RaftDir holds the durable Raft state of this replica: raft-wal (in
	// RaftDir/wal) as LogStore and StableStore, with a raft.LogCache in
	// front of the log, and the snapshot store (RaftDir/snapshots), which
	// streams the partition's segments to followers that fell behind the
	// compacted Raft log. Required when any of the three stores is nil. It
	// must not be inside Dir.
	RaftDir string
	// LogCacheSize is the number of recent Raft entries cached in memory
	// in front of the raft-wal log store. 0 means 128; negative disables
	// the cache. Only used for stores opened in RaftDir.
	LogCacheSize int
	// WALSegmentBytes is the size of raft-wal's segment files: 0 means
	// raft-wal's default (64 MiB). Larger segments suit large entries;
	// the Raft log is trimmed a whole segment at a time (raft-wal still
	// serves trimmed entries that share a segment with live ones).
	WALSegmentBytes int
	// ProducerIDExpiration is how long, in record time, an idempotent
	// producer is remembered after its last batch (Kafka's
	// producer.id.expiration.ms). 0 means DefaultProducerIDExpiration
	// (24h); negative never expires. It must be the same on every replica
	// (see FSM.SetProducerIDExpiration).
	ProducerIDExpiration time.Duration
	// OnAdvance, if set, is called whenever the high watermark moves (see
	// FSM.OnAdvance).
	OnAdvance func()
}

// Group is one partition replicated by its own Raft group: the Raft
// leader is the partition leader, the Raft term is the leader epoch, and
// the FSM's applied log end is the high watermark.
type Group struct {
	raft   *raft.Raft
	fsm    *FSM
	id     raft.ServerID
	stores *raftlog.Store // nil unless opened in Config.RaftDir
	// readyTerm is the term in which this replica, as leader, has seen
	// an entry of its own term committed and applied (see Ready).
	readyTerm atomic.Uint64
}

// NewGroup opens the FSM in cfg.Dir and starts Raft on it, opening the
// Raft stores left nil in cfg.RaftDir. A brand-new group must be
// bootstrapped once (Bootstrap) on one or all replicas, or made from a
// raft-less log by Adopt before its first NewGroup.
func NewGroup(cfg Config) (*Group, error) {
	rc := raft.DefaultConfig()
	if cfg.Raft != nil {
		c := *cfg.Raft
		rc = &c
	}
	rc.LocalID = cfg.ID
	fsm, err := OpenFSM(cfg.Dir, cfg.Log)
	if err != nil {
		return nil, err
	}
	g := &Group{fsm: fsm, id: cfg.ID}
	if err := g.openStores(&cfg, rc); err != nil {
		return nil, errors.Join(err, g.closeStores())
	}
	if err := g.planStartupRestore(cfg.Snapshots, rc); err != nil {
		return nil, errors.Join(err, g.closeStores())
	}
	fsm.OnAdvance(cfg.OnAdvance)
	if cfg.ProducerIDExpiration != 0 {
		fsm.SetProducerIDExpiration(cfg.ProducerIDExpiration)
	}
	r, err := raft.NewRaft(rc, fsm, cfg.LogStore, cfg.StableStore, cfg.Snapshots, cfg.Transport)
	if err != nil {
		return nil, errors.Join(err, g.closeStores())
	}
	g.raft = r
	return g, nil
}

// planStartupRestore decides whether raft restores its latest snapshot
// at startup. The FSM recovers on its own from its checkpoint, which is
// never behind a snapshot it took; restoring would be a no-op. Only a
// snapshot received from the leader whose install a crash interrupted is
// ahead of the checkpoint, and then raft's restore finishes the install
// from the stage. Any other stage is stale and dropped.
func (g *Group) planStartupRestore(snaps raft.SnapshotStore, rc *raft.Config) error {
	list, err := snaps.List()
	if err != nil {
		return err
	}
	covered := len(list) == 0 || list[0].Index <= g.fsm.AppliedIndex()
	rc.NoSnapshotRestoreOnStart = covered
	if covered {
		return dropStage(g.fsm.dir)
	}
	return nil
}

// openStores fills in the stores cfg leaves nil from cfg.RaftDir.
func (g *Group) openStores(cfg *Config, rc *raft.Config) error {
	if cfg.LogStore != nil && cfg.StableStore != nil && cfg.Snapshots != nil {
		return nil
	}
	if cfg.RaftDir == "" {
		return errors.New("replica: a Raft store is missing and Config.RaftDir is not set")
	}
	logger := rc.Logger
	if logger == nil {
		logger = hclog.Default()
	}
	if cfg.LogStore == nil || cfg.StableStore == nil {
		s, err := raftlog.Open(filepath.Join(cfg.RaftDir, "wal"), raftlog.Options{
			Cache: cfg.LogCacheSize, SegmentBytes: cfg.WALSegmentBytes, Logger: logger,
		})
		if err != nil {
			return err
		}
		g.stores = s
		if cfg.LogStore == nil {
			cfg.LogStore = s.Logs
		}
		if cfg.StableStore == nil {
			cfg.StableStore = s.Stable
		}
	}
	if cfg.Snapshots == nil {
		snaps, err := newSnapshotStore(filepath.Join(cfg.RaftDir, "snapshots"), g.fsm, logger.Named("snapshot"))
		if err != nil {
			return err
		}
		cfg.Snapshots = snaps
	}
	return nil
}

// closeStores closes the FSM and the stores NewGroup opened, after raft
// has shut down (or never started).
func (g *Group) closeStores() error {
	err := g.fsm.Close()
	if g.stores != nil {
		err = errors.Join(err, g.stores.Close())
	}
	return err
}

// Bootstrap sets the initial voters of a brand-new group. It fails with
// raft.ErrCantBootstrap if the group already has state.
func (g *Group) Bootstrap(servers []raft.Server) error {
	return g.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
}

// Raft returns the underlying raft.Raft (membership changes, stats).
func (g *Group) Raft() *raft.Raft { return g.raft }

// FSM returns the state machine.
func (g *Group) FSM() *FSM { return g.fsm }

// Log returns the partition log for reads below HighWatermark.
//
// Installing a snapshot streamed from the leader (on a follower that fell
// far behind) replaces the log and closes the old one; fetch it again
// after partlog.ErrClosed.
func (g *Group) Log() *partlog.Log { return g.fsm.Log() }

// Producers lists the producers the partition's state machine remembers.
func (g *Group) Producers() []producer.Info { return g.fsm.Producers() }

// SetLogConfig changes the partition log's configuration, including for
// a log a later snapshot install opens (Log().SetConfig would be lost).
func (g *Group) SetLogConfig(cfg partlog.Config) { g.fsm.SetLogConfig(cfg) }

// HighWatermark is the offset below which records are committed and
// applied on this replica.
func (g *Group) HighWatermark() int64 { return g.fsm.HighWatermark() }

// IsLeader reports whether this replica is currently the Raft leader.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader returns the id of the leader this replica knows of, "" if none.
func (g *Group) Leader() raft.ServerID {
	_, id := g.raft.LeaderWithID()
	return id
}

// LeaderEpoch is the current Raft term as a Kafka leader epoch. Terms
// beyond MaxInt32 are clamped (they do not happen in practice).
func (g *Group) LeaderEpoch() int32 { return int32(min(g.raft.CurrentTerm(), math.MaxInt32)) }

// Ready returns once this replica, as leader, has committed and applied an
// entry of its own term, so its high watermark covers everything any
// earlier leader acknowledged. A new leader serves no produce or fetch
// before Ready returns. Later calls in the same term return at once.
func (g *Group) Ready(ctx context.Context) error {
	if !g.IsLeader() {
		return g.notLeader(nil, false)
	}
	term := g.raft.CurrentTerm()
	if g.readyTerm.Load() == term {
		return nil
	}
	f := g.raft.Barrier(timeoutOf(ctx))
	if err := wait(ctx, f); err != nil {
		return g.mapErr(err)
	}
	if g.raft.CurrentTerm() != term || !g.IsLeader() {
		return g.notLeader(nil, false)
	}
	g.readyTerm.Store(term)
	return nil
}

// Propose replicates one produced batch (validated by the caller with
// batch.Validate and CheckProduce, LogAppendTime already applied) and
// returns its base offset once it is committed and applied on this
// leader. A duplicate of a recent idempotent batch returns the original
// offset. Sequence and epoch refusals come back as kerr errors; losing
// leadership as a *NotLeaderError. If ctx ends first the outcome is
// unknown (the entry may still commit).
func (g *Group) Propose(ctx context.Context, b []byte) (int64, error) {
	p, err := g.Submit(ctx, b)
	if err != nil {
		return -1, err
	}
	return p.Wait(ctx)
}

// Proposal is a batch handed to Raft whose outcome is not known yet.
type Proposal struct {
	g *Group
	f raft.ApplyFuture
}

// Submit hands one batch to Raft without waiting: proposals submitted one
// after another from one goroutine are appended to the Raft log in that
// order, which is what keeps an idempotent producer's pipelined batches in
// sequence. Wait for the outcome with Proposal.Wait.
func (g *Group) Submit(ctx context.Context, b []byte) (*Proposal, error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Size() != len(b) {
		return nil, fmt.Errorf("replica: propose: %w: batch of %d bytes in %d", batch.ErrCorrupt, h.Size(), len(b))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Proposal{g: g, f: g.raft.Apply(EncodeBatch(b), timeoutOf(ctx))}, nil
}

// Wait returns the batch's base offset once it is committed and applied,
// with the errors documented on Propose.
func (p *Proposal) Wait(ctx context.Context) (int64, error) {
	if err := wait(ctx, p.f); err != nil {
		return -1, p.g.mapErr(err)
	}
	res, ok := p.f.Response().(Result)
	if !ok {
		return -1, fmt.Errorf("replica: unexpected apply response %T", p.f.Response())
	}
	if res.Err != nil {
		return -1, res.Err
	}
	return res.Base, nil
}

// DeleteRecords replicates Kafka's DeleteRecords: every replica raises
// its log start offset to before (-1: the high watermark when the entry
// applies) and deletes the segments wholly below it. It returns the new
// log start (the low watermark) once the entry is committed and applied
// here. before beyond the high watermark is refused with
// kerr.OffsetOutOfRange; leadership errors are as for Propose.
func (g *Group) DeleteRecords(ctx context.Context, before int64) (lowWatermark int64, err error) {
	if before < -1 || before > g.HighWatermark() {
		return -1, kerr.OffsetOutOfRange
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	p := &Proposal{g: g, f: g.raft.Apply(EncodeDeleteRecords(before), timeoutOf(ctx))}
	return p.Wait(ctx)
}

// Maintain runs local retention and compaction on this replica's log
// (see FSM.Maintain). Kafka replicas do this independently, so it is not
// replicated; the broker calls it periodically on every replica.
func (g *Group) Maintain(now time.Time) error { return g.fsm.Maintain(now) }

// Close shuts Raft down, closes the FSM (checkpointing it) and closes the
// stores NewGroup opened in RaftDir, so both directories can be removed
// or reopened afterwards.
func (g *Group) Close() error {
	err := g.raft.Shutdown().Error()
	return errors.Join(err, g.closeStores())
}

func (g *Group) notLeader(cause error, indeterminate bool) error {
	return &NotLeaderError{Leader: g.Leader(), Indeterminate: indeterminate, cause: cause}
}

func (g *Group) mapErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return g.notLeader(err, false)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore),
		errors.Is(err, raft.ErrRaftShutdown):
		return g.notLeader(err, true)
	}
	return err
}

// timeoutOf turns ctx's deadline into raft's enqueue timeout (0: none).
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// wait waits for a raft future or ctx, whichever ends first.
func wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
