package interop_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// pyLib is one Python client library and its driver script in testdata/.
type pyLib struct {
	name   string // subtest name
	module string // what the script imports
	pkg    string // Debian package that provides it
	script string
	header string // value of the "lib" header the script sets
	// offsetNone is what the lag scenario reports as the committed offset
	// of a partition without a commit.
	offsetNone int64
	idempotent bool
}

var pyLibs = []pyLib{
	{"confluent-kafka", "confluent_kafka", "python3-confluent-kafka", "confluent_interop.py", "confluent", -1001, true},
	{"kafka-python", "kafka", "python3-kafka", "kafkapython_interop.py", "kafka-python", -1, false},
}

func TestPython(t *testing.T) {
	t.Parallel()
	for _, lib := range pyLibs {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			needPython(t, lib.module, lib.pkg)
			b := startBroker(t)
			addr := b.Addr()
			t.Run("Admin", func(t *testing.T) { pythonAdmin(t, lib, addr) })
			t.Run("ProduceConsumeCommitLag", func(t *testing.T) { pythonFlow(t, lib, addr) })
		})
	}
}

// py runs the library's script with a scenario and decodes its JSON.
func py(t *testing.T, lib pyLib, v any, addr, scenario string, args ...string) {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	full := append([]string{filepath.Join("testdata", lib.script), addr, scenario}, args...)
	out := run(ctx, t, "", python, full...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s %s: decoding stdout: %v\nstdout:\n%s", lib.script, scenario, err, out)
	}
	// Error-level client logs (librdkafka PROTOERR, kafka-python ERROR)
	// mean the broker said something the client could not take.
	var logs struct {
		ClientErrors []string `json:"client_errors"`
	}
	if err := json.Unmarshal([]byte(out), &logs); err != nil || len(logs.ClientErrors) > 0 {
		shown := logs.ClientErrors[:min(len(logs.ClientErrors), 8)]
		t.Errorf("%s %s %v: client logged %d errors, first:\n%s", lib.script, scenario, args, len(logs.ClientErrors), strings.Join(shown, "\n"))
	}
}

type pyConfig struct {
	Value     string `json:"value"`
	IsDefault bool   `json:"is_default"`
}

type pyPartition struct {
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas"`
	ISRs     []int32 `json:"isrs"`
}

type pyAdmin struct {
	// confluent-kafka
	DuplicateError string            `json:"duplicate_error"`
	Brokers        map[string]string `json:"brokers"`
	ControllerID   int32             `json:"controller_id"`
	// kafka-python
	Created   map[string]int16 `json:"created"`
	Duplicate map[string]any   `json:"duplicate"`
	Listed    []string         `json:"listed"`
	// both
	Configs map[string]pyConfig               `json:"configs"`
	Topics  map[string]map[string]pyPartition `json:"topics"`
}

func pythonAdmin(t *testing.T, lib pyLib, addr string) {
	topic := "py-admin-" + lib.header
	var got pyAdmin
	py(t, lib, &got, addr, "admin", topic)

	switch lib.module {
	case "confluent_kafka":
		if got.DuplicateError != "TOPIC_ALREADY_EXISTS" {
			t.Errorf("second create_topics: %q, want TOPIC_ALREADY_EXISTS", got.DuplicateError)
		}
		if want := map[string]string{"1": addr}; len(got.Brokers) != 1 || got.Brokers["1"] != addr {
			t.Errorf("brokers %v, want %v", got.Brokers, want)
		}
		if got.ControllerID != 1 {
			t.Errorf("controller id %d, want 1", got.ControllerID)
		}
	case "kafka":
		if len(got.Created) != 1 || got.Created[topic] != 0 {
			t.Errorf("create_topics errors %v, want {%s: 0}", got.Created, topic)
		}
		// TOPIC_ALREADY_EXISTS is 36 (kafka-python 2.x returns the code,
		// 3.x raises TopicAlreadyExistsError).
		if d := fmt.Sprint(got.Duplicate[topic]); d != "36" && d != "TopicAlreadyExistsError" {
			t.Errorf("second create_topics: %v, want error 36", got.Duplicate)
		}
		if !slices.Contains(got.Listed, topic) {
			t.Errorf("list_topics %v lacks %s", got.Listed, topic)
		}
	}

	for name, want := range map[string]pyConfig{
		"retention.ms":      {"7200000", false},
		"cleanup.policy":    {"delete", false},
		"max.message.bytes": {"1048588", true},
	} {
		if c, ok := got.Configs[name]; !ok || c != want {
			t.Errorf("describe_configs %s = %+v (present %v), want %+v", name, c, ok, want)
		}
	}
	parts := got.Topics[topic]
	if len(parts) != 3 {
		t.Fatalf("topic %s has partitions %v, want 3", topic, parts)
	}
	for i := 0; i < 3; i++ {
		p, ok := parts[strconv.Itoa(i)]
		if !ok || p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISRs, []int32{1}) {
			t.Errorf("partition %d = %+v (present %v), want leader 1, replicas [1], isrs [1]", i, p, ok)
		}
	}
}

type pyDelivered struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

type pyProduce struct {
	Delivered []pyDelivered `json:"delivered"`
	Errors    []string      `json:"errors"`
}

type pyConsume struct {
	Records []rec `json:"records"`
}

type pyLagPartition struct {
	Committed int64 `json:"committed"`
	Low       int64 `json:"low"`
	High      int64 `json:"high"`
	Lag       int64 `json:"lag"`
}

type pyLag struct {
	Partitions map[string]pyLagPartition `json:"partitions"`
	Total      int64                     `json:"total"`
}

func pythonFlow(t *testing.T, lib pyLib, addr string) {
	ctx := testCtx(t, 120*time.Second)
	topic, group := "py-flow-"+lib.header, "py-group-"+lib.header
	const parts, n, firstRun = 3, 30, 12
	createTopic(t, addr, topic, parts, nil)
	keyPrefix, valPrefix := "ck", "cv"
	if lib.module == "kafka" {
		keyPrefix, valPrefix = "pk", "pv"
	}

	// Produce: every record acknowledged, offsets contiguous per partition
	// in send order.
	var prod pyProduce
	py(t, lib, &prod, addr, "produce", topic, strconv.Itoa(n))
	if len(prod.Errors) != 0 || len(prod.Delivered) != n {
		t.Fatalf("produce: %d delivered, errors %v; want %d, none", len(prod.Delivered), prod.Errors, n)
	}
	var want []rec
	next := map[int32]int64{}
	for i, d := range prod.Delivered {
		if d.Key != fmt.Sprintf("%s-%02d", keyPrefix, i) {
			// confluent-kafka reports deliveries in produce order per
			// partition only; match by key instead of position.
			slices.SortFunc(prod.Delivered, func(a, b pyDelivered) int { return strings.Compare(a.Key, b.Key) })
			break
		}
	}
	for i, d := range prod.Delivered {
		if d.Key != fmt.Sprintf("%s-%02d", keyPrefix, i) || d.Value != fmt.Sprintf("%s-%02d", valPrefix, i) {
			t.Fatalf("delivery %d = %+v, want key %s-%02d", i, d, keyPrefix, i)
		}
		if d.Offset != next[d.Partition] {
			t.Errorf("record %s acknowledged at %d@%d, want offset %d (contiguous, in send order)", d.Key, d.Partition, d.Offset, next[d.Partition])
		}
		next[d.Partition] = d.Offset + 1
		want = append(want, rec{topic, d.Partition, d.Offset, d.Key, d.Value, map[string]string{"i": strconv.Itoa(i), "lib": lib.header}})
	}
	hw := highWatermarks(t, addr, topic)
	if !sameOffsets(hw, next) {
		t.Fatalf("high watermarks %s, acknowledged %s", fmtOffsets(hw), fmtOffsets(next))
	}
	// An independent client reads exactly these records.
	checkRecs(t, "records read back with sarama", saramaConsumeAll(ctx, t, addr, sarama.V2_0_0_0, topic, hw), want)
	if lib.idempotent {
		client, err := sarama.NewClient([]string{addr}, saramaConfig(sarama.V2_1_0_0))
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		defer client.Close()
		for p := int32(0); p < parts; p++ {
			var seq int32
			for _, b := range rawBatches(t, client, topic, p) {
				if b.ProducerID < 0 || b.FirstSequence != seq {
					t.Errorf("%d@%d: producer id %d, sequence %d; want an id, sequence %d", p, b.FirstOffset, b.ProducerID, b.FirstSequence, seq)
				}
				seq += b.LastOffsetDelta + 1
			}
		}
	}
	byPos := map[string]rec{}
	for _, r := range want {
		byPos[fmt.Sprintf("%d@%d", r.Partition, r.Offset)] = r
	}

	// No commits yet: the whole topic is lag.
	checkLag(t, lib, addr, topic, group, hw, map[int32]int64{})

	// First consumer: firstRun records, each committed after processing.
	var c1 pyConsume
	py(t, lib, &c1, addr, "consume", topic, group, strconv.Itoa(firstRun))
	if len(c1.Records) != firstRun {
		t.Fatalf("first consumer read %d records, want %d", len(c1.Records), firstRun)
	}
	checkPartitionOrder(t, "first consumer", c1.Records, true)
	committed := map[int32]int64{}
	for _, r := range c1.Records {
		if _, seen := committed[r.Partition]; !seen && r.Offset != 0 {
			t.Errorf("first consumer started partition %d at offset %d, want 0", r.Partition, r.Offset)
		}
		if w, ok := byPos[fmt.Sprintf("%d@%d", r.Partition, r.Offset)]; !ok {
			t.Errorf("first consumer read %s, which was never produced", r)
		} else {
			checkRecs(t, "first consumer record", []rec{r}, []rec{w})
		}
		committed[r.Partition] = r.Offset + 1
	}
	if c := groupOffsets(t, addr, group, topic); !sameOffsets(c, committed) {
		t.Fatalf("committed offsets %s, want %s", fmtOffsets(c), fmtOffsets(committed))
	}
	checkLag(t, lib, addr, topic, group, hw, committed)

	// A restarted consumer resumes at the commits and reads the rest.
	var c2 pyConsume
	// After the last record it polls on for a while, through empty fetches.
	py(t, lib, &c2, addr, "consume", topic, group, strconv.Itoa(n-firstRun), "600")
	checkPartitionOrder(t, "second consumer", c2.Records, true)
	for _, r := range c2.Records {
		if r.Offset < committed[r.Partition] {
			t.Errorf("second consumer re-read %s below the committed offset %d", r, committed[r.Partition])
		}
	}
	checkRecs(t, "both consumers", append(c1.Records, c2.Records...), want)
	if c := groupOffsets(t, addr, group, topic); !sameOffsets(c, hw) {
		t.Fatalf("committed offsets %s, want %s", fmtOffsets(c), fmtOffsets(hw))
	}
	checkLag(t, lib, addr, topic, group, hw, hw)
}

// checkLag runs the lag scenario and compares it with the high watermarks
// and the commits expected (partitions without one are absent).
func checkLag(t *testing.T, lib pyLib, addr, topic, group string, hw, committed map[int32]int64) {
	t.Helper()
	var got pyLag
	py(t, lib, &got, addr, "lag", topic, group)
	var total int64
	if len(got.Partitions) != len(hw) {
		t.Errorf("lag covers partitions %v, want %d", got.Partitions, len(hw))
	}
	for p, high := range hw {
		want := pyLagPartition{Committed: lib.offsetNone, Low: 0, High: high, Lag: high}
		if c, ok := committed[p]; ok {
			want.Committed, want.Lag = c, high-c
		}
		total += want.Lag
		if g := got.Partitions[strconv.Itoa(int(p))]; g != want {
			t.Errorf("lag of partition %d = %+v, want %+v", p, g, want)
		}
	}
	if got.Total != total {
		t.Errorf("total lag %d, want %d", got.Total, total)
	}
}
