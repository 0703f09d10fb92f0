package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchProducer is a client library's producer as weir bench drives it.
// Every record carries its due time; the producer passes it to the ack
// function it was made with once the record is acknowledged.
type benchProducer interface {
	// send produces one record; it may block while the client's buffers
	// are full. It is called from one goroutine at a time.
	send(ctx context.Context, key, value []byte, due time.Time)
	// flush waits until every record sent is acknowledged or failed.
	flush(ctx context.Context) error
	// failed returns the first failure to produce a record, if any.
	failed() error
	close()
}

// benchConsumer is a client library's consumer reading a topic from its start.
type benchConsumer interface {
	// poll waits for records and calls fn with the value of each.
	poll(ctx context.Context, fn func(value []byte)) error
	close()
}

// benchClient makes the producers and consumers of one client library.
type benchClient struct {
	producer func(r *benchRun, ctx context.Context, ack func(due time.Time)) (benchProducer, error)
	consumer func(r *benchRun, ctx context.Context) (benchConsumer, error)
}

var benchClients = map[string]benchClient{
	"franz-go": {newKgoProducer, newKgoConsumer},
	"sarama":   {newSaramaProducer, newSaramaConsumer},
}

func (r *benchRun) producer(ctx context.Context, ack func(due time.Time)) (benchProducer, error) {
	return benchClients[r.client].producer(r, ctx, ack)
}

func (r *benchRun) consumer(ctx context.Context) (benchConsumer, error) {
	return benchClients[r.client].consumer(r, ctx)
}

// firstErr keeps the first of concurrent errors. get is called once per
// record sent, so it does not lock until there is an error.
type firstErr struct {
	mu  sync.Mutex
	err error
	has atomic.Bool
}

func (f *firstErr) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
		f.has.Store(true)
	}
	f.mu.Unlock()
}

func (f *firstErr) get() error {
	if !f.has.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// franz-go

type kgoProducer struct {
	cl      *kgo.Client
	topic   string
	promise func(*kgo.Record, error)
	err     firstErr
	recs    []kgo.Record // records to hand out: allocated in blocks, not one by one
	// txnEvery, when positive, commits a transaction that often; txnStart
	// is when the open one began.
	txnEvery time.Duration
	txnStart time.Time
}

func newKgoProducer(r *benchRun, ctx context.Context, ack func(due time.Time)) (benchProducer, error) {
	opts, err := produceOpts(r.acks, -1)
	if err != nil {
		return nil, err
	}
	codec := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(),
		"zstd": kgo.ZstdCompression(), "gzip": kgo.GzipCompression(),
	}[r.compression]
	opts = append(opts, kgo.ProducerLinger(r.linger), kgo.ProducerBatchCompression(codec))
	if r.txnInterval > 0 {
		opts = append(opts, kgo.TransactionalID(r.topic+"-txn"))
	}
	cl, err := r.a.client(ctx, opts...)
	if err != nil {
		return nil, err
	}
	p := &kgoProducer{cl: cl, topic: r.topic, txnEvery: r.txnInterval}
	p.promise = func(rec *kgo.Record, err error) {
		if err != nil {
			p.err.set(err)
			return
		}
		ack(rec.Timestamp)
	}
	return p, nil
}

func (p *kgoProducer) send(ctx context.Context, key, value []byte, due time.Time) {
	// The record's timestamp is its due time, monotonic clock reading
	// included, so the promise can measure from it. send runs on one
	// goroutine, so it can take records from a block without locking.
	if len(p.recs) == 0 {
		p.recs = make([]kgo.Record, 256)
	}
	rec := &p.recs[0] // zero: a block is used once
	p.recs = p.recs[1:]
	rec.Topic, rec.Key, rec.Value, rec.Timestamp = p.topic, key, value, due
	if p.txnEvery > 0 && !p.nextTxn(ctx) {
		return
	}
	p.cl.Produce(ctx, rec, p.promise)
}

// nextTxn begins the first transaction, and commits the open one and
// begins another once txnEvery has passed: as a transactional producer
// does, it waits for the transaction's records before committing.
func (p *kgoProducer) nextTxn(ctx context.Context) bool {
	if !p.txnStart.IsZero() && time.Since(p.txnStart) < p.txnEvery {
		return true
	}
	if !p.txnStart.IsZero() {
		if err := p.commit(ctx); err != nil {
			p.err.set(err)
			return false
		}
	}
	if err := p.cl.BeginTransaction(); err != nil {
		p.err.set(err)
		return false
	}
	p.txnStart = time.Now()
	return true
}

func (p *kgoProducer) commit(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	return p.cl.EndTransaction(ctx, kgo.TryCommit)
}

// flush waits for every record; with transactions it commits the open one,
// and the next send begins another.
func (p *kgoProducer) flush(ctx context.Context) error {
	if p.txnEvery > 0 && !p.txnStart.IsZero() {
		p.txnStart = time.Time{}
		return p.commit(ctx)
	}
	return p.cl.Flush(ctx)
}
func (p *kgoProducer) failed() error { return p.err.get() }
func (p *kgoProducer) close()        { p.cl.Close() }

type kgoConsumer struct {
	cl    *kgo.Client
	topic string
}

func newKgoConsumer(r *benchRun, ctx context.Context) (benchConsumer, error) {
	cl, err := r.a.client(ctx, kgo.ConsumeTopics(r.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	return &kgoConsumer{cl: cl, topic: r.topic}, nil
}

func (c *kgoConsumer) poll(ctx context.Context, fn func([]byte)) error {
	fs := c.cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fs.Err0(); err != nil {
		return fmt.Errorf("consuming %q: %w", c.topic, err)
	}
	fs.EachRecord(func(rec *kgo.Record) { fn(rec.Value) })
	return nil
}

func (c *kgoConsumer) close() { c.cl.Close() }

// sarama

// saramaVersion is the protocol version sarama speaks; it is the lowest that
// has every codec (zstd needs 2.1).
var saramaVersion = sarama.V2_1_0_0

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = saramaVersion
	cfg.ClientID = clientID
	return cfg
}

type saramaProducer struct {
	p     sarama.AsyncProducer
	topic string
	wg    sync.WaitGroup // records sent and not yet acknowledged or failed
	err   firstErr
	done  sync.WaitGroup // the goroutines reading successes and errors
}

func newSaramaProducer(r *benchRun, ctx context.Context, ack func(due time.Time)) (benchProducer, error) {
	cfg := saramaConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Flush.Frequency = r.linger
	cfg.Producer.RequiredAcks = map[string]sarama.RequiredAcks{
		"all": sarama.WaitForAll, "-1": sarama.WaitForAll, "1": sarama.WaitForLocal, "0": sarama.NoResponse,
	}[r.acks]
	cfg.Producer.Compression = map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4,
		"zstd": sarama.CompressionZSTD, "gzip": sarama.CompressionGZIP,
	}[r.compression]
	seeds := r.a.seeds()
	ap, err := sarama.NewAsyncProducer(seeds, cfg)
	if err != nil {
		return nil, unreachable(seeds, err)
	}
	p := &saramaProducer{p: ap, topic: r.topic}
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		for m := range ap.Successes() {
			ack(m.Metadata.(time.Time))
			p.wg.Done()
		}
	}()
	go func() {
		defer p.done.Done()
		for e := range ap.Errors() {
			p.err.set(e.Err)
			p.wg.Done()
		}
	}()
	return p, nil
}

func (p *saramaProducer) send(ctx context.Context, key, value []byte, due time.Time) {
	m := &sarama.ProducerMessage{Topic: p.topic, Value: sarama.ByteEncoder(value), Timestamp: due, Metadata: due}
	if key != nil {
		m.Key = sarama.ByteEncoder(key)
	}
	p.wg.Add(1)
	select {
	case p.p.Input() <- m:
	case <-ctx.Done():
		p.wg.Done()
	}
}

func (p *saramaProducer) flush(ctx context.Context) error {
	flushed := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(flushed)
	}()
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *saramaProducer) failed() error { return p.err.get() }

func (p *saramaProducer) close() {
	p.p.AsyncClose()
	p.done.Wait()
}

type saramaConsumer struct {
	c     sarama.Consumer
	pcs   []sarama.PartitionConsumer
	msgs  chan *sarama.ConsumerMessage // from every partition
	errs  chan error
	topic string
	wg    sync.WaitGroup // the goroutines merging the partitions
}

func newSaramaConsumer(r *benchRun, ctx context.Context) (benchConsumer, error) {
	cfg := saramaConfig()
	cfg.Consumer.Return.Errors = true
	seeds := r.a.seeds()
	c, err := sarama.NewConsumer(seeds, cfg)
	if err != nil {
		return nil, unreachable(seeds, err)
	}
	sc := &saramaConsumer{c: c, topic: r.topic, msgs: make(chan *sarama.ConsumerMessage, 4096), errs: make(chan error, 1)}
	parts, err := c.Partitions(r.topic)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("consuming %q: %w", r.topic, err)
	}
	for _, part := range parts {
		pc, err := c.ConsumePartition(r.topic, part, sarama.OffsetOldest)
		if err != nil {
			sc.close()
			return nil, fmt.Errorf("consuming %q partition %d: %w", r.topic, part, err)
		}
		sc.pcs = append(sc.pcs, pc)
		sc.wg.Add(2)
		go func() {
			defer sc.wg.Done()
			for m := range pc.Messages() {
				sc.msgs <- m
			}
		}()
		go func() {
			defer sc.wg.Done()
			for err := range pc.Errors() {
				select {
				case sc.errs <- err:
				default:
				}
			}
		}()
	}
	return sc, nil
}

func (c *saramaConsumer) poll(ctx context.Context, fn func([]byte)) error {
	select {
	case m := <-c.msgs:
		fn(m.Value)
	case err := <-c.errs:
		return fmt.Errorf("consuming %q: %w", c.topic, err)
	case <-ctx.Done():
		return ctx.Err()
	}
	for range cap(c.msgs) { // what else has arrived
		select {
		case m := <-c.msgs:
			fn(m.Value)
		default:
			return nil
		}
	}
	return nil
}

func (c *saramaConsumer) close() {
	for _, pc := range c.pcs {
		pc.AsyncClose()
	}
	go func() { // the mergers may be blocked on a full msgs
		for range c.msgs {
		}
	}()
	c.wg.Wait()
	close(c.msgs)
	c.c.Close()
}
