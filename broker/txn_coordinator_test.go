package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnClient is a transactional producer for topic.
func (top topology) txnClient(t *testing.T, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return top.client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("txc")}, opts...)...)
}

// produceTxn runs one transaction of vals and ends it.
func produceTxn(t *testing.T, ctx context.Context, cl *kgo.Client, commit bool, vals ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

func TestTransactions(t *testing.T) {
	onEachTopology(t, func(t *testing.T, top topology) {
		ctx := testCtx(t)
		cl := top.client(t)
		mustCreate(t, ctx, cl, "txc", 1)
		plain := top.client(t, kgo.DefaultProduceTopic("txc"))

		t.Run("commit and abort", func(t *testing.T) {
			p := top.txnClient(t, "t-commit")
			produceTxn(t, ctx, p, true, "c1", "c2")
			produceTxn(t, ctx, p, false, "a1")
			produceTxn(t, ctx, p, true, "c3")
			produceSyncOne(t, ctx, plain, "end")
			if got := readValues(t, ctx, top.seeds, "txc", true, "end"); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
				t.Fatalf("read_committed saw %q", got)
			}
			if got := readValues(t, ctx, top.seeds, "txc", false, "end"); !slices.Equal(got, []string{"c1", "c2", "a1", "c3"}) {
				t.Fatalf("read_uncommitted saw %q", got)
			}
			descs := describeTxns(t, ctx, cl, "t-commit")
			if s := descs["t-commit"]; s.State != "CompleteCommit" {
				t.Fatalf("DescribeTransactions: %+v", s)
			}
		})

		t.Run("zombie fenced", func(t *testing.T) {
			zombie := top.txnClient(t, "t-zombie")
			if err := zombie.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// A new producer with the same id bumps the epoch, aborting the
			// zombie's open transaction.
			fresh := top.txnClient(t, "t-zombie")
			produceTxn(t, ctx, fresh, true, "fresh")
			err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie2")).FirstErr()
			if err == nil {
				err = zombie.EndTransaction(ctx, kgo.TryCommit)
			}
			if !fenced(err) {
				t.Fatalf("zombie kept writing: %v", err)
			}
		})

		t.Run("timeout aborts", func(t *testing.T) {
			p := top.txnClient(t, "t-timeout", kgo.TransactionTimeout(time.Second))
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, kgo.StringRecord("expired")).FirstErr(); err != nil {
				t.Fatal(err)
			}
			waitTxnState(t, ctx, cl, "t-timeout", "CompleteAbort")
			if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
				t.Fatal("commit after the coordinator aborted the transaction succeeded")
			}
		})

		produceSyncOne(t, ctx, plain, "end2")
		got := readValues(t, ctx, top.seeds, "txc", true, "end2")
		for _, bad := range []string{"a1", "zombie", "zombie2", "expired"} {
			if slices.Contains(got, bad) {
				t.Fatalf("read_committed saw %q from an aborted transaction: %q", bad, got)
			}
		}
		if !slices.Contains(got, "fresh") {
			t.Fatalf("read_committed missed the fenced id's new transaction: %q", got)
		}
	})
}

func TestDescribeProducersShowsOpenTransaction(t *testing.T) {
	onEachTopology(t, func(t *testing.T, top topology) {
		ctx := testCtx(t)
		cl := top.client(t)
		mustCreate(t, ctx, cl, "txc", 1)
		p := top.txnClient(t, "t-open")
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, kgo.StringRecord("open")).FirstErr(); err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrDescribeProducersRequest()
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = "txc", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leaderOf(t, ctx, cl, "txc"))))
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil || len(sp.ActiveProducers) != 1 || sp.ActiveProducers[0].CurrentTxnStartOffset != 0 {
			t.Fatalf("DescribeProducers: %v %+v", err, sp.ActiveProducers)
		}
		if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
	})
}

func produceSyncOne(t *testing.T, ctx context.Context, cl *kgo.Client, v string) {
	t.Helper()
	if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

func describeTxns(t *testing.T, ctx context.Context, cl *kgo.Client, ids ...string) map[string]kadm.DescribedTransaction {
	t.Helper()
	d, err := kadm.NewClient(cl).DescribeTransactions(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitTxnState polls DescribeTransactions until id is in state.
func waitTxnState(t *testing.T, ctx context.Context, cl *kgo.Client, id, state string) {
	t.Helper()
	var last string
	for ctx.Err() == nil {
		d, err := kadm.NewClient(cl).DescribeTransactions(ctx, id)
		if err == nil {
			if s, ok := d[id]; ok && s.Err == nil {
				if s.State == state {
					return
				}
				last = s.State
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s never reached %s (last %s)", id, state, fmt.Sprint(last))
}
