package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var txnCommands = []command{
	{"list", "list transactional ids and the state of their transactions", (*app).txnList},
	{"describe", "show the transactions of transactional ids", (*app).txnDescribe},
}

func (a *app) txnCmd(ctx context.Context, w io.Writer, args []string) error {
	return a.dispatch(ctx, w, "txn", txnCommands, args)
}

// txnStates are the transaction states as Kafka names them.
var txnStates = []string{
	"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
}

func (a *app) txnList(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("txn list", "weir txn list [--state STATE ...]",
		"Lists the transactional ids every broker coordinates, with the state, producer id and epoch,\n"+
			"timeout, start time and partitions of their current or last transaction.\n"+
			"States: "+strings.Join(txnStates, ", ")+".")
	var states strs
	fs.Var(&states, "state", "list only transactions in `STATE`, repeatable (default: every state)")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := fs.positional(pos); err != nil {
		return err
	}
	filter := make([]string, len(states))
	for i, s := range states {
		j := slices.IndexFunc(txnStates, func(t string) bool { return strings.EqualFold(s, t) })
		if j < 0 {
			return fs.usageErr("unknown --state %q (want one of %s)", s, strings.Join(txnStates, ", "))
		}
		filter[i] = txnStates[j]
	}

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	listed, listErr := adm.ListTransactions(ctx, nil, filter)
	if listErr != nil && !isShardErrs(listErr) {
		return fmt.Errorf("listing transactions: %w", listErr)
	}
	var described kadm.DescribedTransactions
	var descErr error
	if len(listed) > 0 {
		described, descErr = adm.DescribeTransactions(ctx, listed.TransactionalIDs()...)
		if descErr != nil && !isShardErrs(descErr) {
			return fmt.Errorf("describing transactions: %w", descErr)
		}
	}
	if len(listed) == 0 && listErr == nil {
		fmt.Fprintln(w, "no transactions")
		return nil
	}

	rows := make([]txnRow, 0, len(listed))
	for _, l := range listed.Sorted() {
		r := txnRow{id: l.TxnID, state: l.State, pid: l.ProducerID, epoch: -1, timeoutMs: -1, startMs: -1}
		if d, ok := described[l.TxnID]; ok && d.Err == nil {
			r = describedRow(d) // the newer answer, so that one row is consistent
		}
		rows = append(rows, r)
	}
	if len(rows) > 0 {
		if err := printTxnRows(w, rows); err != nil {
			return err
		}
	}
	// A failed describe leaves the listing's columns; a failed broker
	// leaves its transactions out, which must not pass silently.
	if descErr != nil {
		fmt.Fprintf(a.stderr, "weir: warning: describing transactions: %v\n", descErr)
	}
	if listErr != nil {
		return fmt.Errorf("listing transactions: %w", shardErrsText(listErr))
	}
	return nil
}

func (a *app) txnDescribe(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("txn describe", "weir txn describe ID [ID ...]",
		"Shows the state, producer id and epoch, timeout, start time and partitions of the current\n"+
			"or last transaction of each transactional ID; IDs that cannot be described are listed below.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fs.usageErr("missing ID")
	}
	ids := slices.Compact(slices.Sorted(slices.Values(pos)))

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	described, err := adm.DescribeTransactions(ctx, ids...)
	failedShards := map[string]error{}
	if se, ok := errors.AsType[*kadm.ShardErrors](err); ok {
		for _, e := range se.Errs {
			if req, ok := e.Req.(*kmsg.DescribeTransactionsRequest); ok {
				for _, id := range req.TransactionalIDs {
					failedShards[id] = e.Err
				}
			}
		}
	} else if err != nil {
		return fmt.Errorf("describing transactions: %w", err)
	}

	var rows []txnRow
	var failed []string
	for _, id := range ids {
		d, ok := described[id]
		switch {
		case ok && d.Err == nil:
			rows = append(rows, describedRow(d))
		case ok:
			failed = append(failed, fmt.Sprintf("%s: %v", id, txnErr(d.Err)))
		case failedShards[id] != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", id, txnErr(failedShards[id])))
		default:
			failed = append(failed, fmt.Sprintf("%s: no broker answered for it", id))
		}
	}
	if len(rows) > 0 {
		if err := printTxnRows(w, rows); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		if len(rows) > 0 {
			fmt.Fprintln(w)
		}
		for _, f := range failed {
			fmt.Fprintln(w, f)
		}
		return fmt.Errorf("%s could not be described", plural(int64(len(failed)), "transactional id"))
	}
	return nil
}

// txnRow is one transactional id's line; negative numbers are unknown.
type txnRow struct {
	id, state  string
	pid        int64
	epoch      int16
	timeoutMs  int32
	startMs    int64
	partitions kadm.TopicsSet
}

func describedRow(d kadm.DescribedTransaction) txnRow {
	return txnRow{
		id: d.TxnID, state: d.State,
		pid: d.ProducerID, epoch: d.ProducerEpoch, timeoutMs: d.TimeoutMillis, startMs: d.StartTimestamp,
		partitions: d.Topics,
	}
}

func printTxnRows(w io.Writer, rows []txnRow) error {
	tw := newTable(w, "TRANSACTIONAL-ID", "STATE", "PRODUCER-ID", "EPOCH", "TIMEOUT", "START", "PARTITIONS")
	for _, r := range rows {
		epoch, timeout, start := "?", "?", "-"
		if r.epoch >= 0 {
			epoch = fmt.Sprint(r.epoch)
		}
		if r.timeoutMs >= 0 {
			timeout = (time.Duration(r.timeoutMs) * time.Millisecond).String()
		}
		if r.startMs >= 0 {
			start = time.UnixMilli(r.startMs).UTC().Format(timeLayout)
		}
		pid := "-"
		if r.pid >= 0 {
			pid = fmt.Sprint(r.pid)
		}
		tw.row(r.id, orDash(r.state), pid, epoch, timeout, start, topicsSet(r.partitions))
	}
	return tw.flush()
}

// topicsSet formats partitions as topic[0,1] topic2[3], "-" if none.
func topicsSet(s kadm.TopicsSet) string {
	var parts []string
	s.EachPartitions(func(t string, ps []int32) {
		slices.Sort(ps)
		parts = append(parts, t+"["+ids(ps)+"]")
	})
	if len(parts) == 0 {
		return "-"
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func txnErr(err error) error {
	if errors.Is(err, kerr.TransactionalIDNotFound) {
		return errors.New("no such transactional id (see `weir txn list`)")
	}
	return err
}

func isShardErrs(err error) bool {
	_, ok := errors.AsType[*kadm.ShardErrors](err)
	return ok
}

// shardErrsText names the brokers of a *kadm.ShardErrors and their errors.
func shardErrsText(err error) error {
	se, ok := errors.AsType[*kadm.ShardErrors](err)
	if !ok {
		return err
	}
	var b strings.Builder
	for i, e := range se.Errs {
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Broker.NodeID >= 0 {
			fmt.Fprintf(&b, "broker %d (%s:%d): ", e.Broker.NodeID, e.Broker.Host, e.Broker.Port)
		}
		b.WriteString(e.Err.Error())
	}
	return fmt.Errorf("%s failed: %s", plural(int64(len(se.Errs)), "broker"), b.String())
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
