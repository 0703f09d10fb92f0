package interop_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
)

func TestKafkaGo(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	addr := b.Addr()
	t.Run("DialCreateTopicsReadPartitions", func(t *testing.T) { kafkagoConn(t, addr) })
	t.Run("WriterPartitionReader", func(t *testing.T) { kafkagoWriter(t, addr) })
	t.Run("GroupReaderResume", func(t *testing.T) { kafkagoGroup(t, addr) })
}

// newTransport is a kafka-go Transport of the test's own. Writers otherwise
// share kafka.DefaultTransport, whose metadata cache (MetadataTTL 6 s)
// does not know topics created after its last refresh, so a Writer would
// fail with UNKNOWN_TOPIC_OR_PARTITION: client behaviour, not the broker's.
func newTransport(t *testing.T) *kafka.Transport {
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// kafkagoCreate creates topics through kafka.Dial, the controller's Conn
// and CreateTopics (CreateTopics v0-2, negotiated).
func kafkagoCreate(ctx context.Context, t *testing.T, addr string, topics ...kafka.TopicConfig) {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("Controller: %v", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("Dial controller %+v: %v", ctrl, err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(topics...); err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
}

func kafkagoConn(t *testing.T, addr string) {
	ctx := testCtx(t, 30*time.Second)
	topic := "kgo-conn"
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	brokers, err := conn.Brokers()
	if err != nil {
		t.Fatalf("Brokers: %v", err)
	}
	host, port, _ := net.SplitHostPort(addr)
	if len(brokers) != 1 || brokers[0].ID != 1 || brokers[0].Host != host || strconv.Itoa(brokers[0].Port) != port {
		t.Errorf("Brokers = %+v, want node 1 at %s", brokers, addr)
	}
	ctrl, err := conn.Controller()
	if err != nil || ctrl.ID != 1 {
		t.Errorf("Controller = %+v, %v; want node 1", ctrl, err)
	}

	kafkagoCreate(ctx, t, addr, kafka.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "7200000"}}})
	// CreateTopics is idempotent in kafka-go: it swallows TOPIC_ALREADY_EXISTS.
	kafkagoCreate(ctx, t, addr, kafka.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1})

	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("ReadPartitions: %v", err)
	}
	if len(parts) != 3 {
		t.Fatalf("ReadPartitions = %+v, want 3 partitions", parts)
	}
	for i, p := range parts {
		if p.Topic != topic || p.ID != i || p.Leader.ID != 1 || p.Leader.Host != host || strconv.Itoa(p.Leader.Port) != port ||
			len(p.Replicas) != 1 || p.Replicas[0].ID != 1 || len(p.Isr) != 1 || p.Isr[0].ID != 1 {
			t.Errorf("partition %d = %+v, want leader/replica/isr node 1 at %s", i, p, addr)
		}
	}
	// kafka-go's Conn asks Metadata to auto-create, and auto-creation is
	// on: an unknown topic appears with the default partition count.
	if ps, err := conn.ReadPartitions("kgo-conn-other"); err != nil || len(ps) != 1 {
		t.Errorf("ReadPartitions(unknown topic) = %+v, %v; want it auto-created with 1 partition", ps, err)
	}
	if hw := highWatermarks(t, addr, "kgo-conn-other"); len(hw) != 1 || hw[0] != 0 {
		t.Errorf("auto-created kgo-conn-other: high watermarks %s, want one empty partition", fmtOffsets(hw))
	}

	// Produce and fetch on the partition leader's Conn (Produce v7 and
	// Fetch v10 as negotiated by Conn; ListOffsets v1).
	lc, err := kafka.DialLeader(ctx, "tcp", addr, topic, 1)
	if err != nil {
		t.Fatalf("DialLeader: %v", err)
	}
	defer lc.Close()
	lc.SetDeadline(time.Now().Add(20 * time.Second))
	var msgs []kafka.Message
	for i := 0; i < 5; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("ck%d", i)), Value: []byte(fmt.Sprintf("cv%d", i)),
			Headers: []kafka.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}})
	}
	if _, err := lc.WriteMessages(msgs...); err != nil {
		t.Fatalf("Conn.WriteMessages: %v", err)
	}
	first, last, err := lc.ReadOffsets()
	if err != nil || first != 0 || last != 5 {
		t.Fatalf("ReadOffsets = %d, %d, %v; want 0, 5", first, last, err)
	}
	if _, err := lc.Seek(0, kafka.SeekAbsolute); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	batch := lc.ReadBatch(1, 1<<20)
	var got []rec
	for len(got) < 5 {
		m, err := batch.ReadMessage()
		if err != nil {
			t.Fatalf("batch.ReadMessage after %d: %v", len(got), err)
		}
		got = append(got, kgoRec(m))
	}
	batch.Close()
	var want []rec
	for i := 0; i < 5; i++ {
		want = append(want, rec{topic, 1, int64(i), fmt.Sprintf("ck%d", i), fmt.Sprintf("cv%d", i), map[string]string{"n": strconv.Itoa(i)}})
	}
	checkRecs(t, "Conn write/read", got, want)

	if err := conn.DeleteTopics(topic); err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	// Not ReadPartitions: kafka-go's Metadata asks for auto-creation, which
	// would bring the topic back.
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(sarama.V2_0_0_0))
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if _, ok := topics[topic]; ok {
		t.Errorf("%s still listed after DeleteTopics", topic)
	}
}

func kgoRec(m kafka.Message) rec {
	var h map[string]string
	if len(m.Headers) > 0 {
		h = map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
	}
	return rec{m.Topic, int32(m.Partition), m.Offset, string(m.Key), string(m.Value), h}
}

// kafkagoReadPartition reads a partition without a group from offset from
// until the high watermark hw.
func kafkagoReadPartition(ctx context.Context, t *testing.T, addr, topic string, p int, from, hw int64) []rec {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, ReadBackoffMin: 20 * time.Millisecond, ReadBackoffMax: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		t.Fatalf("SetOffset(%d): %v", from, err)
	}
	var out []rec
	for off := from; off < hw; off++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("ReadMessage %s/%d at %d: %v", topic, p, off, err)
		}
		if m.Offset != off {
			t.Fatalf("ReadMessage %s/%d: offset %d, want %d", topic, p, m.Offset, off)
		}
		out = append(out, kgoRec(m))
	}
	lag, err := r.ReadLag(ctx)
	if err != nil || lag != 0 {
		t.Errorf("%s/%d: ReadLag at the end = %d, %v; want 0", topic, p, lag, err)
	}
	return out
}

func kafkagoWriter(t *testing.T, addr string) {
	codecs := []struct {
		name string
		c    kafka.Compression
	}{{"none", 0}, {"gzip", kafka.Gzip}, {"snappy", kafka.Snappy}, {"lz4", kafka.Lz4}, {"zstd", kafka.Zstd}}
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			topic := "kgo-writer-" + cd.name
			const parts, n = 3, 40
			kafkagoCreate(ctx, t, addr, kafka.TopicConfig{Topic: topic, NumPartitions: parts, ReplicationFactor: 1})
			w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
				Compression: cd.c, BatchSize: 8, BatchTimeout: 5 * time.Millisecond, Transport: newTransport(t)}
			defer w.Close()
			var msgs []kafka.Message
			for i := 0; i < n; i++ {
				msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("wk-%d", i)), Value: []byte(fmt.Sprintf("writer value %d %080d", i, i)),
					Headers: []kafka.Header{{Key: "codec", Value: []byte(cd.name)}, {Key: "i", Value: []byte(strconv.Itoa(i))}}})
			}
			// Two calls, so each partition gets several batches in order.
			if err := w.WriteMessages(ctx, msgs[:n/2]...); err != nil {
				t.Fatalf("WriteMessages: %v", err)
			}
			if err := w.WriteMessages(ctx, msgs[n/2:]...); err != nil {
				t.Fatalf("WriteMessages: %v", err)
			}
			// The Hash balancer decides partitions; offsets follow the
			// write order within each partition.
			var want []rec
			next := map[int]int64{}
			for i, m := range msgs {
				p := (&kafka.Hash{}).Balance(m, 0, 1, 2)
				want = append(want, rec{topic, int32(p), next[p], string(m.Key), string(m.Value), map[string]string{"codec": cd.name, "i": strconv.Itoa(i)}})
				next[p]++
			}
			var got []rec
			for p := 0; p < parts; p++ {
				got = append(got, kafkagoReadPartition(ctx, t, addr, topic, p, 0, next[p])...)
			}
			checkRecs(t, "Writer -> partition Reader", got, want)
			// Start mid-partition too.
			if next[0] > 2 {
				mid := kafkagoReadPartition(ctx, t, addr, topic, 0, 2, next[0])
				var wantMid []rec
				for _, r := range want {
					if r.Partition == 0 && r.Offset >= 2 {
						wantMid = append(wantMid, r)
					}
				}
				checkRecs(t, "partition Reader from offset 2", mid, wantMid)
			}
			// Stored as the Writer compressed them.
			client, err := sarama.NewClient([]string{addr}, saramaConfig(sarama.V2_1_0_0))
			if err != nil {
				t.Fatalf("sarama NewClient: %v", err)
			}
			defer client.Close()
			wantCodec := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
				"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[cd.name]
			for p := int32(0); p < parts; p++ {
				for _, b := range rawBatches(t, client, topic, p) {
					if b.Codec != wantCodec {
						t.Errorf("%d@%d: batch stored with codec %s, want %s", p, b.FirstOffset, b.Codec, wantCodec)
					}
				}
			}
			if st := w.Stats(); st.Errors != 0 || st.Messages != n {
				t.Errorf("Writer stats: %d messages, %d errors; want %d, 0", st.Messages, st.Errors, n)
			}
		})
	}
}

func kafkagoGroup(t *testing.T, addr string) {
	ctx := testCtx(t, 90*time.Second)
	topic, group := "kgo-group", "kgo-group"
	const parts, n, firstRun = 3, 36, 14
	kafkagoCreate(ctx, t, addr, kafka.TopicConfig{Topic: topic, NumPartitions: parts, ReplicationFactor: 1})
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Transport: newTransport(t)}
	defer w.Close()
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("gk-%02d", i)), Value: []byte(fmt.Sprintf("gv-%02d", i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	hw := highWatermarks(t, addr, topic)
	var all []rec
	for p := 0; p < parts; p++ {
		all = append(all, kafkagoReadPartition(ctx, t, addr, topic, p, 0, hw[int32(p)])...)
	}
	if len(all) != n {
		t.Fatalf("topic holds %d records, want %d", len(all), n)
	}

	newReader := func() *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 5 * time.Second,
			JoinGroupBackoff: 100 * time.Millisecond, ReadBackoffMin: 20 * time.Millisecond, ReadBackoffMax: 100 * time.Millisecond,
			StartOffset: kafka.FirstOffset, CommitInterval: 0 /* synchronous CommitMessages */})
	}
	consume := func(r *kafka.Reader, count int) []rec {
		var out []rec
		for len(out) < count {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("FetchMessage after %d: %v", len(out), err)
			}
			out = append(out, kgoRec(m))
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("CommitMessages(%d@%d): %v", m.Partition, m.Offset, err)
			}
		}
		return out
	}

	r1 := newReader()
	got1 := consume(r1, firstRun)
	if err := r1.Close(); err != nil {
		t.Errorf("close first reader: %v", err)
	}
	checkPartitionOrder(t, "first reader", got1, true)
	wantCommitted := map[int32]int64{}
	consumed := map[string]bool{}
	for _, r := range got1 {
		wantCommitted[r.Partition] = r.Offset + 1
		consumed[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] = true
	}
	for _, r := range got1 {
		if r.Offset > 0 && !consumed[fmt.Sprintf("%d@%d", r.Partition, r.Offset-1)] {
			t.Errorf("first reader skipped the record before %s", r)
		}
	}
	if c := groupOffsets(t, addr, group, topic); !sameOffsets(c, wantCommitted) {
		t.Fatalf("after first reader: committed %s, want %s", fmtOffsets(c), fmtOffsets(wantCommitted))
	}
	// kafka-go's own OffsetFetch agrees.
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: newTransport(t)}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil || of.Error != nil {
		t.Fatalf("Client.OffsetFetch: %v / %v", err, of)
	}
	for _, p := range of.Topics[topic] {
		want, ok := wantCommitted[int32(p.Partition)]
		if !ok {
			want = -1
		}
		if p.Error != nil || p.CommittedOffset != want {
			t.Errorf("Client.OffsetFetch %d = %d (%v), want %d", p.Partition, p.CommittedOffset, p.Error, want)
		}
	}

	// A second reader of the group resumes right after the commits.
	r2 := newReader()
	got2 := consume(r2, n-firstRun)
	if err := r2.Close(); err != nil {
		t.Errorf("close second reader: %v", err)
	}
	checkPartitionOrder(t, "second reader", got2, true)
	for _, r := range got2 {
		if consumed[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] {
			t.Errorf("second reader re-read %s, committed before", r)
		}
	}
	checkRecs(t, "both readers together", append(got1, got2...), all)
	if c := groupOffsets(t, addr, group, topic); !sameOffsets(c, hw) {
		t.Errorf("after second reader: committed %s, want %s", fmtOffsets(c), fmtOffsets(hw))
	}
}
