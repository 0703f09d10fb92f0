package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func (a *app) produceCmd(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("produce", "weir produce TOPIC [--key-separator SEP] [--header key=value ...] [--partition N] [--acks all|1|0] [--transactional-id ID [--transaction-timeout D]]",
		"Produces one record per line of stdin to TOPIC and reports the count on stderr.\n"+
			"With --key-separator, the text before the first SEP of a line is the record key.\n"+
			"With --transactional-id, every record is produced in one transaction of ID, committed at the\n"+
			"end of stdin; on an error or an interrupt the transaction is aborted and the command fails.")
	sep := fs.String("key-separator", "", "split each line at the first `SEP` into key and value (default: no key)")
	var headers keyValues
	fs.Var(&headers, "header", "add header `key=value` to every record, repeatable")
	partition := fs.Int("partition", -1, "produce to partition `N` (default: partition by key hash, or spread keyless records)")
	acks := fs.String("acks", "all", "acknowledgements to wait for: all (every in-sync replica), 1 (the leader) or 0 (none)")
	txnID := fs.String("transactional-id", "", "produce every record in one transaction of transactional id `ID`, committed at the end of stdin")
	txnTimeout := fs.Duration("transaction-timeout", defaultTxnTimeout,
		"with --transactional-id, the broker aborts the transaction if it is not committed within `D`")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "TOPIC"); err != nil {
		return err
	}
	topic := pos[0]
	if *partition < -1 || *partition > math.MaxInt32 {
		return fs.usageErr("--partition must be at least 0, got %d", *partition)
	}
	opts, err := produceOpts(*acks, *partition)
	if err != nil {
		return fs.usageErr("%v", err)
	}
	if *txnID != "" {
		txnOpts, err := transactionOpts(*txnID, *acks, *txnTimeout)
		if err != nil {
			return fs.usageErr("%v", err)
		}
		opts = append(opts, txnOpts...)
	} else if flagGiven(fs, "transaction-timeout") {
		return fs.usageErr("--transaction-timeout needs --transactional-id")
	}

	cl, err := a.client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	p := &producer{
		cl:        cl,
		topic:     topic,
		sep:       []byte(*sep),
		partition: int32(*partition),
	}
	for _, h := range headers {
		p.headers = append(p.headers, kgo.RecordHeader{Key: h.key, Value: []byte(h.value)})
	}
	if *txnID != "" {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("beginning transaction %q: %w", *txnID, err)
		}
	}
	stopProgress := func() {}
	if isTerminal(a.stderr) && !isTerminal(a.stdin) { // a long pipe, watched by a person
		stopProgress = showProgress(a.stderr, time.Second, "produced", p.count)
	}
	n, err := p.run(ctx, a.stdin)
	stopProgress()
	if *txnID != "" {
		return a.endTransaction(ctx, cl, *txnID, topic, n, err)
	}
	fmt.Fprintf(a.stderr, "produced %s\n", plural(n, "record"))
	if err != nil {
		return produceErr(topic, err)
	}
	return nil
}

// defaultTxnTimeout is the Java producer's transaction.timeout.ms.
const defaultTxnTimeout = time.Minute

func transactionOpts(id, acks string, timeout time.Duration) ([]kgo.Opt, error) {
	if acks != "all" && acks != "-1" {
		return nil, fmt.Errorf("--transactional-id needs --acks all, got --acks %s", acks)
	}
	if timeout < time.Millisecond || timeout.Milliseconds() > math.MaxInt32 {
		return nil, fmt.Errorf("--transaction-timeout must be between 1ms and %v, got %v",
			time.Duration(math.MaxInt32)*time.Millisecond, timeout)
	}
	return []kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(timeout)}, nil
}

// endTransaction commits the transaction of the n records produced if
// producing succeeded (prodErr == nil) and aborts it otherwise, or if the
// commit fails. It reports the outcome on stderr.
func (a *app) endTransaction(ctx context.Context, cl *kgo.Client, id, topic string, n int64, prodErr error) error {
	// Ending must outlive an interrupt: an open transaction holds back
	// every read_committed consumer of its partitions until it times out.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reachTimeout)
	defer cancel()
	var err error
	if prodErr == nil {
		cerr := cl.EndTransaction(ectx, kgo.TryCommit)
		if cerr == nil {
			fmt.Fprintf(a.stderr, "produced %s in transaction %s, committed\n", plural(n, "record"), id)
			return nil
		}
		err = fmt.Errorf("committing transaction %q: %w", id, cerr)
	} else {
		err = produceErr(topic, prodErr)
	}

	// Records not yet sent must not outlive the transaction.
	aerr := cl.AbortBufferedRecords(ectx)
	if aerr == nil {
		aerr = cl.EndTransaction(ectx, kgo.TryAbort)
	}
	if aerr != nil {
		fmt.Fprintf(a.stderr, "weir: warning: aborting transaction %s: %v; the broker aborts it after --transaction-timeout\n", id, aerr)
	} else {
		fmt.Fprintf(a.stderr, "aborted transaction %s: %s discarded\n", id, plural(n, "record"))
	}
	if errors.Is(prodErr, context.Canceled) && ctx.Err() != nil {
		return ctx.Err() // interrupted: run says so
	}
	return err
}

func produceOpts(acks string, partition int) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.AllowAutoTopicCreation(),           // if the broker allows it
		kgo.RecordDeliveryTimeout(time.Minute), // fail rather than retry forever
	}
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks must be all, 1 or 0, got %q", acks)
	}
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return opts, nil
}

func produceErr(topic string, err error) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %q does not exist and the broker does not create topics automatically; "+
			"create it with `weir topic create %s`", topic, topic)
	}
	return fmt.Errorf("producing to %q: %w", topic, err)
}

// producer turns lines into records.
type producer struct {
	cl        *kgo.Client
	topic     string
	sep       []byte
	headers   []kgo.RecordHeader
	partition int32 // -1: let the partitioner choose

	mu       sync.Mutex
	acked    int64
	firstErr error
}

// run produces every line of r and waits for all of them to be acknowledged.
// It returns the number of records acknowledged and the first failure.
// On cancellation it stops reading, waits briefly for the records in flight
// and returns ctx's error.
func (p *producer) run(ctx context.Context, r io.Reader) (int64, error) {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() { readErr <- readLines(ctx, r, lines) }()

	var err error
read:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				err = <-readErr
				break read
			}
			p.cl.Produce(ctx, p.record(line), p.done)
		case <-ctx.Done():
			// The reader may be blocked on a terminal; do not wait for it.
			err = ctx.Err()
			break read
		}
	}

	fctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	if ferr := p.cl.Flush(fctx); ferr != nil && err == nil {
		err = ferr
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		err = p.firstErr
	}
	return p.acked, err
}

func (p *producer) count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

func (p *producer) record(line []byte) *kgo.Record {
	r := &kgo.Record{Topic: p.topic, Value: line, Headers: p.headers}
	if len(p.sep) > 0 {
		if k, v, ok := bytes.Cut(line, p.sep); ok {
			r.Key, r.Value = k, v
		}
	}
	if p.partition >= 0 {
		r.Partition = p.partition
	}
	return r
}

func (p *producer) done(_ *kgo.Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.acked++
	} else if p.firstErr == nil {
		p.firstErr = err
	}
}

// readLines sends each line of r, without its line ending, to lines, and
// closes lines at the end of r or when ctx is done.
func readLines(ctx context.Context, r io.Reader, lines chan<- []byte) error {
	defer close(lines)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			select {
			case lines <- line:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
}
