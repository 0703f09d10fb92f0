package interop_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxn runs Kafka transactions (KIP-98) through real clients: the
// transactional producer APIs (InitProducerId with a transactional id,
// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn), fencing
// by a newer producer, and read_committed consumers (Fetch and ListOffsets
// at the last stable offset, aborted transactions filtered out).
func TestTxn(t *testing.T) {
	t.Parallel()
	t.Run("ConfluentKafka", func(t *testing.T) { t.Parallel(); txnConfluent(t) })
	t.Run("Sarama", func(t *testing.T) {
		t.Parallel()
		for _, sv := range saramaVersions {
			t.Run(sv.name, func(t *testing.T) { t.Parallel(); txnSarama(t, sv.v) })
		}
	})
	t.Run("Kcat", func(t *testing.T) { t.Parallel(); txnKcat(t) })
	t.Run("KafkaPython", func(t *testing.T) { t.Parallel(); txnKafkaPython(t) })
}

// kgoClient is a franz-go client for addr, closed when the test ends.
func kgoClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("weir-interop-kgo")}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// listEnds is ListOffsets latest for every partition of topic: the high
// watermarks, or with committed the last stable offsets (read_committed).
func listEnds(ctx context.Context, adm *kadm.Client, topic string, committed bool) (map[int32]int64, error) {
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	l, err := list(ctx, topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, o := range l[topic] {
		out[p] = o.Offset
	}
	return out, nil
}

// stableEnds waits until no transaction is open on topic (every
// partition's last stable offset has reached its high watermark, so every
// marker is written) and returns the high watermarks.
func stableEnds(ctx context.Context, t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(kgoClient(t, addr))
	var hw map[int32]int64
	eventually(ctx, t, "last stable offsets of "+topic+" reach the high watermarks", func() error {
		var err error
		if hw, err = listEnds(ctx, adm, topic, false); err != nil {
			return err
		}
		lso, err := listEnds(ctx, adm, topic, true)
		if err != nil {
			return err
		}
		if len(hw) == 0 || !sameOffsets(hw, lso) {
			return fmt.Errorf("high watermarks %s, last stable offsets %s", fmtOffsets(hw), fmtOffsets(lso))
		}
		return nil
	})
	return hw
}

// hwArg is the high watermarks as the scripts' comma-separated argument,
// in partition order.
func hwArg(hw map[int32]int64) string {
	s := make([]string, len(hw))
	for p := range s {
		s[p] = strconv.FormatInt(hw[int32(p)], 10)
	}
	return strings.Join(s, ",")
}

// --- confluent-kafka-python ---------------------------------------------

var confluentTxn = pyLib{name: "confluent-kafka", module: "confluent_kafka", pkg: "python3-confluent-kafka", script: "confluent_txn.py"}

func txnConfluent(t *testing.T) {
	needPython(t, confluentTxn.module, confluentTxn.pkg)
	addr := startBroker(t).Addr()
	t.Run("ConsumeTransformProduce", func(t *testing.T) { t.Parallel(); confluentEOS(t, addr) })
	t.Run("Fencing", func(t *testing.T) { t.Parallel(); confluentFence(t, addr) })
}

type pyTxn struct {
	Inputs    []string         `json:"inputs"`
	Result    string           `json:"result"`
	Offsets   map[string]int64 `json:"offsets"`
	RewoundTo map[string]int64 `json:"rewound_to"`
}

type pyRead struct {
	Records []rec `json:"records"`
}

// pyReadAll reads topic from the start with a script's read scenario,
// under isolation (read_committed or read_uncommitted), up to hw.
func pyReadAll(t *testing.T, lib pyLib, addr, topic, isolation string, hw map[int32]int64) []rec {
	t.Helper()
	var r pyRead
	py(t, lib, &r, addr, "read", topic, isolation, hwArg(hw))
	checkPartitionOrder(t, lib.name+" "+isolation+" read of "+topic, r.Records, false)
	return r.Records
}

func confluentEOS(t *testing.T, addr string) {
	ctx := testCtx(t, 120*time.Second)
	in, out, group, txnID := "ck-txn-in", "ck-txn-out", "ck-txn-group", "ck-txn-eos"
	const parts, n, batch, abortTxn = 3, 30, 4, 1
	createTopic(t, addr, in, parts, nil)
	createTopic(t, addr, out, parts, nil)

	// The input, written without a transaction.
	cl := kgoClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	input := map[string]rec{} // "partition@offset" -> record
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: in, Partition: int32(i % parts), Key: fmt.Appendf(nil, "k-%02d", i), Value: fmt.Appendf(nil, "v-%02d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce input %d: %v", i, err)
		}
		input[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] = rec{in, r.Partition, r.Offset, string(r.Key), string(r.Value), nil}
	}
	inEnd := highWatermarks(t, addr, in)

	var res struct {
		Txns []pyTxn `json:"txns"`
	}
	py(t, confluentTxn, &res, addr, "eos", in, out, group, txnID, strconv.Itoa(n), strconv.Itoa(batch), strconv.Itoa(abortTxn))

	for i, tx := range res.Txns {
		t.Logf("transaction %d %s: inputs %v, offsets %v, rewound to %v", i, tx.Result, tx.Inputs, tx.Offsets, tx.RewoundTo)
	}
	// The script's account: every input in exactly one committed
	// transaction; the aborted one's inputs processed again later; each
	// commit's offsets one past what its and earlier transactions read;
	// the rewind after the abort back at the previous commit.
	txnOf := map[string]int{} // input position -> committed transaction
	var abortedInputs []string
	committedTo := map[int32]int64{}
	for i, tx := range res.Txns {
		if len(tx.Inputs) == 0 {
			t.Fatalf("transaction %d has no inputs: %+v", i, res.Txns)
		}
		want := "committed"
		if i == abortTxn {
			want = "aborted"
		}
		if tx.Result != want {
			t.Fatalf("transaction %d %s, want %s: %+v", i, tx.Result, want, res.Txns)
		}
		if tx.Result == "aborted" {
			abortedInputs = tx.Inputs
			for p := int32(0); p < parts; p++ {
				want, ok := committedTo[p]
				if !ok {
					want = -2 // OFFSET_BEGINNING: nothing committed yet
				}
				if got := tx.RewoundTo[strconv.Itoa(int(p))]; got != want {
					t.Errorf("after the abort, partition %d rewound to %d, want the committed offset %d", p, got, want)
				}
			}
			continue
		}
		for _, pos := range tx.Inputs {
			if _, ok := input[pos]; !ok {
				t.Fatalf("transaction %d processed %s, which is not an input record", i, pos)
			}
			if prev, dup := txnOf[pos]; dup {
				t.Fatalf("input %s committed twice, in transactions %d and %d", pos, prev, i)
			}
			txnOf[pos] = i
			var p int32
			var o int64
			fmt.Sscanf(pos, "%d@%d", &p, &o)
			committedTo[p] = max(committedTo[p], o+1)
		}
		for ps, o := range tx.Offsets {
			p, _ := strconv.Atoi(ps)
			if o != committedTo[int32(p)] {
				t.Errorf("transaction %d sent offset %d for partition %d, want %d", i, o, p, committedTo[int32(p)])
			}
		}
	}
	if len(txnOf) != n {
		t.Fatalf("%d of %d inputs committed: %+v", len(txnOf), n, res.Txns)
	}
	if len(abortedInputs) == 0 {
		t.Fatalf("no transaction was aborted: %+v", res.Txns)
	}
	if !sameOffsets(committedTo, inEnd) {
		t.Fatalf("committed transactions read up to %s, input ends at %s", fmtOffsets(committedTo), fmtOffsets(inEnd))
	}

	// read_committed sees each input transformed exactly once, written by
	// the transaction that committed it; read_uncommitted also sees the
	// aborted transaction's output.
	hw := stableEnds(ctx, t, addr, out)
	want := func(pos string, txn int) rec {
		r := input[pos]
		return rec{Topic: out, Partition: r.Partition, Key: r.Key, Value: "T:" + strings.ToUpper(r.Value),
			Headers: map[string]string{"src": pos, "txn": strconv.Itoa(txn)}}
	}
	committed := pyReadAll(t, confluentTxn, addr, out, "read_committed", hw)
	var gotC, wantC []rec
	for _, r := range committed {
		r.Offset = 0
		gotC = append(gotC, r)
	}
	for pos, i := range txnOf {
		wantC = append(wantC, want(pos, i))
	}
	checkOutput(t, "read_committed output", gotC, wantC)

	all := pyReadAll(t, confluentTxn, addr, out, "read_uncommitted", hw)
	var gotU []rec
	visible := map[string]bool{}
	for _, r := range committed {
		visible[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] = true
	}
	for _, r := range all {
		if !visible[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] {
			r.Offset = 0
			gotU = append(gotU, r)
		}
	}
	var wantU []rec
	for _, pos := range abortedInputs {
		wantU = append(wantU, want(pos, abortTxn))
	}
	checkOutput(t, "read_uncommitted output hidden from read_committed (the aborted transaction's)", gotU, wantU)

	// The group's offsets came only from the committed transactions.
	if c := groupOffsets(t, addr, group, in); !sameOffsets(c, inEnd) {
		t.Fatalf("group %s committed offsets %s, want the input's end %s", group, fmtOffsets(c), fmtOffsets(inEnd))
	}
}

// checkOutput compares records whose offsets are not known up front, by
// their "src" header (sorting them in that order).
func checkOutput(t *testing.T, what string, got, want []rec) {
	t.Helper()
	bySrc := func(a, b rec) int { return strings.Compare(a.Headers["src"], b.Headers["src"]) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, bySrc)
	slices.SortFunc(want, bySrc)
	for i := range got {
		got[i].Offset = int64(i)
	}
	for i := range want {
		want[i].Offset = int64(i)
	}
	checkRecs(t, what, got, want)
}

type pyKafkaError struct {
	Name             string `json:"name"`
	Code             int    `json:"code"`
	Str              string `json:"str"`
	Fatal            bool   `json:"fatal"`
	Retriable        bool   `json:"retriable"`
	TxnRequiresAbort bool   `json:"txn_requires_abort"`
}

func confluentFence(t *testing.T, addr string) {
	ctx := testCtx(t, 90*time.Second)
	topic := "ck-txn-fence"
	createTopic(t, addr, topic, 1, nil)
	var res struct {
		CommitError     *pyKafkaError `json:"commit_error"`
		BeginAfterError *pyKafkaError `json:"begin_after_error"`
		FencedLogs      []string      `json:"fenced_logs"`
	}
	py(t, confluentTxn, &res, addr, "fence", topic, "ck-txn-fence")
	t.Logf("fenced producer's commit_transaction: %+v; it logged %q", res.CommitError, res.FencedLogs)
	// librdkafka turns PRODUCER_FENCED (90) or INVALID_PRODUCER_EPOCH
	// (47) into its fatal _FENCED (-144).
	fenced := []string{"_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"}
	if e := res.CommitError; e == nil || !e.Fatal || e.Retriable || !slices.Contains(fenced, e.Name) {
		t.Fatalf("fenced producer's commit_transaction: error %+v, want a fatal, non-retriable one of %v", e, fenced)
	}
	if e := res.BeginAfterError; e == nil || !e.Fatal {
		t.Errorf("fenced producer's begin_transaction after the failure: error %+v, want the fatal error again", e)
	}
	hw := stableEnds(ctx, t, addr, topic)
	got := pyReadAll(t, confluentTxn, addr, topic, "read_committed", hw)
	if len(got) != 1 || got[0].Key != "p2" || got[0].Value != "survivor" {
		t.Fatalf("read_committed after fencing: %v, want only the new producer's p2=survivor", got)
	}
	all := pyReadAll(t, confluentTxn, addr, topic, "read_uncommitted", hw)
	var kv []string
	for _, r := range all {
		kv = append(kv, r.Key+"="+r.Value)
	}
	if want := []string{"p1=fenced", "p2=survivor"}; !slices.Equal(kv, want) {
		t.Fatalf("read_uncommitted after fencing: %v, want %v (the fenced transaction aborted in the log)", kv, want)
	}
}

// --- sarama --------------------------------------------------------------

func txnSarama(t *testing.T, v sarama.KafkaVersion) {
	ctx := testCtx(t, 90*time.Second)
	addr := startBroker(t).Addr()
	topic, group := "sarama-txn", "sarama-txn-group"
	const parts = 2
	createTopic(t, addr, topic, parts, nil)

	cfg := saramaConfig(v)
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Transaction.ID = "sarama-txn-" + v.String()
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer (transactional): %v", err)
	}
	defer prod.Close()
	if !prod.IsTransactional() {
		t.Fatalf("producer is not transactional")
	}

	// The aborted transaction first: a read_committed consumer that has
	// read the committed one, after it, has passed the aborted records.
	txn := func(kind string, commit bool, groupOffset int64) []rec {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn (%s): %v", kind, err)
		}
		var sent []rec
		for p := int32(0); p < parts; p++ {
			for i := 0; i < 3; i++ {
				m := &sarama.ProducerMessage{Topic: topic, Partition: p, Key: sarama.StringEncoder(fmt.Sprintf("%s-%d-%d", kind, p, i)),
					Value: sarama.StringEncoder(fmt.Sprintf("v-%s-%d-%d", kind, p, i))}
				if _, _, err := prod.SendMessage(m); err != nil {
					t.Fatalf("SendMessage in the %s transaction: %v", kind, err)
				}
				sent = append(sent, rec{topic, m.Partition, m.Offset, fmt.Sprintf("%s-%d-%d", kind, p, i), fmt.Sprintf("v-%s-%d-%d", kind, p, i), nil})
			}
		}
		offs := map[string][]*sarama.PartitionOffsetMetadata{topic: {{Partition: 0, Offset: groupOffset}}}
		if err := prod.AddOffsetsToTxn(offs, group); err != nil {
			t.Fatalf("AddOffsetsToTxn in the %s transaction: %v", kind, err)
		}
		end := prod.CommitTxn
		if !commit {
			end = prod.AbortTxn
		}
		if err := end(); err != nil {
			t.Fatalf("ending the %s transaction (commit %v): %v (status %v)", kind, commit, err, prod.TxnStatus())
		}
		if st := prod.TxnStatus(); st&sarama.ProducerTxnFlagReady == 0 {
			t.Fatalf("after the %s transaction the producer is %v, want ready", kind, st)
		}
		return sent
	}
	aborted := txn("aborted", false, 11)
	committed := txn("committed", true, 7)

	cfg = saramaConfig(v)
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	var got []rec
	for p := int32(0); p < parts; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(%s, %d): %v", topic, p, err)
		}
		last := fmt.Sprintf("committed-%d-2", p)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				got = append(got, rec{topic, m.Partition, m.Offset, string(m.Key), string(m.Value), nil})
				done = string(m.Key) == last
			case err := <-pc.Errors():
				t.Fatalf("read_committed consume %s/%d: %v", topic, p, err)
			case <-ctx.Done():
				t.Fatalf("read_committed consume %s/%d: %v before %s, after %v", topic, p, ctx.Err(), last, got)
			}
		}
		pc.AsyncClose()
		for range pc.Messages() {
		}
	}
	checkRecs(t, "read_committed sarama consumer", got, committed)

	// In the log: each partition holds the aborted records, an abort
	// marker, the committed records, a commit marker.
	client, err := sarama.NewClient([]string{addr}, saramaConfig(v))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	hw := stableEnds(ctx, t, addr, topic)
	for p := int32(0); p < parts; p++ {
		var shape []string
		var n int64
		for _, b := range rawBatches(t, client, topic, p) {
			kind := "data"
			if b.Control {
				kind = "marker?"
				if len(b.Records) == 1 && len(b.Records[0].Key) == 4 {
					kind = map[uint16]string{0: "abort", 1: "commit"}[binary.BigEndian.Uint16(b.Records[0].Key[2:])]
				}
			}
			if !b.IsTransactional {
				kind = "non-transactional " + kind
			}
			if len(shape) == 0 || shape[len(shape)-1] != kind || kind != "data" {
				shape = append(shape, kind)
			}
			n = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		}
		if want := []string{"data", "abort", "data", "commit"}; !slices.Equal(shape, want) {
			t.Errorf("partition %d batches: %v, want %v", p, shape, want)
		}
		if n != hw[p] {
			t.Errorf("partition %d batches end at %d, high watermark %d", p, n, hw[p])
		}
	}
	for _, a := range aborted {
		for _, c := range committed {
			if a.Partition == c.Partition && a.Offset >= c.Offset {
				t.Errorf("aborted record %s not before committed %s", a, c)
			}
		}
	}

	// Only the committed transaction's offset reached the group.
	if c := groupOffsets(t, addr, group, topic); !sameOffsets(c, map[int32]int64{0: 7}) {
		t.Fatalf("group %s committed offsets %s, want 0:7 (from the committed transaction only)", group, fmtOffsets(c))
	}
}

// --- kcat ----------------------------------------------------------------

func txnKcat(t *testing.T) {
	needKcat(t)
	ctx := testCtx(t, 90*time.Second)
	addr := startBroker(t).Addr()
	topic := "kcat-txn"
	const parts = 2
	createTopic(t, addr, topic, parts, nil)
	cl := kgoClient(t, addr, kgo.TransactionalID("kcat-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(60*time.Second))

	// produce writes three records to each partition in a new transaction
	// and returns the lines kcat prints for them.
	produce := func(tag string) []string {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("BeginTransaction (%s): %v", tag, err)
		}
		var lines []string
		for p := int32(0); p < parts; p++ {
			for i := 0; i < 3; i++ {
				r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "%s-k%d-%d", tag, p, i), Value: fmt.Appendf(nil, "%s-v%d-%d", tag, p, i)}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce in transaction %s: %v", tag, err)
				}
				lines = append(lines, fmt.Sprintf("%d %d %s %s", r.Partition, r.Offset, r.Key, r.Value))
			}
		}
		return lines
	}
	end := func(tag string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("EndTransaction %s (commit %v): %v", tag, commit, err)
		}
	}
	read := func(isolation string) []string {
		t.Helper()
		out := kcat(ctx, t, addr, "", "-C", "-t", topic, "-e", "-o", "beginning", "-f", `%p %o %k %s\n`, "-X", "isolation.level="+isolation)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if out == "" {
			lines = nil
		}
		slices.Sort(lines)
		return lines
	}
	sorted := func(ls ...[]string) []string {
		out := slices.Concat(ls...)
		slices.Sort(out)
		return out
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: kcat consumed\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	a := produce("a")
	end("a", kgo.TryCommit)
	b := produce("b")
	end("b", kgo.TryAbort)
	stableEnds(ctx, t, addr, topic)
	check("read_committed", read("read_committed"), sorted(a))
	check("read_uncommitted", read("read_uncommitted"), sorted(a, b))

	// An open transaction holds read_committed at its first offset.
	c := produce("c")
	check("read_committed with a transaction open", read("read_committed"), sorted(a))
	check("read_uncommitted with a transaction open", read("read_uncommitted"), sorted(a, b, c))
	end("c", kgo.TryCommit)
	stableEnds(ctx, t, addr, topic)
	check("read_committed after the commit", read("read_committed"), sorted(a, c))
}

// --- kafka-python --------------------------------------------------------

var kafkaPythonTxn = pyLib{name: "kafka-python", module: "kafka", pkg: "python3-kafka", script: "kafkapython_txn.py"}

func txnKafkaPython(t *testing.T) {
	needPython(t, kafkaPythonTxn.module, kafkaPythonTxn.pkg)
	var probe struct {
		Version        string `json:"version"`
		IsolationLevel bool   `json:"isolation_level"`
		Transactions   bool   `json:"transactions"`
	}
	py(t, kafkaPythonTxn, &probe, "127.0.0.1:0", "probe")
	t.Logf("kafka-python %s: isolation_level %v, transactions %v", probe.Version, probe.IsolationLevel, probe.Transactions)
	if !probe.IsolationLevel && !probe.Transactions {
		t.Skipf("kafka-python %s supports neither isolation_level nor transactions (both arrived in 2.2.0): nothing to test", probe.Version)
	}

	ctx := testCtx(t, 90*time.Second)
	addr := startBroker(t).Addr()
	topic := "kp-txn"
	const parts = 2
	createTopic(t, addr, topic, parts, nil)

	// One aborted transaction, then one committed, by kafka-python's
	// transactional producer when it has one, else by kgo.
	var sent struct {
		Aborted   []pyDelivered `json:"aborted"`
		Committed []pyDelivered `json:"committed"`
	}
	if probe.Transactions {
		py(t, kafkaPythonTxn, &sent, addr, "txns", topic, "kp-txn", strconv.Itoa(parts))
	} else {
		cl := kgoClient(t, addr, kgo.TransactionalID("kp-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		for _, kind := range []string{"a", "c"} {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatalf("BeginTransaction: %v", err)
			}
			for p := int32(0); p < parts; p++ {
				for i := 0; i < 3; i++ {
					r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "kp-%s-%d-%d", kind, p, i),
						Value: fmt.Appendf(nil, "v-%s-%d-%d", kind, p, i), Headers: []kgo.RecordHeader{{Key: "lib", Value: []byte("kafka-python")}}}
					if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
						t.Fatalf("produce: %v", err)
					}
					d := pyDelivered{r.Partition, r.Offset, string(r.Key), string(r.Value)}
					if kind == "a" {
						sent.Aborted = append(sent.Aborted, d)
					} else {
						sent.Committed = append(sent.Committed, d)
					}
				}
			}
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(kind == "c")); err != nil {
				t.Fatalf("EndTransaction: %v", err)
			}
		}
	}
	if len(sent.Aborted) != 3*parts || len(sent.Committed) != 3*parts {
		t.Fatalf("transactions sent %d aborted and %d committed records, want %d each", len(sent.Aborted), len(sent.Committed), 3*parts)
	}
	recs := func(ds ...[]pyDelivered) []rec {
		var out []rec
		for _, d := range slices.Concat(ds...) {
			out = append(out, rec{topic, d.Partition, d.Offset, d.Key, d.Value, map[string]string{"lib": "kafka-python"}})
		}
		return out
	}
	hw := stableEnds(ctx, t, addr, topic)

	if !probe.IsolationLevel {
		// Read back with sarama (read_committed) instead.
		cfg := saramaConfig(sarama.V2_0_0_0)
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
		consumer, err := sarama.NewConsumer([]string{addr}, cfg)
		if err != nil {
			t.Fatalf("NewConsumer: %v", err)
		}
		defer consumer.Close()
		var got []rec
		for p := int32(0); p < parts; p++ {
			pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("ConsumePartition: %v", err)
			}
			for done := false; !done; {
				select {
				case m := <-pc.Messages():
					got = append(got, rec{topic, m.Partition, m.Offset, string(m.Key), string(m.Value), saramaHeaders(m.Headers)})
					done = string(m.Key) == fmt.Sprintf("kp-c-%d-2", p)
				case <-ctx.Done():
					t.Fatalf("read_committed consume %s/%d: %v after %v", topic, p, ctx.Err(), got)
				}
			}
			pc.Close()
		}
		checkRecs(t, "sarama read_committed of kafka-python's transactions", got, recs(sent.Committed))
		return
	}
	checkRecs(t, "kafka-python read_committed", pyReadAll(t, kafkaPythonTxn, addr, topic, "read_committed", hw), recs(sent.Committed))
	checkRecs(t, "kafka-python read_uncommitted", pyReadAll(t, kafkaPythonTxn, addr, topic, "read_uncommitted", hw), recs(sent.Aborted, sent.Committed))
}
