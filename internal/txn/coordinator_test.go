package txn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/group"
)

var bg = context.Background()

func TestCommit(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0), tp("b", 1))
	if epoch != 0 {
		t.Fatalf("first epoch %d, want 0", epoch)
	}
	wantErr(t, "AddOffsets", e.c.AddOffsets(bg, "t1", pid, epoch, "g1"), nil)
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	e.waitState(t, "t1", "CompleteCommit")

	offsets := tp("__consumer_offsets", group.KeyPartition("g1", 50))
	reqs := e.markers.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d marker requests, want 1", len(reqs))
	}
	want := MarkerRequest{ProducerID: pid, ProducerEpoch: epoch, Commit: true, CoordinatorEpoch: testCoordEpoch,
		Partitions: []TopicPartition{offsets, tp("a", 0), tp("b", 1)}}
	if got := reqs[0]; !equalReq(got, want) {
		t.Fatalf("markers %+v, want %+v", got, want)
	}

	var states []string
	for _, m := range e.log.history(t, e.c, "t1") {
		states = append(states, m.state.String())
	}
	if want := []string{"Empty", "Ongoing", "Ongoing", "PrepareCommit", "CompleteCommit"}; !slices.Equal(states, want) {
		t.Fatalf("log states %v, want %v", states, want)
	}
	h := e.log.history(t, e.c, "t1")
	if last := h[len(h)-1]; last.pid != pid || last.epoch != epoch || len(last.parts) != 0 {
		t.Fatalf("final record %+v", last)
	}
	if prep := h[3]; len(prep.parts) != 3 || prep.startMs < 0 {
		t.Fatalf("PrepareCommit record %+v", prep)
	}

	// A retried EndTxn of the same outcome succeeds; the other is invalid.
	wantErr(t, "retried commit", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	wantErr(t, "abort after commit", e.c.EndTxn(bg, "t1", pid, epoch, false), kerr.InvalidTxnState)

	// The next transaction starts from CompleteCommit with the same epoch.
	mustAdd(t, e.c, "t1", pid, epoch, tp("a", 2))
	if d := e.c.Describe([]string{"t1"})[0]; d.State != "Ongoing" || !slices.Equal(d.Partitions, []TopicPartition{tp("a", 2)}) {
		t.Fatalf("second transaction %+v", d)
	}
}

func equalReq(a, b MarkerRequest) bool {
	return a.ProducerID == b.ProducerID && a.ProducerEpoch == b.ProducerEpoch && a.Commit == b.Commit &&
		a.CoordinatorEpoch == b.CoordinatorEpoch && slices.Equal(a.Partitions, b.Partitions)
}

func TestAbort(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 1))
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, false), nil)
	e.waitState(t, "t1", "CompleteAbort")
	reqs := e.markers.requests()
	if len(reqs) != 1 || reqs[0].Commit || reqs[0].ProducerEpoch != epoch {
		t.Fatalf("markers %+v", reqs)
	}
	wantErr(t, "retried abort", e.c.EndTxn(bg, "t1", pid, epoch, false), nil)
	wantErr(t, "commit after abort", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.InvalidTxnState)
}

func TestEndTxnWhilePreparing(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1")
	wantErr(t, "EndTxn on Empty", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.InvalidTxnState)
	mustAdd(t, e.c, "t1", pid, epoch, tp("a", 0))

	e.markers.setFail(failAll)
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	eventually(t, "a marker attempt", func() bool { return e.markers.attempts(tp("a", 0)) > 1 })
	wantErr(t, "retried commit", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.ConcurrentTransactions)
	wantErr(t, "abort", e.c.EndTxn(bg, "t1", pid, epoch, false), kerr.InvalidTxnState)
	wantErr(t, "add", e.c.AddPartitions(bg, "t1", pid, epoch, []TopicPartition{tp("a", 1)})[tp("a", 1)], kerr.ConcurrentTransactions)
	_, _, err := e.c.InitProducerID(bg, "t1", 1000, -1, -1)
	wantErr(t, "init", err, kerr.ConcurrentTransactions)
	if e.state("t1") != "PrepareCommit" {
		t.Fatalf("state %s, want PrepareCommit", e.state("t1"))
	}

	e.markers.setFail(nil)
	e.waitState(t, "t1", "CompleteCommit")
	wantErr(t, "retried commit", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
}

func TestZombieFencing(t *testing.T) {
	e := newEnv(t)
	pid, old := e.begin(t, "t1", tp("a", 0))
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, old, true), nil)
	e.waitState(t, "t1", "CompleteCommit")

	pid2, epoch, err := e.c.InitProducerID(bg, "t1", 60_000, -1, -1)
	if err != nil || pid2 != pid || epoch != old+1 {
		t.Fatalf("second init: %d/%d %v, want %d/%d", pid2, epoch, err, pid, old+1)
	}
	parts := []TopicPartition{tp("a", 0)}
	wantErr(t, "zombie add", e.c.AddPartitions(bg, "t1", pid, old, parts)[tp("a", 0)], kerr.ProducerFenced)
	wantErr(t, "zombie offsets", e.c.AddOffsets(bg, "t1", pid, old, "g"), kerr.ProducerFenced)
	wantErr(t, "zombie end", e.c.EndTxn(bg, "t1", pid, old, true), kerr.ProducerFenced)
	wantErr(t, "zombie verify", e.c.VerifyPartitions("t1", pid, old, parts)[tp("a", 0)], kerr.ProducerFenced)
	wantErr(t, "wrong pid", e.c.EndTxn(bg, "t1", pid+50, epoch, true), kerr.InvalidProducerIDMapping)
	wantErr(t, "unknown id", e.c.EndTxn(bg, "nope", pid, epoch, true), kerr.InvalidProducerIDMapping)
	_, _, err = e.c.InitProducerID(bg, "t1", 60_000, pid, old)
	wantErr(t, "zombie re-init (KIP-360)", err, kerr.ProducerFenced)
	mustAdd(t, e.c, "t1", pid, epoch, parts...)
}

func TestInitWhileOngoingAborts(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0), tp("b", 0))
	e.markers.setFail(func(tp TopicPartition, attempt int) error {
		if attempt == 1 {
			return kerr.NotLeaderForPartition
		}
		return nil
	})
	_, _, err := e.c.InitProducerID(bg, "t1", 60_000, -1, -1)
	wantErr(t, "init while ongoing", err, kerr.ConcurrentTransactions)
	wantErr(t, "old producer's commit", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.ProducerFenced)

	var got int16
	eventually(t, "init to succeed", func() bool {
		p, ep, err := e.c.InitProducerID(bg, "t1", 60_000, -1, -1)
		if errors.Is(err, kerr.ConcurrentTransactions) {
			return false
		}
		if err != nil || p != pid {
			t.Fatalf("retried init: %d/%d %v", p, ep, err)
		}
		got = ep
		return true
	})
	if got != epoch+2 {
		t.Fatalf("epoch after fence %d, want %d", got, epoch+2)
	}
	for _, r := range e.markers.requests() {
		if r.Commit || r.ProducerEpoch != epoch+1 || r.ProducerID != pid {
			t.Fatalf("fence markers %+v, want abort at epoch %d", r, epoch+1)
		}
	}
	h := e.log.history(t, e.c, "t1")
	var states []string
	for _, m := range h {
		states = append(states, fmt.Sprintf("%s/%d", m.state, m.epoch))
	}
	want := []string{"Empty/0", "Ongoing/0", "PrepareAbort/1", "CompleteAbort/1", "Empty/2"}
	if !slices.Equal(states, want) {
		t.Fatalf("log %v, want %v", states, want)
	}
}

func TestTimeoutAbort(t *testing.T) {
	e := newEnv(t)
	pid, epoch, err := e.c.InitProducerID(bg, "t1", 1000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, e.c, "t1", pid, epoch, tp("a", 0))
	e.begin(t, "other", tp("a", 1)) // 60 s timeout: not expired

	e.clock.advance(1000 * time.Millisecond)
	e.c.abortTimedOut()
	if e.state("t1") != "Ongoing" || len(e.markers.requests()) != 0 {
		t.Fatalf("aborted at exactly the timeout")
	}
	e.clock.advance(time.Millisecond)
	e.c.abortTimedOut()
	e.waitState(t, "t1", "CompleteAbort")
	if e.state("other") != "Ongoing" {
		t.Fatalf("other transaction %s", e.state("other"))
	}
	reqs := e.markers.requests()
	if len(reqs) != 1 || reqs[0].Commit || reqs[0].ProducerEpoch != epoch+1 {
		t.Fatalf("timeout markers %+v, want abort at bumped epoch", reqs)
	}
	wantErr(t, "zombie end", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.ProducerFenced)
	wantErr(t, "zombie add", e.c.AddPartitions(bg, "t1", pid, epoch, []TopicPartition{tp("a", 0)})[tp("a", 0)], kerr.ProducerFenced)
	if d := e.c.Describe([]string{"t1"})[0]; d.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch %d, want %d", d.ProducerEpoch, epoch+1)
	}
}

func TestExpiration(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "idle", tp("a", 0))
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "idle", pid, epoch, true), nil)
	e.waitState(t, "idle", "CompleteCommit")
	e.begin(t, "empty")
	e.begin(t, "busy", tp("a", 1))

	e.clock.advance(7*24*time.Hour - time.Millisecond)
	e.c.expireIDs()
	if e.state("idle") != "CompleteCommit" || e.state("empty") != "Empty" {
		t.Fatalf("expired early")
	}
	e.clock.advance(time.Millisecond)
	e.c.expireIDs()
	for _, id := range []string{"idle", "empty"} {
		eventually(t, id+" expiry", func() bool {
			return errors.Is(e.c.Describe([]string{id})[0].Err, kerr.TransactionalIDNotFound)
		})
		h := e.log.history(t, e.c, id)
		if h[len(h)-1].state != stateDead {
			t.Fatalf("%s: no tombstone", id)
		}
	}
	if e.state("busy") != "Ongoing" {
		t.Fatalf("an ongoing transaction expired")
	}
	pid2, epoch2, err := e.c.InitProducerID(bg, "idle", 1000, -1, -1)
	if err != nil || pid2 == pid || epoch2 != 0 {
		t.Fatalf("init after expiry: %d/%d %v, want a new producer id", pid2, epoch2, err)
	}
}

func TestReplayCompletesPrepare(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0), tp("b", 1))
	pid2, epoch2 := e.begin(t, "t2")
	e.markers.setFail(failAll)
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	e.c.Close() // the coordinator dies with t1 in PrepareCommit

	c := e.newCoordinator(t)
	for _, n := range slices.Compact([]int32{c.PartitionFor("t1"), c.PartitionFor("t2")}) {
		for _, r := range e.log.partition(n) {
			if err := c.Load(n, r.Key, r.Value); err != nil {
				t.Fatalf("Load: %v", err)
			}
		}
	}
	d := c.Describe([]string{"t1"})[0]
	wantErr(t, "describe while loading", d.Err, kerr.CoordinatorLoadInProgress)
	_, _, err := c.InitProducerID(bg, "t1", 1000, -1, -1)
	wantErr(t, "init while loading", err, kerr.CoordinatorLoadInProgress)

	before := len(e.markers.requests())
	e.markers.setFail(nil)
	c.Elect(c.PartitionFor("t1"), testCoordEpoch+1)
	c.Elect(c.PartitionFor("t2"), testCoordEpoch+1)
	eventually(t, "t1 completed", func() bool { return c.Describe([]string{"t1"})[0].State == "CompleteCommit" })
	reqs := e.markers.requests()[before:]
	want := MarkerRequest{ProducerID: pid, ProducerEpoch: epoch, Commit: true, CoordinatorEpoch: testCoordEpoch + 1,
		Partitions: []TopicPartition{tp("a", 0), tp("b", 1)}}
	if len(reqs) != 1 || !equalReq(reqs[0], want) {
		t.Fatalf("replayed markers %+v, want %+v", reqs, want)
	}
	// Other ids carry on from their loaded state.
	p, ep, err := c.InitProducerID(bg, "t2", 1000, pid2, epoch2)
	if err != nil || p != pid2 || ep != epoch2+1 {
		t.Fatalf("t2 after replay: %d/%d %v", p, ep, err)
	}
	if n := c.PartitionFor("zzz"); n != c.PartitionFor("t1") && n != c.PartitionFor("t2") {
		_, _, err := c.InitProducerID(bg, "zzz", 1000, -1, -1)
		wantErr(t, "unserved partition", err, kerr.NotCoordinator)
	}
}

func TestReplayTombstoneAndEpochFence(t *testing.T) {
	e := newEnv(t)
	c := e.newCoordinator(t)
	n := c.PartitionFor("t1")
	fence := meta{pid: 5, epoch: 3, timeoutMs: 1000, state: statePrepareEpochFence, parts: []TopicPartition{tp("a", 0)}, startMs: 1, updateMs: 2}
	for _, r := range []Record{
		{txnKey("t1"), txnValue(meta{pid: 5, epoch: 2, state: stateEmpty, startMs: -1})},
		{txnKey("t1"), txnValue(fence)},
		{txnKey("gone"), txnValue(meta{pid: 6, state: stateEmpty, startMs: -1})},
		{txnKey("gone"), nil},
	} {
		if err := c.Load(n, r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Load(n, []byte{0}, nil); err == nil {
		t.Fatal("a truncated key loaded")
	}
	if err := c.Load(n, txnKey("t1"), []byte{0, 9}); err == nil {
		t.Fatal("a truncated value loaded")
	}
	c.Elect(n, 1)
	if err := c.Load(n, txnKey("t1"), nil); err == nil {
		t.Fatal("Load into a served partition succeeded")
	}
	eventually(t, "fence completed", func() bool { return c.Describe([]string{"t1"})[0].State == "CompleteAbort" })
	if r := e.markers.requests(); len(r) != 1 || r[0].Commit || r[0].ProducerEpoch != 3 {
		t.Fatalf("markers %+v", r)
	}
	if n == c.PartitionFor("gone") {
		wantErr(t, "tombstoned id", c.Describe([]string{"gone"})[0].Err, kerr.TransactionalIDNotFound)
	}
}

func TestMarkerFailureRetried(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0), tp("a", 1), tp("b", 0))
	e.markers.setFail(func(p TopicPartition, attempt int) error {
		switch {
		case p == tp("a", 1) && attempt <= 2:
			return kerr.NotLeaderForPartition
		case p == tp("b", 0):
			return kerr.UnknownTopicOrPartition // deleted: dropped, not retried
		}
		return nil
	})
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	e.waitState(t, "t1", "CompleteCommit")
	if n := e.markers.attempts(tp("a", 1)); n != 3 {
		t.Fatalf("a/1 attempts %d, want 3", n)
	}
	for tp, want := range map[TopicPartition]int{tp("a", 0): 1, tp("b", 0): 1} {
		if n := e.markers.attempts(tp); n != want {
			t.Fatalf("%v attempts %d, want %d", tp, n, want)
		}
	}
}

func TestResignStopsWork(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0))
	e.markers.setFail(failAll)
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	eventually(t, "marker retries", func() bool { return e.markers.attempts(tp("a", 0)) > 2 })
	e.c.Resign(e.c.PartitionFor("t1"))

	_, _, err := e.c.InitProducerID(bg, "t1", 1000, -1, -1)
	wantErr(t, "init after resign", err, kerr.NotCoordinator)
	wantErr(t, "end after resign", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.NotCoordinator)
	wantErr(t, "describe after resign", e.c.Describe([]string{"t1"})[0].Err, kerr.NotCoordinator)
	if l := e.c.List(nil, nil, 0); len(l) != 0 {
		t.Fatalf("List after resign %+v", l)
	}
	// Retries stop: Close (in Cleanup) waits for the completion goroutine,
	// and a resigned partition writes nothing more.
	n := e.log.count()
	e.c.Close()
	if e.log.count() != n {
		t.Fatal("a resigned partition kept writing")
	}
}

func TestLogFailure(t *testing.T) {
	e := newEnv(t)
	e.log.setFail(errors.New("disk on fire"))
	_, _, err := e.c.InitProducerID(bg, "t1", 1000, -1, -1)
	wantErr(t, "init", err, kerr.CoordinatorNotAvailable)
	wantErr(t, "describe", e.c.Describe([]string{"t1"})[0].Err, kerr.TransactionalIDNotFound)

	e.log.setFail(nil)
	pid, epoch := e.begin(t, "t1")
	e.log.setFail(kerr.NotLeaderForPartition)
	wantErr(t, "add", e.c.AddPartitions(bg, "t1", pid, epoch, []TopicPartition{tp("a", 0)})[tp("a", 0)], kerr.NotCoordinator)
	if e.state("t1") != "Empty" {
		t.Fatalf("a failed write became visible: %s", e.state("t1"))
	}
	e.log.setFail(nil)
	mustAdd(t, e.c, "t1", pid, epoch, tp("a", 0))
	e.log.setFail(kerr.NotEnoughReplicas)
	wantErr(t, "end", e.c.EndTxn(bg, "t1", pid, epoch, true), kerr.CoordinatorNotAvailable)
	if e.state("t1") != "Ongoing" {
		t.Fatalf("a failed PrepareCommit became visible: %s", e.state("t1"))
	}
}

func TestCompleteWriteRetried(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0))
	e.markers.setFail(func(TopicPartition, int) error {
		e.log.setFail(kerr.NotEnoughReplicas) // the Complete write fails at first
		return nil
	})
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	eventually(t, "markers", func() bool { return e.markers.attempts(tp("a", 0)) == 1 })
	e.markers.setFail(nil)
	if e.state("t1") != "PrepareCommit" {
		t.Fatalf("state %s while the log fails", e.state("t1"))
	}
	e.log.setFail(nil)
	e.waitState(t, "t1", "CompleteCommit")
	if n := e.markers.attempts(tp("a", 0)); n != 1 {
		t.Fatalf("markers rewritten %d times for a failed Complete write", n)
	}
}

func TestIDAllocationFailure(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ err, want error }{
		{errors.New("controller unreachable"), kerr.CoordinatorNotAvailable},
		{kerr.CoordinatorLoadInProgress, kerr.CoordinatorLoadInProgress},
	} {
		e.ids.fail.Store(&c.err)
		_, _, err := e.c.InitProducerID(bg, "t1", 1000, -1, -1)
		wantErr(t, "init", err, c.want)
		wantErr(t, "describe", e.c.Describe([]string{"t1"})[0].Err, kerr.TransactionalIDNotFound)
	}
	e.ids.fail.Store(nil)
	e.begin(t, "t1")
}

func TestCoordinatorFencedStopsMarkers(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0))
	e.markers.setFail(func(TopicPartition, int) error { return kerr.TransactionCoordinatorFenced })
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	eventually(t, "markers", func() bool { return e.markers.attempts(tp("a", 0)) == 1 })
	e.c.Close() // waits for the completion goroutine
	if n := e.markers.attempts(tp("a", 0)); n != 1 {
		t.Fatalf("%d marker attempts after being fenced, want 1", n)
	}
	h := e.log.history(t, e.c, "t1")
	if s := h[len(h)-1].state; s != statePrepareCommit {
		t.Fatalf("last record %s, want PrepareCommit (left to the newer coordinator)", s)
	}
}

func TestReElectUpdatesEpoch(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0))
	e.c.Elect(e.c.PartitionFor("t1"), testCoordEpoch+3)
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, false), nil)
	e.waitState(t, "t1", "CompleteAbort")
	if r := e.markers.requests(); len(r) != 1 || r[0].CoordinatorEpoch != testCoordEpoch+3 {
		t.Fatalf("markers %+v", r)
	}
}

func TestInvalidTimeout(t *testing.T) {
	e := newEnv(t)
	for _, ms := range []int32{0, -1, 15*60*1000 + 1} {
		_, _, err := e.c.InitProducerID(bg, "t1", ms, -1, -1)
		wantErr(t, fmt.Sprintf("timeout %d", ms), err, kerr.InvalidTransactionTimeout)
	}
	if _, _, err := e.c.InitProducerID(bg, "t1", 15*60*1000, -1, -1); err != nil {
		t.Fatalf("max timeout: %v", err)
	}
	_, _, err := e.c.InitProducerID(bg, "", 1000, -1, -1)
	wantErr(t, "empty id", err, kerr.InvalidRequest)
	_, _, err = e.c.InitProducerID(bg, "t1", 1000, 5, -1)
	wantErr(t, "half a producer", err, kerr.InvalidRequest)
}

func TestKIP360Bump(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1")
	p, ep, err := e.c.InitProducerID(bg, "t1", 1000, pid, epoch)
	if err != nil || p != pid || ep != epoch+1 {
		t.Fatalf("bump: %d/%d %v", p, ep, err)
	}
	// A retry of that call (its response was lost) gets the same epoch.
	p, ep, err = e.c.InitProducerID(bg, "t1", 1000, pid, epoch)
	if err != nil || p != pid || ep != epoch+1 {
		t.Fatalf("retried bump: %d/%d %v", p, ep, err)
	}
	_, _, err = e.c.InitProducerID(bg, "t1", 1000, pid, epoch+5)
	wantErr(t, "unknown epoch", err, kerr.ProducerFenced)
	_, _, err = e.c.InitProducerID(bg, "t1", 1000, pid+1, 0)
	wantErr(t, "other producer", err, kerr.ProducerFenced)
}

func TestEpochExhaustion(t *testing.T) {
	e := newEnv(t)
	c := e.newCoordinator(t)
	n := c.PartitionFor("t1")
	if err := c.Load(n, txnKey("t1"), txnValue(meta{pid: 42, epoch: math.MaxInt16 - 2, timeoutMs: 1000, state: stateCompleteCommit, startMs: 1, updateMs: 1})); err != nil {
		t.Fatal(err)
	}
	c.Elect(n, 1)
	p, ep, err := c.InitProducerID(bg, "t1", 1000, -1, -1)
	if err != nil || p != 42 || ep != math.MaxInt16-1 {
		t.Fatalf("last bump: %d/%d %v", p, ep, err)
	}
	p, ep, err = c.InitProducerID(bg, "t1", 1000, 42, math.MaxInt16-1)
	if err != nil || p == 42 || ep != 0 {
		t.Fatalf("exhausted: %d/%d %v, want a new producer id at epoch 0", p, ep, err)
	}
	newPID := p
	p, ep, err = c.InitProducerID(bg, "t1", 1000, 42, math.MaxInt16-1)
	if err != nil || p != newPID || ep != 0 {
		t.Fatalf("retried rotation: %d/%d %v, want %d/0", p, ep, err, newPID)
	}
	_, _, err = c.InitProducerID(bg, "t1", 1000, 42, 5)
	wantErr(t, "old producer id", err, kerr.ProducerFenced)
	p, ep, err = c.InitProducerID(bg, "t1", 1000, newPID, 0)
	if err != nil || p != newPID || ep != 1 {
		t.Fatalf("bump of the new producer id: %d/%d %v", p, ep, err)
	}
}

func TestEpochExhaustionWithoutProducer(t *testing.T) {
	e := newEnv(t)
	c := e.newCoordinator(t)
	n := c.PartitionFor("t1")
	if err := c.Load(n, txnKey("t1"), txnValue(meta{pid: 42, epoch: math.MaxInt16 - 1, timeoutMs: 1000, state: stateEmpty, startMs: -1})); err != nil {
		t.Fatal(err)
	}
	c.Elect(n, 1)
	p, ep, err := c.InitProducerID(bg, "t1", 1000, -1, -1)
	if err != nil || p == 42 || ep != 0 {
		t.Fatalf("exhausted: %d/%d %v", p, ep, err)
	}
}

func TestAddPartitions(t *testing.T) {
	e := newEnv(t)
	pid, epoch := e.begin(t, "t1", tp("a", 0))
	errs := e.c.AddPartitions(bg, "t1", pid, epoch, []TopicPartition{tp("a", 1), tp("a", 3), tp("nope", 0)})
	wantErr(t, "known", errs[tp("a", 1)], kerr.OperationNotAttempted)
	wantErr(t, "past the end", errs[tp("a", 3)], kerr.UnknownTopicOrPartition)
	wantErr(t, "unknown topic", errs[tp("nope", 0)], kerr.UnknownTopicOrPartition)

	n := e.log.count()
	mustAdd(t, e.c, "t1", pid, epoch, tp("a", 0))
	if e.log.count() != n {
		t.Fatal("re-adding a partition wrote")
	}
	if errs := e.c.AddPartitions(bg, "t1", pid, epoch, nil); len(errs) != 0 {
		t.Fatalf("empty add: %v", errs)
	}
	v := e.c.VerifyPartitions("t1", pid, epoch, []TopicPartition{tp("a", 0), tp("a", 1)})
	wantErr(t, "verify added", v[tp("a", 0)], nil)
	wantErr(t, "verify not added", v[tp("a", 1)], kerr.InvalidTxnState)
	wantErr(t, "verify wrong pid", e.c.VerifyPartitions("t1", pid+1, epoch, []TopicPartition{tp("a", 0)})[tp("a", 0)], kerr.InvalidProducerIDMapping)
	if e.log.count() != n {
		t.Fatal("verify wrote")
	}
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "t1", pid, epoch, true), nil)
	wantErr(t, "verify after end", e.c.VerifyPartitions("t1", pid, epoch, []TopicPartition{tp("a", 0)})[tp("a", 0)], kerr.InvalidTxnState)
}

func TestDescribeList(t *testing.T) {
	e := newEnv(t)
	p1, e1 := e.begin(t, "ongoing", tp("a", 0), tp("b", 1))
	e.clock.advance(time.Minute)
	p2, e2 := e.begin(t, "young", tp("a", 1))
	e.begin(t, "empty")
	wantErr(t, "EndTxn", e.c.EndTxn(bg, "young", p2, e2, true), nil)
	e.waitState(t, "young", "CompleteCommit")
	e.clock.advance(time.Second)

	d := e.c.Describe([]string{"ongoing", "missing"})
	want := Description{TransactionalID: "ongoing", State: "Ongoing", ProducerID: p1, ProducerEpoch: e1, TimeoutMillis: 60_000,
		StartTimestamp: e.clock.now().Add(-time.Minute - time.Second).UnixMilli(), Partitions: []TopicPartition{tp("a", 0), tp("b", 1)}}
	if got := d[0]; got.Err != nil || got.State != want.State || got.ProducerID != want.ProducerID || got.ProducerEpoch != want.ProducerEpoch ||
		got.TimeoutMillis != want.TimeoutMillis || got.StartTimestamp != want.StartTimestamp || !slices.Equal(got.Partitions, want.Partitions) {
		t.Fatalf("Describe %+v, want %+v", got, want)
	}
	wantErr(t, "missing", d[1].Err, kerr.TransactionalIDNotFound)
	if d := e.c.Describe([]string{"empty"})[0]; d.State != "Empty" || d.StartTimestamp != -1 || len(d.Partitions) != 0 {
		t.Fatalf("Empty described as %+v", d)
	}

	ids := func(l []Listing) []string {
		var out []string
		for _, x := range l {
			out = append(out, x.TransactionalID)
		}
		return out
	}
	for _, c := range []struct {
		states []string
		pids   []int64
		min    time.Duration
		want   []string
	}{
		{nil, nil, 0, []string{"empty", "ongoing", "young"}},
		{[]string{"Ongoing", "CompleteCommit"}, nil, 0, []string{"ongoing", "young"}},
		{[]string{"Bogus"}, nil, 0, nil},
		{nil, []int64{p2}, 0, []string{"young"}},
		{nil, nil, 30 * time.Second, []string{"ongoing"}},
	} {
		if got := ids(e.c.List(c.states, c.pids, c.min)); !slices.Equal(got, c.want) {
			t.Errorf("List(%v, %v, %v) = %v, want %v", c.states, c.pids, c.min, got, c.want)
		}
	}
	if l := e.c.List([]string{"Ongoing"}, nil, 0); len(l) != 1 || l[0].ProducerID != p1 || l[0].State != "Ongoing" {
		t.Fatalf("listing %+v", l)
	}

	// Only served partitions: resign "ongoing"'s and it is gone from List
	// and not coordinated here.
	e.c.Resign(e.c.PartitionFor("ongoing"))
	wantErr(t, "resigned", e.c.Describe([]string{"ongoing"})[0].Err, kerr.NotCoordinator)
	for _, x := range e.c.List(nil, nil, 0) {
		if x.TransactionalID == "ongoing" {
			t.Fatal("listed an id of a resigned partition")
		}
	}
}

// TestConcurrent runs whole transactions on many ids at once, and racing
// InitProducerId calls on one id, for the race detector.
func TestConcurrent(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("t%d", i)
			pid, epoch, err := e.c.InitProducerID(bg, id, 60_000, -1, -1)
			if err != nil {
				t.Errorf("init %s: %v", id, err)
				return
			}
			for j := 0; j < 5; {
				errs := e.c.AddPartitions(bg, id, pid, epoch, []TopicPartition{tp("a", int32(j%3))})
				if err := errs[tp("a", int32(j%3))]; err != nil {
					if !errors.Is(err, kerr.ConcurrentTransactions) {
						t.Errorf("add %s: %v", id, err)
						return
					}
					continue // the previous transaction is still completing
				}
				if err := e.c.EndTxn(bg, id, pid, epoch, j%2 == 0); err != nil {
					t.Errorf("end %s: %v", id, err)
					return
				}
				_ = e.c.Describe([]string{id})
				_ = e.c.List(nil, nil, 0)
				j++
			}
		}()
	}
	epochs := make(chan int16, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ep, err := e.c.InitProducerID(bg, "shared", 60_000, -1, -1)
			if err == nil {
				epochs <- ep
			} else if !errors.Is(err, kerr.ConcurrentTransactions) {
				t.Errorf("shared init: %v", err)
			}
		}()
	}
	wg.Wait()
	close(epochs)
	seen := map[int16]bool{}
	for ep := range epochs {
		if seen[ep] {
			t.Fatalf("epoch %d handed out twice", ep)
		}
		seen[ep] = true
	}
}
