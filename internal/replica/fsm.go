package replica

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
	"github.com/weir-io/weir/internal/producer"
)

// checkpointFile is the FSM's small file beside the segments: the last
// Raft index applied and the log end offset it left, written only after the
// log is fsynced up to that offset. partlog ignores it (not a segment name,
// not a suffix it cleans up).
const checkpointFile = "replica.applied"

var (
	// ErrSnapshotStreaming reports a Raft snapshot whose log this replica
	// does not have locally. Installing it needs the segment files streamed
	// from the leader, which is not implemented yet.
	ErrSnapshotStreaming = errors.New("replica: snapshot needs segment streaming, not implemented")
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
// entries hold byte-identical logs.
//
// Apply, ApplyBatch, Snapshot and Restore are called by raft on one
// goroutine; HighWatermark, AppliedIndex and Log may be called from any.
type FSM struct {
	dir string
	log *partlog.Log

	mu        sync.Mutex // guards the fields below; raft serializes callers anyway
	producers *producer.Table
	applied   uint64 // last raft index applied
	cursor    int64  // offset the next appended batch gets (the high watermark)
	broken    error  // sticky ErrDiverged

	hw         atomic.Int64
	appliedIdx atomic.Uint64

	ckMu    sync.Mutex // orders checkpoint writes
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

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// OpenFSM opens (or creates) the partition log in dir and recovers the
// state machine from its checkpoint: entries up to the checkpoint's index
// are skipped when raft replays them, and the producer table is rebuilt
// from the batch headers below the checkpoint's log end.
//
// The log may hold more than the checkpoint covers (appends after the last
// checkpoint that reached the disk anyway). Raft replays those entries, and
// the FSM re-decides each one; where the decision is an append below the
// local log end it checks that the stored batch is byte-identical instead
// of appending again. So nothing is appended twice and no per-entry fsync
// is needed.
func OpenFSM(dir string, cfg partlog.Config) (*FSM, error) {
	l, err := partlog.Open(dir, cfg)
	if err != nil {
		return nil, err
	}
	f := &FSM{dir: dir, log: l}
	cp, ok, err := readCheckpoint(dir)
	if err != nil {
		l.Close()
		return nil, err
	}
	if !ok {
		cp = checkpoint{Index: 0, End: l.StartOffset()}
	}
	if cp.End > l.EndOffset() || cp.End < l.StartOffset() {
		l.Close()
		return nil, fmt.Errorf("%w: checkpoint at offset %d, log holds [%d, %d)", ErrDiverged, cp.End, l.StartOffset(), l.EndOffset())
	}
	if err := f.reset(cp.Index, cp.End); err != nil {
		l.Close()
		return nil, err
	}
	f.ckIndex = cp.Index
	return f, nil
}

// reset makes (index, end) the applied state, rebuilding the producer
// table from the batches below end.
func (f *FSM) reset(index uint64, end int64) error {
	t := producer.NewTable()
	err := f.log.Batches(f.log.StartOffset(), func(h batch.Header) error {
		if h.BaseOffset >= end {
			return errStop
		}
		// As broker/partition.go loadProducers: control batches are the
		// transaction coordinator's, not a producer's sequence.
		if h.ProducerID >= 0 && !h.Control() {
			t.Record(h, h.BaseOffset)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	f.producers = t
	f.applied = index
	f.cursor = end
	f.hw.Store(end)
	f.appliedIdx.Store(index)
	return nil
}

var errStop = errors.New("stop")

// Log returns the partition log, for reads. Readers must stay below
// HighWatermark; only the FSM appends.
func (f *FSM) Log() *partlog.Log { return f.log }

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
		base, dup, err := f.producers.Check(h)
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
		f.producers.Record(h, base)
	}
	return Result{Base: base}
}

// place puts the stamped batch at the cursor: appends it, or, while
// replaying entries the local log already holds, checks that it is there.
func (f *FSM) place(buf []byte) (int64, error) {
	at := f.cursor
	if at < f.log.EndOffset() {
		batch.SetBaseOffset(buf, at)
		got, err := f.log.Read(at, 1, at+1)
		if err != nil {
			return -1, err
		}
		if !bytes.Equal(got, buf) {
			return -1, fmt.Errorf("replayed entry differs from the stored batch at offset %d", at)
		}
		return at, nil
	}
	base, err := f.log.Append(buf)
	if err != nil {
		return -1, err
	}
	if base != at {
		return -1, fmt.Errorf("appended at %d, expected %d", base, at)
	}
	return base, nil
}

// Checkpoint fsyncs the log up to what has been applied and records the
// applied index, so a restart skips those entries. It is safe to call
// concurrently with Apply.
func (f *FSM) Checkpoint() error {
	f.mu.Lock()
	cp := checkpoint{Index: f.applied, End: f.cursor}
	f.mu.Unlock()
	return f.writeCheckpoint(cp)
}

func (f *FSM) writeCheckpoint(cp checkpoint) error {
	if err := f.log.Sync(cp.End); err != nil {
		return err
	}
	f.ckMu.Lock()
	defer f.ckMu.Unlock()
	if cp.Index <= f.ckIndex {
		return nil
	}
	if err := saveCheckpoint(f.dir, cp); err != nil {
		return err
	}
	f.ckIndex = cp.Index
	return nil
}

// Close checkpoints and closes the log. Shut raft down first.
func (f *FSM) Close() error {
	err := f.Checkpoint()
	if cerr := f.log.Close(); err == nil {
		err = cerr
	}
	return err
}

// manifest is the whole content of a Raft snapshot of a partition.
type manifest struct {
	Version  int    `json:"version"`
	Index    uint64 `json:"index"`
	LogStart int64  `json:"log_start"`
	LogEnd   int64  `json:"log_end"`
}

// Snapshot implements raft.FSM. The snapshot is not a copy of the data:
// the segment files are the state, so Persist fsyncs them up to the
// applied offset, checkpoints, and writes a small manifest. Producer state
// is not in it; Restore rebuilds it from the batch headers.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return nil, f.broken
	}
	return &snapshot{f: f, m: manifest{Version: 1, Index: f.applied, LogStart: f.log.StartOffset(), LogEnd: f.cursor}}, nil
}

// Restore implements raft.FSM. A snapshot the local state already covers
// (raft restoring its latest snapshot at startup, behind our checkpoint)
// changes nothing. Otherwise the local log must already reach the
// manifest's log end (its prefix is committed data, identical on every
// replica): the FSM then adopts the manifest's state and rebuilds the
// producer table. A follower whose log is shorter needs the segments
// streamed from the leader; that is not implemented and Restore returns
// ErrSnapshotStreaming.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var m manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return fmt.Errorf("replica: restore: %w", err)
	}
	if m.Version != 1 {
		return fmt.Errorf("replica: restore: manifest version %d", m.Version)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Index <= f.applied {
		return nil
	}
	if f.log.EndOffset() < m.LogEnd || f.log.StartOffset() > m.LogEnd {
		return fmt.Errorf("%w: snapshot at index %d needs offsets up to %d, local log holds [%d, %d)",
			ErrSnapshotStreaming, m.Index, m.LogEnd, f.log.StartOffset(), f.log.EndOffset())
	}
	f.broken = nil
	return f.reset(m.Index, m.LogEnd)
}

type snapshot struct {
	f *FSM
	m manifest
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	err := s.f.writeCheckpoint(checkpoint{Index: s.m.Index, End: s.m.LogEnd})
	if err == nil {
		err = json.NewEncoder(sink).Encode(s.m)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// checkpoint is the content of checkpointFile: 8-byte index, 8-byte end
// offset, CRC-32C of those 16 bytes, big-endian.
type checkpoint struct {
	Index uint64
	End   int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func readCheckpoint(dir string) (checkpoint, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("replica: %w", err)
	}
	if len(b) != 20 || crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		// Written by rename after fsync, so never torn: this is damage.
		return checkpoint{}, false, fmt.Errorf("replica: corrupt %s", checkpointFile)
	}
	return checkpoint{Index: binary.BigEndian.Uint64(b), End: int64(binary.BigEndian.Uint64(b[8:]))}, true, nil
}

// saveCheckpoint writes the file atomically: temp file, fsync, rename,
// fsync of the directory.
func saveCheckpoint(dir string, cp checkpoint) error {
	var b [20]byte
	binary.BigEndian.PutUint64(b[:], cp.Index)
	binary.BigEndian.PutUint64(b[8:], uint64(cp.End))
	binary.BigEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	p := filepath.Join(dir, checkpointFile)
	tmp := p + ".new"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("replica: checkpoint: %w", err)
	}
	_, err = fh.Write(b[:])
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(dir); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("replica: checkpoint: %w", err)
	}
	return nil
}
