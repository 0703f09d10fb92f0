package interop_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersions are the two sarama configurations every scenario runs
// with. V2_0_0_0 is what goka pins: non-flexible request versions (Produce
// v6, Fetch v8, Metadata v6, JoinGroup v3, OffsetCommit v4, ...).
// sarama.MaxVersion makes sarama pick its newest version of every request,
// clamped by restrictApiVersion to the broker's advertised max, so it
// exercises the flexible (KIP-482) encodings at the top of each range the
// broker advertises.
var saramaVersions = []struct {
	name string
	v    sarama.KafkaVersion
}{
	{"V2_0_0_0", sarama.V2_0_0_0},
	{"MaxVersion", sarama.MaxVersion},
}

func TestSarama(t *testing.T) {
	t.Parallel()
	for _, sv := range saramaVersions {
		t.Run(sv.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, withPartitions(3))
			addr := b.Addr()
			t.Run("SyncProducer", func(t *testing.T) { saramaSyncProducer(t, addr, sv.v) })
			t.Run("AsyncProducer", func(t *testing.T) { saramaAsyncProducer(t, addr, sv.v) })
			t.Run("IdempotentProducer", func(t *testing.T) { saramaIdempotent(t, addr, sv.v) })
			t.Run("PartitionConsumerTail", func(t *testing.T) { saramaTail(t, addr, sv.v) })
			t.Run("ConsumerGroup", func(t *testing.T) { saramaConsumerGroup(t, addr, sv.v) })
			t.Run("ClusterAdmin", func(t *testing.T) { saramaAdmin(t, addr, sv.v) })
		})
	}
}

func saramaHeaders(hs []*sarama.RecordHeader) map[string]string {
	if len(hs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, h := range hs {
		m[string(h.Key)] = string(h.Value)
	}
	return m
}

func producerHeaders(m map[string]string) []sarama.RecordHeader {
	var hs []sarama.RecordHeader
	for k, v := range m {
		hs = append(hs, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	return hs
}

// saramaConsumeAll reads every partition of topic from the oldest offset up
// to the high watermarks hw with a sarama partition Consumer.
func saramaConsumeAll(ctx context.Context, t *testing.T, addr string, v sarama.KafkaVersion, topic string, hw map[int32]int64) []rec {
	t.Helper()
	cfg := saramaConfig(v)
	cfg.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	var out []rec
	for p, end := range hw {
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(%s, %d): %v", topic, p, err)
		}
		for {
			var m *sarama.ConsumerMessage
			select {
			case m = <-pc.Messages():
			case err := <-pc.Errors():
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			case <-ctx.Done():
				t.Fatalf("consume %s/%d: %v after %d records", topic, p, ctx.Err(), len(out))
			}
			out = append(out, rec{topic, m.Partition, m.Offset, string(m.Key), string(m.Value), saramaHeaders(m.Headers)})
			if m.Offset+1 >= end {
				break
			}
		}
		if hwm := pc.HighWaterMarkOffset(); hwm != end {
			t.Errorf("%s/%d: consumer high watermark %d, want %d", topic, p, hwm, end)
		}
		pc.AsyncClose()
		for range pc.Messages() {
		}
	}
	checkPartitionOrder(t, "partition consumer "+topic, out, true)
	return out
}

// rawBatches fetches (Fetch v4, record batches as stored) a partition's
// batches from offset 0.
func rawBatches(t *testing.T, client sarama.Client, topic string, p int32) []*sarama.RecordBatch {
	t.Helper()
	leader, err := client.Leader(topic, p)
	if err != nil {
		t.Fatalf("leader of %s/%d: %v", topic, p, err)
	}
	req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 10, MinBytes: 1, MaxBytes: 16 << 20}
	req.AddBlock(topic, p, 0, 16<<20, -1)
	resp, err := leader.Fetch(req)
	if err != nil {
		t.Fatalf("raw fetch %s/%d: %v", topic, p, err)
	}
	blk := resp.GetBlock(topic, p)
	if blk == nil || blk.Err != sarama.ErrNoError {
		t.Fatalf("raw fetch %s/%d: block %+v", topic, p, blk)
	}
	var out []*sarama.RecordBatch
	for _, rs := range blk.RecordsSet {
		if rs.RecordBatch == nil {
			t.Fatalf("raw fetch %s/%d: legacy message set returned to Fetch v4", topic, p)
		}
		if !rs.RecordBatch.PartialTrailingRecord {
			out = append(out, rs.RecordBatch)
		}
	}
	return out
}

func saramaSyncProducer(t *testing.T, addr string, v sarama.KafkaVersion) {
	ctx := testCtx(t, 60*time.Second)
	topic := "sarama-sync-" + v.String()
	cfg := saramaConfig(v)
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer prod.Close()

	const n = 30
	var want []rec
	msg := func(i int) *sarama.ProducerMessage {
		h := map[string]string{"seq": strconv.Itoa(i), "src": "sarama-sync"}
		return &sarama.ProducerMessage{
			Topic:     topic,
			Partition: int32(i % 3),
			Key:       sarama.StringEncoder(fmt.Sprintf("k%02d", i)),
			Value:     sarama.StringEncoder(fmt.Sprintf("value-%02d", i)),
			Headers:   producerHeaders(h),
		}
	}
	expect := func(i int, p int32, off int64) {
		if p != int32(i%3) || off != int64(i/3) {
			t.Errorf("message %d: stored at %d@%d, want %d@%d", i, p, off, i%3, i/3)
		}
		want = append(want, rec{topic, p, off, fmt.Sprintf("k%02d", i), fmt.Sprintf("value-%02d", i),
			map[string]string{"seq": strconv.Itoa(i), "src": "sarama-sync"}})
	}
	// One at a time (the topic is auto-created by the first Metadata) ...
	for i := 0; i < n/2; i++ {
		p, off, err := prod.SendMessage(msg(i))
		if err != nil {
			t.Fatalf("SendMessage %d: %v", i, err)
		}
		expect(i, p, off)
	}
	// ... then as one batch.
	var batch []*sarama.ProducerMessage
	for i := n / 2; i < n; i++ {
		batch = append(batch, msg(i))
	}
	if err := prod.SendMessages(batch); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	for j, m := range batch {
		expect(n/2+j, m.Partition, m.Offset)
	}

	hw := highWatermarks(t, addr, topic)
	if want := map[int32]int64{0: 10, 1: 10, 2: 10}; !sameOffsets(hw, want) {
		t.Fatalf("high watermarks %s, want %s", fmtOffsets(hw), fmtOffsets(want))
	}
	got := saramaConsumeAll(ctx, t, addr, v, topic, hw)
	checkRecs(t, "sync producer round trip", got, want)
}

func saramaAsyncProducer(t *testing.T, addr string, v sarama.KafkaVersion) {
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			if codec == sarama.CompressionZSTD && !v.IsAtLeast(sarama.V2_1_0_0) {
				// zstd needs Produce v7 / Fetch v10, i.e. Kafka 2.1:
				// sarama's config validation refuses it below V2_1_0_0.
				t.Skip("sarama refuses zstd below V2_1_0_0 (Produce v7); nothing to test at this version")
			}
			ctx := testCtx(t, 60*time.Second)
			topic := fmt.Sprintf("sarama-async-%s-%s", codec, v)
			cfg := saramaConfig(v)
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Compression = codec
			cfg.Producer.Flush.Messages = 10 // several batches per partition
			cfg.Producer.Flush.Frequency = 5 * time.Millisecond
			prod, err := sarama.NewAsyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatalf("NewAsyncProducer: %v", err)
			}
			defer prod.Close()

			const n = 60
			go func() {
				for i := 0; i < n; i++ {
					prod.Input() <- &sarama.ProducerMessage{
						Topic:    topic,
						Key:      sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
						Value:    sarama.StringEncoder(fmt.Sprintf("compressible value %d %0100d", i, i)),
						Headers:  []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec.String())}},
						Metadata: i,
					}
				}
			}()
			var want []rec
			perPart := map[int32]map[int64]bool{}
			for len(want) < n {
				select {
				case m := <-prod.Successes():
					i := m.Metadata.(int)
					want = append(want, rec{topic, m.Partition, m.Offset, fmt.Sprintf("key-%d", i),
						fmt.Sprintf("compressible value %d %0100d", i, i), map[string]string{"codec": codec.String()}})
					if perPart[m.Partition] == nil {
						perPart[m.Partition] = map[int64]bool{}
					}
					if perPart[m.Partition][m.Offset] {
						t.Fatalf("two messages acknowledged at %d@%d", m.Partition, m.Offset)
					}
					perPart[m.Partition][m.Offset] = true
				case err := <-prod.Errors():
					t.Fatalf("produce: %v", err)
				case <-ctx.Done():
					t.Fatalf("produce: %v after %d acks", ctx.Err(), len(want))
				}
			}
			hw := highWatermarks(t, addr, topic)
			for p, offs := range perPart {
				if int64(len(offs)) != hw[p] {
					t.Errorf("partition %d: %d acked offsets but high watermark %d", p, len(offs), hw[p])
				}
			}
			got := saramaConsumeAll(ctx, t, addr, v, topic, hw)
			checkRecs(t, "async producer round trip", got, want)

			// The broker keeps batches as the producer compressed them
			// (compression.type=producer).
			client, err := sarama.NewClient([]string{addr}, saramaConfig(v))
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			defer client.Close()
			for p := range perPart {
				batches := rawBatches(t, client, topic, p)
				if len(batches) == 0 {
					t.Fatalf("partition %d: no batches fetched", p)
				}
				for _, b := range batches {
					if b.Codec != codec {
						t.Errorf("partition %d batch at %d: codec %s, want %s", p, b.FirstOffset, b.Codec, codec)
					}
				}
			}
		})
	}
}

// saramaTail consumes from the newest offset, sits idle through several
// empty long-poll fetches, then receives records produced later. Idle
// fetches must not surface any error.
func saramaTail(t *testing.T, addr string, v sarama.KafkaVersion) {
	ctx := testCtx(t, 30*time.Second)
	topic := "sarama-tail-" + v.String()
	createTopic(t, addr, topic, 2, nil)
	cfg := saramaConfig(v)
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	pcs := map[int32]sarama.PartitionConsumer{}
	for p := int32(0); p < 2; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("ConsumePartition: %v", err)
		}
		defer pc.AsyncClose()
		pcs[p] = pc
	}
	// Let a few empty fetches (MaxWaitTime 50ms) go by.
	idle := time.After(400 * time.Millisecond)
	for quiet := false; !quiet; {
		select {
		case err := <-pcs[0].Errors():
			t.Fatalf("partition 0: error while idle: %v", err)
		case err := <-pcs[1].Errors():
			t.Fatalf("partition 1: error while idle: %v", err)
		case m := <-pcs[0].Messages():
			t.Fatalf("partition 0: unexpected message %+v", m)
		case m := <-pcs[1].Messages():
			t.Fatalf("partition 1: unexpected message %+v", m)
		case <-idle:
			quiet = true
		}
	}
	pcfg := saramaConfig(v)
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{addr}, pcfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer prod.Close()
	for i := 0; i < 6; i++ {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(i % 2),
			Key: sarama.StringEncoder(fmt.Sprintf("t%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("tail%d", i))}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	for p, pc := range pcs {
		for i := int64(0); i < 3; i++ {
			select {
			case m := <-pc.Messages():
				k := int(p) + 2*int(i)
				if m.Offset != i || string(m.Key) != fmt.Sprintf("t%d", k) || string(m.Value) != fmt.Sprintf("tail%d", k) {
					t.Errorf("partition %d: got %d %s=%s, want %d t%d=tail%d", p, m.Offset, m.Key, m.Value, i, k, k)
				}
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-ctx.Done():
				t.Fatalf("partition %d: %v waiting for offset %d", p, ctx.Err(), i)
			}
		}
	}
}

func saramaIdempotent(t *testing.T, addr string, v sarama.KafkaVersion) {
	ctx := testCtx(t, 60*time.Second)
	topic := "sarama-idem-" + v.String()
	cfg := saramaConfig(v)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Flush.Messages = 7
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer (idempotent): %v", err)
	}
	defer prod.Close()

	const n = 45
	var msgs []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder(fmt.Sprintf("id-%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))})
	}
	// Two rounds, so the second reuses the producer id with later
	// sequence numbers.
	if err := prod.SendMessages(msgs[:20]); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	if err := prod.SendMessages(msgs[20:]); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	var want []rec
	for i, m := range msgs {
		want = append(want, rec{topic, m.Partition, m.Offset, fmt.Sprintf("id-%d", i), fmt.Sprintf("v%d", i), nil})
	}
	hw := highWatermarks(t, addr, topic)
	got := saramaConsumeAll(ctx, t, addr, v, topic, hw)
	checkRecs(t, "idempotent producer round trip", got, want)

	// Every stored batch carries the producer id the broker handed out
	// (InitProducerId), epoch 0, and sequences that continue from the
	// previous batch of the partition.
	client, err := sarama.NewClient([]string{addr}, saramaConfig(v))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	pid := int64(-2)
	for p, end := range hw {
		var seq int32
		for _, b := range rawBatches(t, client, topic, p) {
			if b.ProducerID < 0 || b.ProducerEpoch != 0 {
				t.Errorf("%d@%d: producer id %d epoch %d, want an assigned id, epoch 0", p, b.FirstOffset, b.ProducerID, b.ProducerEpoch)
			}
			if pid == -2 {
				pid = b.ProducerID
			} else if b.ProducerID != pid {
				t.Errorf("%d@%d: producer id %d, other batches have %d", p, b.FirstOffset, b.ProducerID, pid)
			}
			if b.FirstSequence != seq {
				t.Errorf("%d@%d: first sequence %d, want %d", p, b.FirstOffset, b.FirstSequence, seq)
			}
			if int64(seq) != b.FirstOffset {
				t.Errorf("%d: batch at offset %d, want %d", p, b.FirstOffset, seq)
			}
			seq += b.LastOffsetDelta + 1
		}
		if int64(seq) != end {
			t.Errorf("partition %d: batches hold %d records, high watermark %d", p, seq, end)
		}
	}
}

// groupState records what each consumer-group member was assigned and
// consumed.
type groupState struct {
	mu     sync.Mutex
	gen    map[int]int32    // member -> latest generation
	claims map[int][]int32  // member -> partitions of the latest generation
	got    map[string][]int // "partition@offset" -> members that consumed it
	recs   map[int][]rec    // member -> records, in consumption order
}

type groupHandler struct {
	member int
	st     *groupState
	topic  string
}

func (h groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	h.st.gen[h.member] = s.GenerationID()
	h.st.claims[h.member] = append([]int32(nil), s.Claims()[h.topic]...)
	return nil
}

func (h groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			h.st.mu.Lock()
			k := fmt.Sprintf("%d@%d", m.Partition, m.Offset)
			h.st.got[k] = append(h.st.got[k], h.member)
			h.st.recs[h.member] = append(h.st.recs[h.member], rec{m.Topic, m.Partition, m.Offset, string(m.Key), string(m.Value), saramaHeaders(m.Headers)})
			h.st.mu.Unlock()
			s.MarkMessage(m, "")
		case <-s.Context().Done():
			return nil
		}
	}
}

func saramaConsumerGroup(t *testing.T, addr string, v sarama.KafkaVersion) {
	ctx := testCtx(t, 90*time.Second)
	topic := "sarama-group-" + v.String()
	group := "sarama-group-" + v.String()
	const parts = 4
	createTopic(t, addr, topic, parts, nil)

	st := &groupState{gen: map[int]int32{}, claims: map[int][]int32{}, got: map[string][]int{}, recs: map[int][]rec{}}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var groups []sarama.ConsumerGroup
	defer func() {
		stop()
		for _, g := range groups {
			g.Close()
		}
		wg.Wait()
	}()
	for member := 0; member < 2; member++ {
		cfg := saramaConfig(v)
		cfg.ClientID = fmt.Sprintf("weir-interop-m%d", member)
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Interval = 50 * time.Millisecond
		cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
		cfg.Consumer.Group.Session.Timeout = 6 * time.Second
		cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
		cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
		cfg.Consumer.Return.Errors = true
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatalf("NewConsumerGroup: %v", err)
		}
		groups = append(groups, cg)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for err := range cg.Errors() {
				if runCtx.Err() == nil {
					// While the group runs, nothing should go wrong: every
					// error here is a protocol problem.
					t.Errorf("member %d: group error: %v", member, err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			h := groupHandler{member, st, topic}
			for runCtx.Err() == nil {
				if err := cg.Consume(runCtx, []string{topic}, h); err != nil {
					if errors.Is(err, sarama.ErrClosedConsumerGroup) {
						return
					}
					t.Logf("member %d: Consume: %v", member, err)
					select {
					case <-runCtx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}

	// Wait until both members are in the same generation and split the
	// partitions between them.
	eventually(ctx, t, "two-member assignment", func() error {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.gen) < 2 || st.gen[0] != st.gen[1] {
			return fmt.Errorf("generations %v, claims %v", st.gen, st.claims)
		}
		owner := map[int32]int{}
		for m, ps := range st.claims {
			if len(ps) == 0 {
				return fmt.Errorf("member %d has no partitions: %v", m, st.claims)
			}
			for _, p := range ps {
				if _, dup := owner[p]; dup {
					return fmt.Errorf("partition %d claimed twice: %v", p, st.claims)
				}
				owner[p] = m
			}
		}
		if len(owner) != parts {
			return fmt.Errorf("claims %v do not cover %d partitions", st.claims, parts)
		}
		return nil
	})
	st.mu.Lock()
	claims := map[int32]int{}
	for m, ps := range st.claims {
		for _, p := range ps {
			claims[p] = m
		}
	}
	t.Logf("generation %d, claims %v", st.gen[0], st.claims)
	st.mu.Unlock()

	// Produce after the group is stable, so every record has one owner.
	pcfg := saramaConfig(v)
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.RequiredAcks = sarama.WaitForAll
	prod, err := sarama.NewSyncProducer([]string{addr}, pcfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer prod.Close()
	const n = 80
	var msgs []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("g%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("gv%d", i)), Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(strconv.Itoa(i))}}})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	var want []rec
	for i, m := range msgs {
		want = append(want, rec{topic, m.Partition, m.Offset, fmt.Sprintf("g%d", i), fmt.Sprintf("gv%d", i), map[string]string{"i": strconv.Itoa(i)}})
	}
	hw := highWatermarks(t, addr, topic)
	for p := int32(0); p < parts; p++ {
		if hw[p] == 0 {
			t.Fatalf("hash partitioner left partition %d empty (%s); the test needs records on every partition", p, fmtOffsets(hw))
		}
	}

	eventually(ctx, t, "all records consumed", func() error {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.got) < n {
			return fmt.Errorf("%d of %d records consumed", len(st.got), n)
		}
		return nil
	})
	// Committed offsets reach the high watermarks, as seen by an
	// independent admin client.
	var committed map[int32]int64
	eventually(ctx, t, "committed offsets", func() error {
		committed = groupOffsets(t, addr, group, topic)
		if !sameOffsets(committed, hw) {
			return fmt.Errorf("committed %s, want %s", fmtOffsets(committed), fmtOffsets(hw))
		}
		return nil
	})

	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(v))
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer admin.Close()
	descs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		t.Fatalf("DescribeConsumerGroups: %v", err)
	}
	if len(descs) != 1 || descs[0].Err != sarama.ErrNoError || descs[0].State != "Stable" ||
		descs[0].ProtocolType != "consumer" || descs[0].Protocol != "range" || len(descs[0].Members) != 2 {
		t.Errorf("DescribeConsumerGroups = %+v, want one Stable consumer group (range) of 2 members", descs)
	}

	stop()
	for _, g := range groups {
		if err := g.Close(); err != nil {
			t.Errorf("close group: %v", err)
		}
	}
	groups = nil
	wg.Wait()

	st.mu.Lock()
	defer st.mu.Unlock()
	var all []rec
	for m, rs := range st.recs {
		checkPartitionOrder(t, fmt.Sprintf("member %d", m), rs, true)
		for _, r := range rs {
			if claims[r.Partition] != m {
				t.Errorf("member %d consumed %s, but partition %d belongs to member %d", m, r, r.Partition, claims[r.Partition])
			}
		}
		all = append(all, rs...)
	}
	for k, ms := range st.got {
		if len(ms) != 1 {
			t.Errorf("record %s consumed %d times (members %v)", k, len(ms), ms)
		}
	}
	checkRecs(t, "group consumption", all, want)
	if after := groupOffsets(t, addr, group, topic); !sameOffsets(after, hw) {
		t.Errorf("after members left, committed %s, want %s", fmtOffsets(after), fmtOffsets(hw))
	}
}

func saramaAdmin(t *testing.T, addr string, v sarama.KafkaVersion) {
	ctx := testCtx(t, 60*time.Second)
	topic := "sarama-admin-" + v.String()
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(v))
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer admin.Close()

	retention, cleanup := "3600000", "compact"
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 5, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention, "cleanup.policy": &cleanup}}, false)
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Errorf("CreateTopic of an existing topic: %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}
	err = admin.CreateTopic(topic+"-validate", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, true)
	if err != nil {
		t.Errorf("CreateTopic validateOnly: %v", err)
	}

	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("DescribeTopics: %v", err)
	}
	if len(md) != 1 || md[0].Err != sarama.ErrNoError || md[0].Name != topic || len(md[0].Partitions) != 5 {
		t.Fatalf("DescribeTopics = %+v, want %s with 5 partitions", md, topic)
	}
	seen := map[int32]bool{}
	for _, p := range md[0].Partitions {
		seen[p.ID] = true
		if p.Err != sarama.ErrNoError || p.Leader != 1 || len(p.Replicas) != 1 || p.Replicas[0] != 1 || len(p.Isr) != 1 || p.Isr[0] != 1 {
			t.Errorf("partition %+v: want leader 1, replicas [1], isr [1]", p)
		}
	}
	if len(seen) != 5 {
		t.Errorf("partition ids %v, want 0-4", seen)
	}

	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	cfgs := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		cfgs[e.Name] = e
	}
	for name, want := range map[string]string{"retention.ms": retention, "cleanup.policy": cleanup} {
		e, ok := cfgs[name]
		if !ok || e.Value != want || e.Default {
			t.Errorf("config %s = %+v (present %v), want %q, not default", name, e, ok, want)
		}
	}
	if e, ok := cfgs["max.message.bytes"]; !ok || e.Value != "1048588" {
		t.Errorf("config max.message.bytes = %+v (present %v), want the default 1048588", e, ok)
	}
	// Only the named key.
	one, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
	if err != nil || len(one) != 1 || one[0].Name != "retention.ms" || one[0].Value != retention {
		t.Errorf("DescribeConfig(retention.ms) = %+v, %v", one, err)
	}

	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 5 {
		t.Errorf("ListTopics[%s] = %+v (present %v), want 5 partitions", topic, d, ok)
	}
	if _, ok := topics[topic+"-validate"]; ok {
		t.Errorf("validateOnly CreateTopic created %s", topic+"-validate")
	}

	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	eventually(ctx, t, "topic deleted", func() error {
		md, err := admin.DescribeTopics([]string{topic})
		if err != nil {
			return err
		}
		if len(md) != 1 || md[0].Err != sarama.ErrUnknownTopicOrPartition {
			return fmt.Errorf("DescribeTopics after delete: %+v", md[0])
		}
		return nil
	})
	if err := admin.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("DeleteTopic of a deleted topic: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
}

// TestSaramaGroupJoinLatency checks brokertest's promise of no initial
// rebalance delay (GroupInitialRebalanceDelay 0): a lone member gets its
// assignment at once, not after Kafka's default 3 s.
func TestSaramaGroupJoinLatency(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx := testCtx(t, 30*time.Second)
	topic := "sarama-join-latency"
	createTopic(t, b.Addr(), topic, 1, nil)
	cfg := saramaConfig(sarama.V2_0_0_0)
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{b.Addr()}, "join-latency", cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	defer cg.Close()
	st := &groupState{gen: map[int]int32{}, claims: map[int][]int32{}, got: map[string][]int{}, recs: map[int][]rec{}}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- cg.Consume(runCtx, []string{topic}, groupHandler{0, st, topic}) }()
	eventually(ctx, t, "assignment", func() error {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.claims[0]) != 1 {
			return fmt.Errorf("claims %v", st.claims)
		}
		return nil
	})
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("a lone member waited %v for its assignment; with GroupInitialRebalanceDelay 0 the join should complete at once", d.Round(time.Millisecond))
	}
	stop()
	<-done
}
