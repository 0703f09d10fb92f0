package replica

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
	"github.com/weir-io/weir/internal/producer"
)

// checkpointFile is the FSM's small file beside the segments: the
// fsmState after the last Raft index applied, written only after the log
// is fsynced up to its log end. partlog ignores it (not a segment name,
// not a suffix it cleans up).
const checkpointFile = "replica.applied"

// DefaultProducerIDExpiration is Kafka's producer.id.expiration.ms
// default: a producer idle this long in record time is forgotten.
const DefaultProducerIDExpiration = 24 * time.Hour

// expiryStep is how far the record clock moves between two expiry sweeps
// (a sweep visits every producer).
const expiryStep = int64(time.Minute / time.Millisecond)

var (
	// ErrSnapshotStreaming reports a Raft snapshot whose log this replica
	// neither holds nor has received: the snapshot came through a store
	// that does not stream segment data (raft's own stores; NewGroup's
	// store in RaftDir does).
	ErrSnapshotStreaming = errors.New("replica: snapshot needs the partition data streamed")
	// ErrDiverged reports a replica whose partition log no longer matches
	// what its Raft log says it holds (a failed append, or a local log
	// that differs on replay). It is sticky: the replica must be rebuilt.
	ErrDiverged = errors.New("replica: partition log diverged from the raft log")
	// errReplayed answers entries that were already applied before a
	// restart; nobody waits on them.
	errReplayed = errors.New("replica: entry already applied")
)

// Result is what applying one batch entry returns (the raft.ApplyFuture's
// Response on the leader).
type Result struct {
	// Base is the offset of the batch's first record: where it was
	// appended, or for a duplicate, where the original was appended.
	Base int64
	// Duplicate reports an idempotent retry answered with the original
	// offset; nothing was appended.
	Duplicate bool
	// Err refuses the batch (a kerr error for sequence and epoch
	// problems, ErrBadEntry, ErrDiverged); nothing was appended.
	Err error
}

// FSM is one partition's replicated state machine: its partlog.Log plus
// the idempotent producers' sequence windows. It implements raft.FSM and
// raft.BatchingFSM. Every decision depends only on the committed entries
// (never the clock or local configuration), so replicas that apply the same
// entries hold the same records.
//
// Apply, ApplyBatch, Snapshot and Restore are called by raft on one
// goroutine; HighWatermark, AppliedIndex, Log, Checkpoint and Maintain may
// be called from any.
type FSM struct {
	dir string
	// cfgMu guards cfg, the log's current configuration: SetLogConfig
	// changes it and an install opens the new log with it.
	cfgMu sync.Mutex
	cfg   partlog.Config
	// lg is the partition log. Installing a streamed snapshot replaces
	// it (and closes the old one).
	lg atomic.Pointer[partlog.Log]

	mu         sync.Mutex // guards the fields below; raft serializes callers anyway
	prod       *producers
	applied    uint64 // last raft index applied
	cursor     int64  // offset the next appended batch gets (the high watermark)
	clock      int64  // max batch timestamp applied, -1 before any
	broken     error  // sticky ErrDiverged
	expiration int64  // producer expiry in ms of record time; <= 0 never

	hw         atomic.Int64
	appliedIdx atomic.Uint64
	installs   atomic.Int64 // streamed snapshots installed, for tests and stats

	ckMu    sync.Mutex // orders checkpoint writes and installs
	ckIndex uint64     // index of the last checkpoint written

	// onAdvance, if set, is called (under mu, so it must not block) each
	// time applying moves the high watermark: the broker wakes its long
	// polls from it.
	onAdvance func()
}

// OnAdvance sets fn to be called whenever the high watermark moves. Set
// it before raft starts applying; fn runs on raft's apply goroutine and
// must not block.
func (f *FSM) OnAdvance(fn func()) { f.onAdvance = fn }

// SetProducerIDExpiration sets how long, in record time, an idempotent
// producer is remembered after its last batch (Kafka's
// producer.id.expiration.ms; DefaultProducerIDExpiration until set; zero
// or negative never). Set it before raft starts applying, to the same value on
// every replica: expiry changes what a retry is answered with, so it is
// part of the replicated state. Record time is the largest batch
// timestamp applied, never the local clock.
func (f *FSM) SetProducerIDExpiration(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expiration = d.Milliseconds()
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// OpenFSM opens (or creates) the partition log in dir and recovers the
// state machine from its checkpoint: entries up to the checkpoint's index
// are skipped when raft replays them, and the producer windows are those
// the checkpoint recorded. A snapshot install that a crash interrupted is
// finished first.
//
// The log may hold more than the checkpoint covers (appends after the last
// checkpoint that reached the disk anyway). Raft replays those entries, and
// the FSM re-decides each one; where the decision is an append below the
// local log end it checks the stored batch instead of appending again. So
// nothing is appended twice and no per-entry fsync is needed.
func OpenFSM(dir string, cfg partlog.Config) (*FSM, error) {
	if swapPending(dir) {
		if err := finishSwap(dir); err != nil {
			return nil, err
		}
	}
	l, err := partlog.Open(dir, cfg)
	if err != nil {
		return nil, err
	}
	st, ok, err := readCheckpoint(dir)
	if err != nil {
		l.Close()
		return nil, err
	}
	if !ok {
		// Nothing applied yet: raft replays from its first entry, whose
		// batch is offset 0.
		st = fsmState{Clock: -1}
	}
	if st.LogEnd > l.EndOffset() {
		l.Close()
		return nil, fmt.Errorf("%w: checkpoint at offset %d, log ends at %d", ErrDiverged, st.LogEnd, l.EndOffset())
	}
	f := &FSM{dir: dir, cfg: cfg, expiration: DefaultProducerIDExpiration.Milliseconds()}
	f.lg.Store(l)
	f.reset(&st)
	f.ckIndex = st.Index
	return f, nil
}

// reset makes st the applied state.
func (f *FSM) reset(st *fsmState) {
	f.prod = newProducers(st.Producers)
	f.applied = st.Index
	f.cursor = st.LogEnd
	f.clock = st.Clock
	f.hw.Store(st.LogEnd)
	f.appliedIdx.Store(st.Index)
}

// state returns the applied state. Caller holds mu.
func (f *FSM) state() fsmState {
	return fsmState{
		Index: f.applied, LogStart: f.Log().StartOffset(), LogEnd: f.cursor,
		Clock: f.clock, Producers: f.prod.snapshot(),
	}
}

// Log returns the partition log, for reads. Readers must stay below
// HighWatermark; only the FSM appends. Installing a snapshot streamed from
// the leader replaces the log and closes the old one, so long-lived
// readers fetch it again after ErrClosed.
func (f *FSM) Log() *partlog.Log { return f.lg.Load() }

// HighWatermark is the log end offset after the last applied entry: every
// record below it is committed by Raft. On the leader it is the Kafka high
// watermark; fetches must not read past it.
func (f *FSM) HighWatermark() int64 { return f.hw.Load() }

// AppliedIndex is the last Raft index applied.
func (f *FSM) AppliedIndex() uint64 { return f.appliedIdx.Load() }

// Apply implements raft.FSM. Raft only passes LogCommand entries here.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(l)
}

// ApplyBatch implements raft.BatchingFSM: raft passes LogCommand and
// LogConfiguration entries; configuration changes do not touch the log.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	return out
}

func (f *FSM) apply(l *raft.Log) any {
	if l.Index <= f.applied {
		return Result{Base: -1, Err: errReplayed}
	}
	if l.Type != raft.LogCommand {
		// LogConfiguration (and, defensively, LogNoop / LogBarrier):
		// nothing to do to the partition.
		f.done(l.Index)
		return nil
	}
	r := f.applyCommand(l)
	f.done(l.Index)
	return r
}

func (f *FSM) done(index uint64) {
	f.applied = index
	f.appliedIdx.Store(index)
	if f.hw.Swap(f.cursor) != f.cursor && f.onAdvance != nil {
		f.onAdvance()
	}
}

func (f *FSM) applyCommand(l *raft.Log) Result {
	if f.broken != nil {
		return Result{Base: -1, Err: f.broken}
	}
	e, err := DecodeEntry(l.Data)
	if err != nil {
		return Result{Base: -1, Err: err}
	}
	switch e.Type {
	case EntryBatch:
		return f.applyBatch(e.Batch, l.Term)
	case EntryDeleteRecords:
		return f.applyDeleteRecords(e.Offset)
	}
	return Result{Base: -1, Err: fmt.Errorf("%w: unhandled type %v", ErrBadEntry, e.Type)}
}

// applyBatch is broker/partition.go's append, made deterministic: sequence
// check, append at the log end, record.
func (f *FSM) applyBatch(b []byte, term uint64) Result {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return Result{Base: -1, Err: fmt.Errorf("%w: %w", ErrBadEntry, err)}
	}
	if h.Size() != len(b) {
		return Result{Base: -1, Err: fmt.Errorf("%w: batch of %d bytes in an entry of %d", ErrBadEntry, h.Size(), len(b))}
	}
	idempotent := h.ProducerID >= 0
	if idempotent {
		base, dup, err := f.prod.table.Check(h)
		if err != nil {
			return Result{Base: -1, Err: err}
		}
		if dup {
			return Result{Base: base, Duplicate: true}
		}
	}
	// The entry's bytes belong to raft (the in-memory store keeps the very
	// slice): stamp a copy. The leader epoch is the term of the entry,
	// which every replica sees alike.
	buf := bytes.Clone(b)
	batch.SetLeaderEpoch(buf, int32(min(term, math.MaxInt32)))
	base, err := f.place(buf)
	if err != nil {
		f.broken = fmt.Errorf("%w: %w", ErrDiverged, err)
		return Result{Base: -1, Err: f.broken}
	}
	h.BaseOffset = base
	f.cursor = h.NextOffset()
	if idempotent {
		f.prod.record(h, base)
	}
	f.advanceClock(h.MaxTimestamp)
	return Result{Base: base}
}

// advanceClock moves the record clock to ts if it is later, and expires
// idle producers each time the clock crosses a multiple of expiryStep:
// the same entries make every replica forget the same producers at the
// same point.
func (f *FSM) advanceClock(ts int64) {
	if ts <= f.clock {
		return
	}
	prev := f.clock
	f.clock = ts
	if f.expiration > 0 && (prev < 0 || ts/expiryStep != prev/expiryStep) {
		f.prod.expire(ts - f.expiration)
	}
}

// place puts the stamped batch at the cursor: appends it, or, while
// replaying entries the local log already holds, checks that it is there.
func (f *FSM) place(buf []byte) (int64, error) {
	at := f.cursor
	l := f.Log()
	if at < l.EndOffset() {
		if at < l.StartOffset() {
			// Deleted (DeleteRecords, retention) after it was applied
			// before the restart: nothing left to compare.
			return at, nil
		}
		batch.SetBaseOffset(buf, at)
		got, err := l.Read(at, 1, at+1)
		if err != nil {
			return -1, err
		}
		if !storedAs(got, buf) {
			return -1, fmt.Errorf("replayed entry differs from the stored batch at offset %d", at)
		}
		return at, nil
	}
	base, err := l.Append(buf)
	if err != nil {
		return -1, err
	}
	if base != at {
		return -1, fmt.Errorf("appended at %d, expected %d", base, at)
	}
	return base, nil
}

// storedAs reports whether got, read from the log where batch b was
// appended, is b or what local compaction can have made of it: nothing,
// when compaction dropped it whole (never a batch with a producer id), or
// a batch with b's identity (offsets, producer fields, max timestamp,
// leader epoch, attributes but the delete horizon) holding a subset of
// b's records, each unchanged. Control and transactional batches are never
// rewritten.
func storedAs(got, b []byte) bool {
	if bytes.Equal(got, b) {
		return true
	}
	want, _ := batch.ParseHeader(b)
	if want.Control() || want.Transactional() {
		return false
	}
	if len(got) == 0 {
		return !want.HasProducerID()
	}
	h, err := batch.Validate(got)
	if err != nil {
		return false
	}
	const horizon = batch.AttrDeleteHorizon
	same := h.BaseOffset == want.BaseOffset && h.LastOffsetDelta == want.LastOffsetDelta &&
		h.ProducerID == want.ProducerID && h.ProducerEpoch == want.ProducerEpoch &&
		h.BaseSequence == want.BaseSequence && h.MaxTimestamp == want.MaxTimestamp &&
		h.LeaderEpoch == want.LeaderEpoch && h.Attributes&^horizon == want.Attributes&^horizon
	return same && recordsSubset(got, h, b, want)
}

// recordsSubset reports whether every record of got is a record of b with
// the same offset, absolute timestamp, key, value and headers.
func recordsSubset(got []byte, gh batch.Header, b []byte, bh batch.Header) bool {
	gr, err := batch.Records(got)
	if err != nil {
		return false
	}
	br, err := batch.Records(b)
	if err != nil || len(gr) > len(br) {
		return false
	}
	byDelta := make(map[int32]*batch.Record, len(br))
	for i := range br {
		byDelta[br[i].OffsetDelta] = &br[i]
	}
	for _, r := range gr {
		w := byDelta[r.OffsetDelta]
		if w == nil || gh.BaseTimestamp+r.TimestampDelta != bh.BaseTimestamp+w.TimestampDelta ||
			!sameBytes(r.Key, w.Key) || !sameBytes(r.Value, w.Value) ||
			!slices.EqualFunc(r.Headers, w.Headers, func(x, y batch.RecordHeader) bool {
				return x.Key == y.Key && sameBytes(x.Value, y.Value)
			}) {
			return false
		}
	}
	return true
}

// sameBytes tells null from empty, as Kafka records do.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// applyDeleteRecords raises the log start to before (-1: the high
// watermark). Offsets beyond the high watermark are refused; the Result's
// Base is the log start after the entry (Kafka's low watermark). Every
// replica's log start ends up at or beyond before; one whose local
// retention already went further stays there.
func (f *FSM) applyDeleteRecords(before int64) Result {
	if before == -1 {
		before = f.cursor
	}
	if before > f.cursor {
		return Result{Base: -1, Err: kerr.OffsetOutOfRange}
	}
	l := f.Log()
	// While replaying, the local log may already hold batches beyond the
	// cursor; those are committed, so deleting below before is right.
	if err := l.DeleteBefore(before); err != nil {
		f.broken = fmt.Errorf("%w: delete records: %w", ErrDiverged, err)
		return Result{Base: -1, Err: f.broken}
	}
	return Result{Base: l.StartOffset()}
}

// Checkpoint fsyncs the log up to what has been applied and records the
// applied state, so a restart skips those entries. It is safe to call
// concurrently with Apply.
func (f *FSM) Checkpoint() error {
	f.mu.Lock()
	st := f.state()
	f.mu.Unlock()
	return f.writeCheckpoint(&st)
}

func (f *FSM) writeCheckpoint(st *fsmState) error {
	f.ckMu.Lock()
	defer f.ckMu.Unlock()
	if st.Index <= f.ckIndex {
		return nil
	}
	if err := f.Log().Sync(st.LogEnd); err != nil {
		return err
	}
	if err := saveCheckpoint(f.dir, st); err != nil {
		return err
	}
	f.ckIndex = st.Index
	return nil
}

// Maintain runs local retention and compaction on the partition log, as
// every Kafka replica does on its own schedule. It checkpoints first, so
// that after a restart raft replays (and checks against the log) only
// entries applied since; entries applied meanwhile may still meet a
// compacted or deleted batch on replay, which place accepts. Call it
// periodically; now decides time-based retention and compaction lag.
func (f *FSM) Maintain(now time.Time) error {
	if err := f.Checkpoint(); err != nil {
		return err
	}
	l := f.Log()
	if _, err := l.EnforceRetention(now); err != nil {
		return err
	}
	return l.Compact(now)
}

// Close checkpoints and closes the log. Shut raft down first.
func (f *FSM) Close() error {
	err := f.Checkpoint()
	return errors.Join(err, f.Log().Close())
}

// Snapshot implements raft.FSM. The snapshot is not a copy of the data:
// the segment files are the state, so Persist fsyncs them up to the
// applied offset, checkpoints, and writes only the head of a snapshot
// stream (the applied state). The snapshot store NewGroup opens in RaftDir
// adds the segment data when it sends the snapshot to a follower.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return nil, f.broken
	}
	return &snapshot{f: f, st: f.state()}, nil
}

// Restore implements raft.FSM. A snapshot the local state already covers
// (raft restoring its latest snapshot at startup) changes nothing. One
// whose data was streamed and staged is installed: the staged partition
// replaces the local one. Otherwise the local log must already reach the
// snapshot's log end (its prefix is committed data, the same on every
// replica), and the FSM adopts the snapshot's state; if it does not,
// Restore fails with ErrSnapshotStreaming.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, hasData, err := readStreamHead(rc)
	if err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	if hasData {
		// Through a store that keeps the whole stream (not NewGroup's,
		// which stages the data as it arrives).
		if err := stage(f.dir, f.logConfig(), rc, st); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.Index <= f.applied {
		return dropStage(f.dir)
	}
	if staged(f.dir, &st) {
		return f.install(&st)
	}
	if l := f.Log(); l.EndOffset() < st.LogEnd {
		return fmt.Errorf("%w: snapshot at index %d needs offsets up to %d, local log ends at %d",
			ErrSnapshotStreaming, st.Index, st.LogEnd, l.EndOffset())
	}
	f.broken = nil
	f.reset(&st)
	return nil
}

// install swaps the staged partition of st in for the live one. Caller
// holds mu.
// SetLogConfig changes the partition log's configuration (retention,
// segment size, ...), now and for any log a later snapshot install opens.
func (f *FSM) SetLogConfig(cfg partlog.Config) {
	f.cfgMu.Lock()
	defer f.cfgMu.Unlock()
	f.cfg = cfg
	f.Log().SetConfig(cfg)
}

func (f *FSM) logConfig() partlog.Config {
	f.cfgMu.Lock()
	defer f.cfgMu.Unlock()
	return f.cfg
}

func (f *FSM) install(st *fsmState) error {
	f.ckMu.Lock()
	defer f.ckMu.Unlock()
	if err := f.Log().Close(); err != nil && !errors.Is(err, partlog.ErrClosed) {
		return fmt.Errorf("replica: install: %w", err)
	}
	// From here the old log is gone; any failure leaves the FSM refusing
	// entries until a later install or a restart completes the swap.
	f.broken = fmt.Errorf("%w: snapshot install incomplete", ErrDiverged)
	if err := swapStage(f.dir); err != nil {
		return err
	}
	f.cfgMu.Lock()
	l, err := partlog.Open(f.dir, f.cfg)
	if err == nil {
		f.lg.Store(l)
	}
	f.cfgMu.Unlock()
	if err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	f.broken = nil
	f.reset(st)
	f.ckIndex = st.Index
	f.installs.Add(1)
	return nil
}

type snapshot struct {
	f  *FSM
	st fsmState
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	err := s.f.writeCheckpoint(&s.st)
	if err == nil {
		_, err = sink.Write(appendStreamHead(nil, &s.st, false))
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readCheckpoint reads dir's checkpoint file; ok is false when there is
// none.
func readCheckpoint(dir string) (fsmState, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return fsmState{}, false, nil
	}
	if err != nil {
		return fsmState{}, false, fmt.Errorf("replica: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		// Written by rename after fsync, so never torn: this is damage.
		return fsmState{}, false, fmt.Errorf("replica: %s: %w", checkpointFile, err)
	}
	return st, true, nil
}

// saveCheckpoint writes dir's checkpoint file atomically.
func saveCheckpoint(dir string, st *fsmState) error {
	if err := writeFileAtomic(dir, checkpointFile, appendState(nil, st)); err != nil {
		return fmt.Errorf("replica: checkpoint: %w", err)
	}
	return nil
}

// Producers lists the producers the state machine remembers.
func (f *FSM) Producers() []producer.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prod.table.Producers()
}
