package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// kcat runs kcat against addr with a deadline and returns its stdout.
func kcat(ctx context.Context, t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// librdkafka debug logs go to stderr, which the test shows (clipped)
	// only when kcat fails: that names the request a broker bug stalls.
	// A protocol error (PROTOERR: librdkafka could not parse a response)
	// fails at once; librdkafka would retry it forever.
	full := append([]string{"-b", addr, "-m", "10", "-d", "broker,protocol,cgrp,fetch,topic"}, args...)
	return runAbort(ctx, t, stdin, "PROTOERR", needKcat(t), full...)
}

func TestKcat(t *testing.T) {
	t.Parallel()
	needKcat(t)
	b := startBroker(t)
	addr := b.Addr()
	// In parallel: kcat runs are short but mostly wait on the network, and
	// a broker bug that stalls consumers (kcat -e never sees the end) then
	// costs one timeout, not one per scenario.
	t.Run("MetadataJSON", func(t *testing.T) { t.Parallel(); kcatMetadata(t, addr) })
	t.Run("ProduceConsume", func(t *testing.T) { t.Parallel(); kcatProduceConsume(t, addr) })
	t.Run("IdempotentProduce", func(t *testing.T) { t.Parallel(); kcatIdempotent(t, addr) })
	t.Run("GroupConsume", func(t *testing.T) { t.Parallel(); kcatGroup(t, addr) })
	t.Run("OffsetsForTimes", func(t *testing.T) { t.Parallel(); kcatTimes(t, addr) })
}

type kcatMeta struct {
	OriginatingBroker struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"originating_broker"`
	ControllerID int32 `json:"controllerid"`
	Brokers      []struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"brokers"`
	Topics []struct {
		Topic      string `json:"topic"`
		Error      string `json:"error"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			Leader    int32  `json:"leader"`
			Error     string `json:"error"`
			Replicas  []struct {
				ID int32 `json:"id"`
			} `json:"replicas"`
			ISRs []struct {
				ID int32 `json:"id"`
			} `json:"isrs"`
		} `json:"partitions"`
	} `json:"topics"`
}

func kcatMetadata(t *testing.T, addr string) {
	ctx := testCtx(t, 60*time.Second)
	createTopic(t, addr, "kcat-meta", 4, nil)
	createTopic(t, addr, "kcat-meta-other", 1, nil)

	var md kcatMeta
	out := kcat(ctx, t, addr, "", "-L", "-J", "-t", "kcat-meta")
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J output: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != addr {
		t.Errorf("brokers = %+v, want [{1 %s}]", md.Brokers, addr)
	}
	if md.OriginatingBroker.ID != 1 || md.ControllerID != 1 {
		t.Errorf("originating broker %+v, controller %d; want node 1", md.OriginatingBroker, md.ControllerID)
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != "kcat-meta" || md.Topics[0].Error != "" || len(md.Topics[0].Partitions) != 4 {
		t.Fatalf("topics = %+v, want kcat-meta with 4 partitions\n%s", md.Topics, out)
	}
	ps := md.Topics[0].Partitions
	sort.Slice(ps, func(i, j int) bool { return ps[i].Partition < ps[j].Partition })
	for i, p := range ps {
		if p.Partition != int32(i) || p.Leader != 1 || p.Error != "" || len(p.Replicas) != 1 || p.Replicas[0].ID != 1 || len(p.ISRs) != 1 || p.ISRs[0].ID != 1 {
			t.Errorf("partition %+v: want leader 1, replicas [1], isrs [1]", p)
		}
	}

	// Without -t: every topic (other subtests add theirs in parallel).
	out = kcat(ctx, t, addr, "", "-L", "-J")
	md = kcatMeta{}
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J output: %v\n%s", err, out)
	}
	parts := map[string]int{}
	for _, tp := range md.Topics {
		parts[tp.Topic] = len(tp.Partitions)
	}
	if parts["kcat-meta"] != 4 || parts["kcat-meta-other"] != 1 {
		t.Errorf("all topics = %v, want kcat-meta with 4 partitions and kcat-meta-other with 1", parts)
	}
}

func kcatProduceConsume(t *testing.T, addr string) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			topic := "kcat-" + codec
			const n = 12
			pad := strings.Repeat("x", 200) // compressible, so librdkafka keeps the codec
			var in, want strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&in, "key%d:value%d-%s\n", i, i, pad)
				fmt.Fprintf(&want, "key%d value%d-%s src=kcat,codec=%s %d\n", i, i, pad, codec, i)
			}
			// One partition (auto-created on the producer's Metadata), so
			// the output order is the produce order.
			kcat(ctx, t, addr, in.String(), "-P", "-t", topic, "-K:", "-z", codec,
				"-H", "src=kcat", "-H", "codec="+codec, "-X", "acks=all", "-X", "linger.ms=5")
			got := kcat(ctx, t, addr, "", "-C", "-t", topic, "-e", "-o", "beginning", "-f", `%k %s %h %o\n`)
			if got != want.String() {
				t.Fatalf("consumed:\n%s\nwant:\n%s", got, want.String())
			}
			// Negative (relative to the end) and absolute start offsets.
			got = kcat(ctx, t, addr, "", "-C", "-t", topic, "-p", "0", "-e", "-o", "-3", "-f", `%o %k\n`)
			if w := fmt.Sprintf("%d key%d\n%d key%d\n%d key%d\n", n-3, n-3, n-2, n-2, n-1, n-1); got != w {
				t.Errorf("-o -3 consumed %q, want %q", got, w)
			}
			got = kcat(ctx, t, addr, "", "-C", "-t", topic, "-p", "0", "-e", "-o", "10", "-f", `%o %k\n`)
			if w := "10 key10\n11 key11\n"; got != w {
				t.Errorf("-o 10 consumed %q, want %q", got, w)
			}

			client, err := sarama.NewClient([]string{addr}, saramaConfig(sarama.V2_1_0_0))
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			defer client.Close()
			wantCodec := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
				"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}[codec]
			for _, b := range rawBatches(t, client, topic, 0) {
				if b.Codec != wantCodec {
					t.Errorf("batch at %d stored with codec %s, want %s", b.FirstOffset, b.Codec, wantCodec)
				}
			}
		})
	}
}

func kcatIdempotent(t *testing.T, addr string) {
	ctx := testCtx(t, 60*time.Second)
	topic := "kcat-idempotent"
	var in, want strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&in, "ik%d:iv%d\n", i, i)
		fmt.Fprintf(&want, "%d ik%d iv%d\n", i, i, i)
	}
	kcat(ctx, t, addr, in.String(), "-P", "-t", topic, "-p", "0", "-K:", "-X", "enable.idempotence=true", "-X", "acks=all")
	got := kcat(ctx, t, addr, "", "-C", "-t", topic, "-e", "-o", "beginning", "-f", `%o %k %s\n`)
	if got != want.String() {
		t.Fatalf("consumed:\n%s\nwant:\n%s", got, want.String())
	}
	client, err := sarama.NewClient([]string{addr}, saramaConfig(sarama.V2_1_0_0))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	var seq int32
	for _, b := range rawBatches(t, client, topic, 0) {
		if b.ProducerID < 0 || b.FirstSequence != seq {
			t.Errorf("batch at %d: producer id %d, sequence %d; want an id, sequence %d", b.FirstOffset, b.ProducerID, b.FirstSequence, seq)
		}
		seq += b.LastOffsetDelta + 1
	}
}

// kcatGroupRun consumes with kcat -G until every assigned partition is at
// its end, returning the output lines sorted.
func kcatGroupRun(ctx context.Context, t *testing.T, addr, group, topic string) []string {
	t.Helper()
	out := kcat(ctx, t, addr, "", "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-f", `%p %o %k %s\n`, topic)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		lines = nil
	}
	// Within a partition, kcat prints in offset order.
	last := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("unexpected kcat line %q", l)
		}
		off, _ := strconv.Atoi(f[1])
		if prev, ok := last[f[0]]; ok && off != prev+1 {
			t.Errorf("partition %s: offset %d after %d", f[0], off, prev)
		}
		last[f[0]] = off
	}
	sort.Strings(lines)
	return lines
}

func kcatGroup(t *testing.T, addr string) {
	ctx := testCtx(t, 90*time.Second)
	topic, group := "kcat-group", "kcat-group"
	createTopic(t, addr, topic, 3, nil)
	produce := func(from, to int) {
		var in strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&in, "gk%02d:gv%02d\n", i, i)
		}
		kcat(ctx, t, addr, in.String(), "-P", "-t", topic, "-K:", "-X", "acks=all")
	}
	expected := func(from, to int) []string {
		// Partition and offset come from the log; the key decides the
		// partition, so read them back with sarama.
		hw := highWatermarks(t, addr, topic)
		var all []rec
		for _, r := range saramaConsumeAll(ctx, t, addr, sarama.V2_0_0_0, topic, hw) {
			var i int
			fmt.Sscanf(r.Key, "gk%d", &i)
			if i >= from && i < to {
				all = append(all, r)
			}
		}
		var lines []string
		for _, r := range all {
			lines = append(lines, fmt.Sprintf("%d %d %s %s", r.Partition, r.Offset, r.Key, r.Value))
		}
		sort.Strings(lines)
		return lines
	}

	produce(0, 30)
	got := kcatGroupRun(ctx, t, addr, group, topic)
	if want := expected(0, 30); !slices.Equal(got, want) {
		t.Fatalf("first group run consumed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	hw := highWatermarks(t, addr, topic)
	// kcat commits (auto commit) when it closes.
	if c := groupOffsets(t, addr, group, topic); !sameOffsets(c, hw) {
		t.Fatalf("committed after first run %s, want %s", fmtOffsets(c), fmtOffsets(hw))
	}
	// A rerun resumes at the committed offsets: nothing to read.
	if got := kcatGroupRun(ctx, t, addr, group, topic); len(got) != 0 {
		t.Fatalf("second group run consumed %d records, want none:\n%s", len(got), strings.Join(got, "\n"))
	}
	produce(30, 40)
	got = kcatGroupRun(ctx, t, addr, group, topic)
	if want := expected(30, 40); !slices.Equal(got, want) {
		t.Fatalf("third group run consumed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c, hw := groupOffsets(t, addr, group, topic), highWatermarks(t, addr, topic); !sameOffsets(c, hw) {
		t.Fatalf("committed after third run %s, want %s", fmtOffsets(c), fmtOffsets(hw))
	}
}

func kcatTimes(t *testing.T, addr string) {
	ctx := testCtx(t, 60*time.Second)
	topic := "kcat-times"
	// Records with explicit CreateTime timestamps, one second apart, an hour
	// ago (well inside the default retention).
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	cfg := saramaConfig(sarama.V2_0_0_0)
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer prod.Close()
	const n = 10
	for i := 0; i < n; i++ {
		_, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("t%d", i)),
			Timestamp: base.Add(time.Duration(i) * time.Second)})
		if err != nil || off != int64(i) {
			t.Fatalf("SendMessage %d: offset %d, %v", i, off, err)
		}
	}
	ms := func(i int, extra time.Duration) int64 {
		return base.Add(time.Duration(i)*time.Second + extra).UnixMilli()
	}
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "%d %d t%d\n", i, ms(i, 0), i)
		}
		return b.String()
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"exact start", []string{"-o", fmt.Sprintf("s@%d", ms(3, 0))}, lines(3, n)},
		{"between records", []string{"-o", fmt.Sprintf("s@%d", ms(3, 500*time.Millisecond))}, lines(4, n)},
		{"before all", []string{"-o", fmt.Sprintf("s@%d", ms(0, -time.Hour))}, lines(0, n)},
		{"start and end", []string{"-o", fmt.Sprintf("s@%d", ms(2, 0)), "-o", fmt.Sprintf("e@%d", ms(6, 0))}, lines(2, 6)},
	}
	for _, c := range cases {
		args := append([]string{"-C", "-t", topic, "-p", "0", "-e", "-f", `%o %T %s\n`}, c.args...)
		if got := kcat(ctx, t, addr, "", args...); got != c.want {
			t.Errorf("%s (%v): consumed\n%s\nwant\n%s", c.name, c.args, got, c.want)
		}
	}

	// -Q: ListOffsets by timestamp.
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(topic) + `\s*\[0\]\s*offset\s*(-?\d+)\s*$`)
	for _, q := range []struct {
		ts   int64
		want int64
	}{{ms(5, 0), 5}, {ms(5, time.Millisecond), 6}, {ms(0, -time.Minute), 0}, {ms(n+10, 0), -1}} {
		out := kcat(ctx, t, addr, "", "-Q", "-t", fmt.Sprintf("%s:0:%d", topic, q.ts))
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("-Q %d: unexpected output %q", q.ts, out)
			continue
		}
		if got, _ := strconv.ParseInt(m[1], 10, 64); got != q.want {
			t.Errorf("-Q %d: offset %d, want %d (output %q)", q.ts, got, q.want, out)
		}
	}
}
