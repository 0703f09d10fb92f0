package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestInstanceIDPersists(t *testing.T) {
	dir := t.TempDir()
	id, err := instanceID(dir)
	if err != nil || !validAppID(id) || len(id) != 16 {
		t.Fatalf("instanceID = %q, %v", id, err)
	}
	again, err := instanceID(dir)
	if err != nil || again != id {
		t.Fatalf("second instanceID = %q, %v; want %q: a restart must fence its own zombie", again, err, id)
	}
	other, err := instanceID(t.TempDir())
	if err != nil || other == id {
		t.Fatalf("another state dir got %q (%v), same as %q", other, err, id)
	}
	// Content that cannot be part of a transactional id is replaced.
	if err := os.WriteFile(filepath.Join(dir, instanceIDFile), []byte("no spaces allowed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fresh, err := instanceID(dir); err != nil || fresh == id || !validAppID(fresh) {
		t.Fatalf("instanceID over bad content = %q, %v", fresh, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only %s", len(entries), instanceIDFile)
	}
}

func TestTxnErrorClasses(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("%w: topic x: %w", ErrProduce, err) }
	for _, tt := range []struct {
		err              error
		fenced, abortRun bool
	}{
		{kerr.ProducerFenced, true, false},
		{wrap(kerr.ProducerFenced), true, false},
		{kerr.TransactionalIDAuthorizationFailed, true, false},
		// A rebalance or a zombie's old generation: abort, restart the tasks.
		{kerr.IllegalGeneration, false, true},
		{kerr.UnknownMemberID, false, true},
		{kerr.RebalanceInProgress, false, true},
		{errNotInGroup, false, true},
		// The coordinator aborted the transaction (timeout): the epoch moved.
		{wrap(kerr.InvalidProducerEpoch), false, true},
		{kerr.TransactionAbortable, false, true},
		{kerr.ConcurrentTransactions, false, true},
		{kerr.NotCoordinator, false, true},
		{context.DeadlineExceeded, false, true},
		{errors.New("connection reset"), false, true},
		// Not something a retry fixes: fatal.
		{wrap(kerr.MessageTooLarge), false, false},
		{kerr.TopicAuthorizationFailed, false, false},
		{kerr.InvalidTxnState, false, false},
	} {
		if got := fenced(tt.err); got != tt.fenced {
			t.Errorf("fenced(%v) = %v", tt.err, got)
		}
		if got := txnAbortable(tt.err); got != tt.abortRun {
			t.Errorf("txnAbortable(%v) = %v", tt.err, got)
		}
	}
	if txnAbortable(nil) {
		t.Error("txnAbortable(nil)")
	}
}

func TestProduceFailedUnderEOS(t *testing.T) {
	r := &Runtime{eos: &eosState{}}
	r.produceFailed(fmt.Errorf("%w: %w", ErrProduce, kgo.ErrAborting))
	if r.eos.failure() != nil || r.fatalErr() != nil {
		t.Fatal("a record failed by our own abort counted as a failure")
	}
	r.produceFailed(fmt.Errorf("%w: %w", ErrProduce, kerr.InvalidProducerEpoch))
	if err := r.eos.failure(); !errors.Is(err, kerr.InvalidProducerEpoch) || r.fatalErr() != nil {
		t.Fatalf("transaction failure %v, fatal %v; want the transaction failed, not the app", err, r.fatalErr())
	}
	r.eos.ended()
	if r.eos.failure() != nil || r.eos.failed.Load() {
		t.Fatal("ended kept the failure")
	}
	r.produceFailed(fmt.Errorf("%w: %w", ErrProduce, kerr.ProducerFenced))
	if err := r.fatalErr(); !errors.Is(err, ErrFenced) {
		t.Fatalf("fatal = %v, want ErrFenced", err)
	}

	alo := &Runtime{}
	alo.produceFailed(fmt.Errorf("%w: %w", ErrProduce, kerr.NotLeaderForPartition))
	if !errors.Is(alo.fatalErr(), ErrProduce) {
		t.Fatalf("under at-least-once a failed record is fatal; got %v", alo.fatalErr())
	}
}

// The raw EndTxn the runtime sends for offset-only transactions must not
// bump the producer epoch behind the client's back: the client stays below
// KIP-890 part 2.
func TestTxnMaxVersions(t *testing.T) {
	v := txnMaxVersions()
	stable := kversion.Stable()
	for key, max := range map[kmsg.Key]int16{kmsg.EndTxn: 4, kmsg.TxnOffsetCommit: 4, kmsg.Produce: 11} {
		got, ok := v.LookupMaxKeyVersion(key.Int16())
		if !ok || got > max {
			t.Errorf("%v max version %d (%v), want at most %d", key, got, ok, max)
		}
	}
	// TxnOffsetCommit v3 carries the generation (KIP-447).
	if got, _ := v.LookupMaxKeyVersion(kmsg.TxnOffsetCommit.Int16()); got < 3 {
		t.Errorf("TxnOffsetCommit capped at v%d, below KIP-447's v3", got)
	}
	stable.EachMaxKeyVersion(func(k, max int16) {
		switch kmsg.Key(k) {
		case kmsg.EndTxn, kmsg.TxnOffsetCommit, kmsg.Produce:
			return
		}
		if got, ok := v.LookupMaxKeyVersion(k); !ok || got != max {
			t.Errorf("key %d: max %d (%v), want Stable's %d", k, got, ok, max)
		}
	})
}
