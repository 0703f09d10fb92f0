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
	fs := a.newFlags("produce", "weir produce TOPIC [--key-separator SEP] [--header key=value ...] [--partition N] [--acks all|1|0]",
		"Produces one record per line of stdin to TOPIC and reports the count on stderr.\n"+
			"With --key-separator, the text before the first SEP of a line is the record key.")
	sep := fs.String("key-separator", "", "split each line at the first `SEP` into key and value (default: no key)")
	var headers keyValues
	fs.Var(&headers, "header", "add header `key=value` to every record, repeatable")
	partition := fs.Int("partition", -1, "produce to partition `N` (default: partition by key hash, or spread keyless records)")
	acks := fs.String("acks", "all", "acknowledgements to wait for: all (every in-sync replica), 1 (the leader) or 0 (none)")
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
	stopProgress := func() {}
	if isTerminal(a.stderr) && !isTerminal(a.stdin) { // a long pipe, watched by a person
		stopProgress = showProgress(a.stderr, time.Second, "produced", p.count)
	}
	n, err := p.run(ctx, a.stdin)
	stopProgress()
	fmt.Fprintf(a.stderr, "produced %s\n", plural(n, "record"))
	if err != nil {
		return produceErr(topic, err)
	}
	return nil
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
