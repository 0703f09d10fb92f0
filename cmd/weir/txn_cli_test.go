package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnState returns the fields of id's row in `weir txn describe id`, or an
// error describing what the command printed.
func txnState(t *testing.T, addr, id string) ([]string, error) {
	t.Helper()
	r := weir(t, addr, "", "txn", "describe", id)
	if f := row(r.stdout, id); r.code == 0 && len(f) == 7 {
		return f, nil
	}
	return nil, fmt.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// waitTxnState waits until id's transaction is in state and returns its row.
func waitTxnState(t *testing.T, addr, id, state string) []string {
	t.Helper()
	var got []string
	waitFor(t, fmt.Sprintf("transaction %s to be %s", id, state), func() error {
		f, err := txnState(t, addr, id)
		if err != nil {
			return err
		}
		got = f
		return check(f[1] == state, strings.Join(f, " "))
	})
	return got
}

func lines(s ...string) string {
	if len(s) == 0 {
		return ""
	}
	return strings.Join(s, "\n") + "\n"
}

func TestTxnProduceCommitsAtEOF(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "orders", "--partitions", "1")

	r := mustWeir(t, addr, "a\nb\nc\n", "produce", "orders", "--transactional-id", "cli-txn", "--transaction-timeout", "30s")
	if want := "produced 3 records in transaction cli-txn, committed\n"; r.stderr != want {
		t.Errorf("produce stderr = %q, want %q", r.stderr, want)
	}
	r = mustWeir(t, addr, "", "consume", "orders", "--isolation", "read_committed", "--from-beginning", "--max", "3")
	if want := lines("a", "b", "c"); r.stdout != want {
		t.Errorf("read_committed consume printed %q, want %q", r.stdout, want)
	}

	f := waitTxnState(t, addr, "cli-txn", "CompleteCommit")
	if f[2] == "-" || f[3] == "?" || f[4] != "30s" {
		t.Errorf("describe row %q, want a producer id, an epoch and timeout 30s", f)
	}
	r = mustWeir(t, addr, "", "txn", "list")
	if row(r.stdout, "TRANSACTIONAL-ID", "STATE", "PRODUCER-ID", "EPOCH", "TIMEOUT", "START", "PARTITIONS") == nil {
		t.Errorf("txn list lacks its header:\n%s", r.stdout)
	}
	if l := row(r.stdout, "cli-txn"); !equal(l, f) {
		t.Errorf("txn list row %q, describe row %q", l, f)
	}
	if r := mustWeir(t, addr, "", "txn", "list", "--state", "ongoing"); r.stdout != "no transactions\n" {
		t.Errorf("txn list --state ongoing printed %q", r.stdout)
	}

	// A failure aborts the transaction and fails the command.
	r = weir(t, addr, "x\n", "produce", "missing", "--transactional-id", "cli-missing")
	wantFail(t, r, 1, `topic "missing" does not exist`)
	if !strings.Contains(r.stderr, "aborted transaction cli-missing: 0 records discarded\n") {
		t.Errorf("failed produce stderr %q does not report the abort", r.stderr)
	}

	wantFail(t, weir(t, addr, "", "consume", "orders", "--isolation", "committed"), 2, "--isolation must be read_uncommitted or read_committed")
	wantFail(t, weir(t, addr, "x\n", "produce", "orders", "--transaction-timeout", "5s"), 2, "--transaction-timeout needs --transactional-id")
	wantFail(t, weir(t, addr, "x\n", "produce", "orders", "--transactional-id", "t", "--acks", "1"), 2, "--transactional-id needs --acks all")
	wantFail(t, weir(t, addr, "x\n", "produce", "orders", "--transactional-id", "t", "--transaction-timeout", "0s"), 2, "--transaction-timeout must be between")
	wantFail(t, weir(t, addr, "", "txn", "list", "--state", "Done"), 2, `unknown --state "Done"`)
	wantFail(t, weir(t, addr, "", "txn", "describe"), 2, "missing ID")
	wantFail(t, weir(t, addr, "", "txn", "frobnicate"), 2, `unknown command "frobnicate"`)
}

func TestTxnIsolationHidesOpenTransaction(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "ledger", "--partitions", "1")
	mustWeir(t, addr, "c1\nc2\n", "produce", "ledger", "--transactional-id", "cli-txn")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("open-txn"), kgo.DefaultProduceTopic("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	produceInTxn := func(values ...string) {
		t.Helper()
		if err := open.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := open.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("producing %s in open-txn: %v", v, err)
			}
		}
	}
	produceInTxn("u1", "u2")
	mustWeir(t, addr, "c3\n", "produce", "ledger") // not transactional, after the open transaction

	all := lines("c1", "c2", "u1", "u2", "c3")
	for _, iso := range [][]string{{"--isolation", "read_uncommitted"}, nil} { // read_uncommitted is the default
		r := mustWeir(t, addr, "", append([]string{"consume", "ledger", "--from-beginning", "--max", "5"}, iso...)...)
		if r.stdout != all {
			t.Errorf("consume %q printed %q, want %q", iso, r.stdout, all)
		}
	}
	// read_committed stops at the open transaction, so c3 is held back too.
	// Absence can only be shown by waiting: --timeout, as a person would.
	r := mustWeir(t, addr, "", "consume", "ledger", "--isolation", "read_committed", "--from-beginning", "--max", "5", "--timeout", "3s")
	if want := lines("c1", "c2"); r.stdout != want {
		t.Errorf("read_committed with open-txn open printed %q, want %q", r.stdout, want)
	}

	f := waitTxnState(t, addr, "open-txn", "Ongoing")
	if f[5] == "-" || f[6] != "ledger[0]" {
		t.Errorf("ongoing describe row %q, want a start time and partition ledger[0]", f)
	}
	r = mustWeir(t, addr, "", "txn", "list")
	if l := row(r.stdout, "open-txn"); len(l) != 7 || l[1] != "Ongoing" || l[6] != "ledger[0]" {
		t.Errorf("txn list row for open-txn %q:\n%s", l, r.stdout)
	}
	if l := row(r.stdout, "cli-txn"); len(l) != 7 || (l[1] != "CompleteCommit" && l[1] != "PrepareCommit") {
		t.Errorf("txn list row for cli-txn %q:\n%s", l, r.stdout)
	}
	r = mustWeir(t, addr, "", "txn", "list", "--state", "Ongoing")
	if row(r.stdout, "open-txn") == nil || row(r.stdout, "cli-txn") != nil {
		t.Errorf("txn list --state Ongoing:\n%s", r.stdout)
	}
	r = weir(t, addr, "", "txn", "describe", "open-txn", "nope")
	wantFail(t, r, 1, "1 transactional id could not be described")
	if row(r.stdout, "open-txn", "Ongoing") == nil || !strings.Contains(r.stdout, "nope: no such transactional id") {
		t.Errorf("describe of open-txn and nope printed:\n%s", r.stdout)
	}

	// Committed, the transaction's records and those behind it appear.
	if err := open.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitTxnState(t, addr, "open-txn", "CompleteCommit")
	r = mustWeir(t, addr, "", "consume", "ledger", "--isolation", "read_committed", "--from-beginning", "--max", "5")
	if r.stdout != all {
		t.Errorf("read_committed after the commit printed %q, want %q", r.stdout, all)
	}

	// Aborted, they never do; c4 behind them shows the consumer got past.
	produceInTxn("u3")
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	waitTxnState(t, addr, "open-txn", "CompleteAbort")
	mustWeir(t, addr, "c4\n", "produce", "ledger")
	r = mustWeir(t, addr, "", "consume", "ledger", "--isolation", "read_committed", "--from-beginning", "--max", "6")
	if want := all + lines("c4"); r.stdout != want {
		t.Errorf("read_committed after the abort printed %q, want %q", r.stdout, want)
	}
	r = mustWeir(t, addr, "", "consume", "ledger", "--from-beginning", "--max", "7")
	if want := all + lines("u3", "c4"); r.stdout != want {
		t.Errorf("read_uncommitted after the abort printed %q, want %q", r.stdout, want)
	}
	r = mustWeir(t, addr, "", "txn", "list", "--state", "CompleteAbort")
	if l := row(r.stdout, "open-txn"); len(l) != 7 || l[1] != "CompleteAbort" {
		t.Errorf("txn list --state CompleteAbort:\n%s", r.stdout)
	}
}

func TestTxnProduceAbortsOnInterrupt(t *testing.T) {
	t.Parallel()
	addr := startTestBroker(t)
	mustWeir(t, addr, "", "topic", "create", "events", "--partitions", "1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdin, feed := io.Pipe()
	defer feed.Close()
	done := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"--brokers", addr, "produce", "events", "--transactional-id", "cli-int"}, stdin, &stdout, &stderr)
		done <- result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}()
	if _, err := io.WriteString(feed, "x1\nx2\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cli-int to write to events", func() error {
		f, err := txnState(t, addr, "cli-int")
		if err != nil {
			return err
		}
		return check(f[1] == "Ongoing" && f[6] == "events[0]", strings.Join(f, " "))
	})
	cancel()
	r := <-done
	if r.code != 130 || !strings.Contains(r.stderr, "aborted transaction cli-int: ") || !strings.Contains(r.stderr, "weir: interrupted\n") {
		t.Errorf("interrupted produce: exit %d, stderr %q; want 130, the abort reported", r.code, r.stderr)
	}
	waitTxnState(t, addr, "cli-int", "CompleteAbort")

	mustWeir(t, addr, "after\n", "produce", "events")
	r = mustWeir(t, addr, "", "consume", "events", "--isolation", "read_committed", "--from-beginning", "--max", "1")
	if r.stdout != "after\n" {
		t.Errorf("read_committed after the aborted produce printed %q, want only %q", r.stdout, "after\n")
	}
}
