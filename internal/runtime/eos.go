package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Exactly-once (Kafka Streams' exactly_once_v2, KIP-447)
//
// One transactional producer per instance, with the transactional id
// <app id>-<instance id>, the instance id a random id kept in the state
// directory (instanceIDFile): a restarted instance initializes the same id,
// which aborts whatever transaction its previous life left open and fences
// that life's producer if it still runs. Every commit is one transaction:
// the task's output, changelog and repartition records produced since the
// last commit, and the input offsets the tasks processed up to, committed
// to the group through the transaction (TxnOffsetCommit, with the group
// generation and member id, so a zombie of an older generation is refused
// with ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID and aborts). The input
// consumer and the restore consumer read committed records only.
//
// A commit runs: flush the caches (changelog and downstream records go
// out), wait for every record's acknowledgement, AddOffsetsToTxn and
// TxnOffsetCommit with the processed offsets (sent as raw requests through
// the same client, which routes them to the transaction and group
// coordinators), EndTxn(commit); then, the transaction being committed,
// the tasks' transactional stores write their uncommitted overlays to
// LevelDB (one atomic batch each, synced) and the checkpoints are written.
//
// kgo's GroupTransactSession would commit the offsets the client polled
// rather than those the tasks processed, abort on any revocation during
// the transaction, and cannot commit from inside the revocation callback,
// where cooperative rebalancing needs it. So the runtime drives the
// client's transaction API itself: BeginTransaction before the first
// produce of each transaction (the loop begins one before it dispatches
// records, which is the only way records are produced), EndTransaction to
// end it. EndTransaction sends EndTxn only when records were produced in
// the transaction (it does not know of the raw AddOffsetsToTxn); when a
// transaction carries offsets but no record, the runtime sends EndTxn
// itself and then calls EndTransaction, a no-op that resets the client's
// state. The client is capped below KIP-890 part 2 (transaction.version 2:
// EndTxn v5 bumps the epoch on every transaction, which a raw EndTxn would
// hide from the client; see txnMaxVersions), so transactions run with
// Kafka's transaction.version 1 semantics on every broker.
//
// A failed commit — a rebalance took the partitions (ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS), the transaction timed out, a
// record was refused — aborts the transaction, closes every running task
// without committing (their stores drop their uncommitted overlays) and
// restarts them from their committed state: consumer positions back to the
// group's committed offsets, stores restored from their checkpoints (only
// the changelog tail, read committed). That is Kafka Streams' handling of
// TaskMigratedException; under EOS v2 all tasks share the transaction, so
// all of them restart. PRODUCER_FENCED means a newer instance with this
// instance's transactional id exists: fatal (ErrFenced). Offsets are never
// committed outside a transaction, including in the revocation callback and
// at shutdown, which commit through a transaction too.

const (
	// defaultTxnTimeout is the transaction timeout under exactly-once.
	defaultTxnTimeout = 10 * time.Second
	// instanceIDFile holds the instance id in the application's state dir.
	instanceIDFile = "instance.id"
	// maxTxnFailures is how many commits in a row may fail (and restart
	// the tasks) before the failure is fatal.
	maxTxnFailures = 10
)

// eosState is the exactly-once state of a runtime. inTxn, offsetsAdded,
// failures and migrated are guarded by Runtime.mu; the counters and the
// error are set from produce promises.
type eosState struct {
	txnID string

	inTxn        bool // BeginTransaction was called and the transaction not ended
	offsetsAdded bool // AddOffsetsToTxn was sent in this transaction
	failures     int  // commits in a row that failed
	// migrated are tasks rolled back by an abort, their inputs paused,
	// waiting for the loop to restart them from the committed state.
	migrated []*taskState

	produced atomic.Int64 // records handed to the client in this transaction
	acked    atomic.Int64 // of which acknowledged
	failed   atomic.Bool  // err is set
	errMu    sync.Mutex
	err      error // the first produce failure of this transaction
	aborts   atomic.Int64
}

func (e *eosState) setErr(err error) {
	e.errMu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.errMu.Unlock()
	e.failed.Store(true)
}

func (e *eosState) failure() error {
	if !e.failed.Load() {
		return nil
	}
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.err
}

// ended resets the per-transaction state.
func (e *eosState) ended() {
	e.inTxn, e.offsetsAdded = false, false
	e.produced.Store(0)
	e.acked.Store(0)
	e.errMu.Lock()
	e.err = nil
	e.errMu.Unlock()
	e.failed.Store(false)
}

// instanceID returns the instance id kept in dir, creating it on first use.
func instanceID(dir string) (string, error) {
	path := filepath.Join(dir, instanceIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if id := strings.TrimSpace(string(b)); validAppID(id) {
			return id, nil
		}
		// Unreadable content: a new id; the old one's transactions time out.
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("instance id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	_, werr := f.WriteString(id + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("instance id: %w", werr)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return id, nil
}

// validAppID is what an id in a transactional id may hold.
func validAppID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// txnMaxVersions caps the client below KIP-890 part 2 (see the package
// comment above): EndTxn v4, TxnOffsetCommit v4, Produce v11.
func txnMaxVersions() *kversion.Versions {
	v := kversion.Stable()
	for key, max := range map[kmsg.Key]int16{kmsg.EndTxn: 4, kmsg.TxnOffsetCommit: 4, kmsg.Produce: 11} {
		if cur, ok := v.LookupMaxKeyVersion(key.Int16()); ok && cur > max {
			v.SetMaxKeyVersion(key.Int16(), max)
		}
	}
	return v
}

// fenced reports an error that ends this instance: another instance with
// its identity (a copy of its state directory) took its transactional id
// or its static group membership.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.FencedInstanceID)
}

// txnAbortable reports a failure that aborting the transaction and
// restarting the tasks from their committed state recovers from.
func txnAbortable(err error) bool {
	if err == nil || fenced(err) {
		return false
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return true // a transport failure, a timeout, an aborted record
	}
	if ke.Retriable {
		return true
	}
	for _, e := range []*kerr.Error{
		kerr.IllegalGeneration, kerr.UnknownMemberID, kerr.RebalanceInProgress,
		kerr.StaleMemberEpoch, kerr.GroupIDNotFound, kerr.InvalidProducerEpoch, kerr.TransactionAbortable,
		kerr.UnknownProducerID, kerr.InvalidProducerIDMapping, kerr.OperationNotAttempted, kerr.UnknownServerError,
		kerr.OutOfOrderSequenceNumber, kerr.ConcurrentTransactions,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errNotInGroup: the member has no generation to commit offsets with.
var errNotInGroup = fmt.Errorf("not in the group: %w", kerr.UnknownMemberID)

// beginTxn begins a transaction unless one is open. Caller holds mu, and
// no task is processing (none can be: records are dispatched only after
// this ran).
func (r *Runtime) beginTxn() error {
	e := r.eos
	if e == nil || e.inTxn {
		return nil
	}
	if err := r.client.BeginTransaction(); err != nil {
		if fenced(err) {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
		return fmt.Errorf("begin transaction: %w", err)
	}
	e.ended()
	e.inTxn = true
	return nil
}

// produceFailed handles a record the client could not write. Under
// at-least-once it is fatal; under exactly-once it fails the transaction,
// which the next commit (which the loop runs at once) aborts.
func (r *Runtime) produceFailed(err error) {
	e := r.eos
	switch {
	case e == nil:
		r.fail(err)
	case errors.Is(err, kgo.ErrAborting):
		// Aborting on purpose.
	case fenced(err):
		r.fail(fmt.Errorf("%w: %w", ErrFenced, err))
	case !txnAbortable(err):
		r.fail(err)
	default:
		e.setErr(err)
		r.wake.wake()
	}
}

// commitEOS commits everything the tasks processed since the last commit
// as one transaction (see above). Caller holds mu; the tasks are idle.
func (r *Runtime) commitEOS(ctx context.Context) error {
	e := r.eos
	var running, dirty []*taskState
	for _, ts := range r.sortedTasks() {
		if ts.t != nil {
			running = append(running, ts)
			if ts.dirty {
				dirty = append(dirty, ts)
			}
		}
	}
	r.lastCommit = time.Now()
	if err := r.fatalErr(); err != nil {
		return err
	}
	if !e.inTxn && len(dirty) == 0 {
		return nil
	}
	if err := r.beginTxn(); err != nil {
		return err
	}
	if err := r.flushTasks(dirty); err != nil {
		return err
	}
	if err := r.client.Flush(ctx); err != nil {
		return r.rollback(ctx, fmt.Errorf("wait for produced records: %w", err))
	}
	if err := r.fatalErr(); err != nil {
		return err
	}
	if err := e.failure(); err != nil {
		return r.rollback(ctx, err)
	}
	offsets := make(map[tp]kgo.EpochOffset)
	for _, ts := range dirty {
		for p, o := range ts.offsets {
			offsets[p] = o
		}
	}
	if len(offsets) > 0 {
		if err := r.sendTxnOffsets(ctx, offsets); err != nil {
			return r.rollback(ctx, fmt.Errorf("commit offsets in the transaction: %w", err))
		}
	}
	if err := r.endTxn(ctx); err != nil {
		return r.rollback(ctx, fmt.Errorf("commit transaction: %w", err))
	}
	e.failures = 0
	// The transaction committed: what it wrote to the stores may reach
	// the disk now. A failure leaves the stores behind the changelog,
	// which a restart's restoration repairs; going on would not.
	err := r.eachTask(running, func(ts *taskState) error {
		for _, s := range ts.txnStores {
			if err := s.Commit(); err != nil {
				return fmt.Errorf("task %s: commit store: %w", ts.id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.writeCheckpoints(dirty); err != nil {
		return err
	}
	r.markCommitted(dirty)
	return nil
}

// sendTxnOffsets adds the group to the transaction and commits the
// offsets in it, with the member's generation (KIP-447).
func (r *Runtime) sendTxnOffsets(ctx context.Context, offsets map[tp]kgo.EpochOffset) error {
	e := r.eos
	member, gen := r.client.GroupMetadata()
	if gen < 0 || member == "" {
		return errNotInGroup
	}
	id, epoch, err := r.client.ProducerID(ctx)
	if err != nil {
		return err
	}
	if !e.offsetsAdded {
		err := retryConcurrent(ctx, func() error {
			req := kmsg.NewPtrAddOffsetsToTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = e.txnID, id, epoch, r.cfg.AppID
			resp, err := req.RequestWith(ctx, r.client)
			if err != nil {
				return err
			}
			return kerr.ErrorForCode(resp.ErrorCode)
		})
		if err != nil {
			return fmt.Errorf("add offsets to transaction: %w", err)
		}
		e.offsetsAdded = true
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group = e.txnID, r.cfg.AppID
	req.ProducerID, req.ProducerEpoch = id, epoch
	req.Generation, req.MemberID = gen, member
	byTopic := make(map[string][]kmsg.TxnOffsetCommitRequestTopicPartition)
	for p, o := range offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p.partition, o.Offset, o.Epoch
		rp.Metadata = r.streamTimeMeta(p)
		byTopic[p.topic] = append(byTopic[p.topic], rp)
	}
	for _, topic := range sortedKeys(byTopic) {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rt.Partitions = byTopic[topic]
		slices.SortFunc(rt.Partitions, func(a, b kmsg.TxnOffsetCommitRequestTopicPartition) int {
			return int(a.Partition - b.Partition)
		})
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, r.client)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
			}
		}
	}
	if resp.Version < 3 {
		r.log.Warn("the broker's TxnOffsetCommit predates KIP-447 (v3): zombie instances are not fenced by generation", "version", resp.Version)
	}
	return nil
}

// endTxn commits the open transaction.
func (r *Runtime) endTxn(ctx context.Context) error {
	e := r.eos
	if e.acked.Load() == 0 && e.offsetsAdded {
		// Offsets but no record: the client would not send EndTxn.
		if err := r.rawEndTxn(ctx, true); err != nil {
			return err
		}
	}
	if err := r.client.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return err
	}
	e.ended()
	return nil
}

func (r *Runtime) rawEndTxn(ctx context.Context, commit bool) error {
	id, epoch, err := r.client.ProducerID(ctx)
	if err != nil {
		return err
	}
	return retryConcurrent(ctx, func() error {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = r.eos.txnID, id, epoch, commit
		resp, err := req.RequestWith(ctx, r.client)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	})
}

// retryConcurrent runs f again while the coordinator answers
// CONCURRENT_TRANSACTIONS (the previous transaction's markers are still
// being written), for up to 10 s.
func retryConcurrent(ctx context.Context, f func() error) error {
	backoff, deadline := 10*time.Millisecond, time.Now().Add(10*time.Second)
	for {
		err := f()
		if !errors.Is(err, kerr.ConcurrentTransactions) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// rollback handles a failed commit: fatal if this instance is fenced or
// the failure is not one an abort recovers from, otherwise it aborts the
// transaction and restarts the tasks from their committed state. Caller
// holds mu; the tasks are idle.
func (r *Runtime) rollback(ctx context.Context, cause error) error {
	if fenced(cause) {
		r.abortQuietly(ctx)
		return fmt.Errorf("%w: %w", ErrFenced, cause)
	}
	if !txnAbortable(cause) {
		r.abortQuietly(ctx)
		return cause
	}
	r.eos.failures++
	if r.eos.failures > maxTxnFailures {
		r.abortQuietly(ctx)
		return fmt.Errorf("%d commits in a row failed: %w", r.eos.failures, cause)
	}
	r.log.Warn("transaction failed: aborting it; the tasks restart from their last commit", "err", cause)
	return r.abortAndMigrate(ctx)
}

// abortAndMigrate aborts the open transaction and rolls every running task
// back. Caller holds mu; the tasks are idle.
func (r *Runtime) abortAndMigrate(ctx context.Context) error {
	if err := r.abortTxn(ctx); err != nil {
		return err
	}
	r.migrateTasks()
	return nil
}

func (r *Runtime) abortQuietly(ctx context.Context) {
	if err := r.abortTxn(ctx); err != nil {
		r.log.Warn("abort transaction", "err", err)
	}
}

// abortTxn aborts the open transaction: buffered records fail, the
// coordinator writes abort markers. Caller holds mu.
func (r *Runtime) abortTxn(ctx context.Context) error {
	e := r.eos
	if e == nil || !e.inTxn {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	r.client.AbortBufferedRecords(ctx)
	var err error
	if e.acked.Load() == 0 && e.offsetsAdded {
		// The client would not send EndTxn. If this one fails the
		// transaction may stay open, and the next would join it at the
		// same epoch: only a new producer epoch (a restart) is safe.
		if err = r.rawEndTxn(ctx, false); err != nil {
			e.ended()
			r.client.EndTransaction(ctx, kgo.TryAbort)
			return fmt.Errorf("abort transaction: %w", err)
		}
	}
	err = r.client.EndTransaction(ctx, kgo.TryAbort)
	e.ended()
	e.aborts.Add(1)
	if err != nil {
		if fenced(err) {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
		// The client fails its producer id after a failed EndTxn, and
		// the next BeginTransaction initializes it again, which bumps
		// the epoch and aborts whatever the coordinator still has open.
		r.log.Warn("abort transaction; the producer id is reinitialized", "err", err)
	}
	return nil
}

// migrateTasks closes every running task without committing — its
// transactional stores drop what they did not commit — and replaces it by
// a new one, its inputs paused, that restartMigrated starts from the
// committed state. Caller holds mu; the tasks are idle.
func (r *Runtime) migrateTasks() {
	var ids []string
	for _, ts := range r.sortedTasks() {
		if ts.t == nil {
			continue
		}
		ids = append(ids, ts.id.String())
		parts := ts.parts
		r.closeTask(ts)
		nts := r.newTaskState(ts.id, ts.sub)
		nts.parts = parts
		r.tasks[nts.id] = nts
		for _, p := range parts {
			r.byTP[p] = nts
		}
		r.statsMu.Lock()
		r.stats[nts.id] = nts.stats
		r.statsMu.Unlock()
		r.snapshot(nts)
		r.client.PauseFetchPartitions(partitionsOf(parts))
		r.eos.migrated = append(r.eos.migrated, nts)
	}
	if len(ids) > 0 {
		r.log.Info("tasks rolled back to their last commit", "tasks", ids)
	}
}

// restartMigrated starts the rolled-back tasks again: their consumer
// positions go back to the group's committed offsets (stable: no
// transaction pending), then they restore their stores (the changelog
// tail after the checkpoint) or, stateless, run at once. Caller holds mu,
// outside the rebalance callbacks.
func (r *Runtime) restartMigrated(ctx context.Context) error {
	e := r.eos
	if e == nil || len(e.migrated) == 0 {
		return nil
	}
	var todo []*taskState
	for _, ts := range e.migrated {
		if r.tasks[ts.id] == ts && ts.t == nil && ts.job == nil {
			todo = append(todo, ts)
		}
	}
	e.migrated = nil
	if len(todo) == 0 {
		return nil
	}
	offs, err := r.fetchCommitted(ctx)
	if err != nil {
		return fmt.Errorf("restart tasks: %w", err)
	}
	set := make(map[string]map[int32]kgo.EpochOffset)
	for _, ts := range todo {
		for _, p := range ts.parts {
			at := kgo.EpochOffset{Epoch: -1, Offset: -2} // none committed: the start, as ConsumeResetOffset
			if o, ok := offs.Lookup(p.topic, p.partition); ok && o.Err == nil && o.At >= 0 {
				at.Offset = o.At
			}
			if set[p.topic] == nil {
				set[p.topic] = make(map[int32]kgo.EpochOffset)
			}
			set[p.topic][p.partition] = at
		}
	}
	r.client.SetOffsets(set)
	for _, ts := range todo {
		r.startTask(ts)
	}
	return nil
}

// fetchCommitted fetches the group's committed offsets; under
// exactly-once it waits until no transaction has offsets pending
// (RequireStable), retrying while the coordinator is busy.
func (r *Runtime) fetchCommitted(ctx context.Context) (kadm.OffsetResponses, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if r.eos != nil {
		ctx = kadm.RequireStable(ctx)
	}
	for {
		offs, err := r.adm.FetchOffsets(ctx, r.cfg.AppID)
		retry := err
		if err == nil {
			retry = offs.Error() // UNSTABLE_OFFSET_COMMIT comes per partition
		}
		if retry == nil || !kerr.IsRetriable(retry) || ctx.Err() != nil {
			return offs, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
