// Package streamtest runs a stream topology without a broker: pipe records
// into input topics, read what reaches output topics, look into stores.
// It is weir's TopologyTestDriver.
//
//	d := streamtest.New(t, b)
//	in := streamtest.Input(d, "text-input", serde.String(), serde.String())
//	out := streamtest.Output(d, "word-counts", serde.String(), serde.Int64())
//	in.PipeValue("hello hello world", time.Now())
//	d.Commit()
//	out.ToMap() // map[hello:2 world:1]
//
// Every topic has one partition unless Partitions says otherwise; records
// are routed to tasks with Kafka's default key partitioner, and repartition
// topics are followed within the same call, so a whole topology runs in
// one process. Stores are in memory. Caching is off by default, so every
// update reaches the output at once; WithCache turns it on and Commit
// flushes it, as the App's commit does.
package streamtest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/internal/task"
	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/stream"
)

// Driver runs one topology in memory.
type Driver struct {
	t      testing.TB
	topo   *topology.Topology
	counts map[string]int32
	tasks  map[task.ID]*task.Task
	topics map[string][]Record // everything written, by topic
	queue  []pending           // records written to topics the topology reads
	cache  int
	hasher kgo.Partitioner
}

// Record is one record written to a topic.
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte
	Headers   []topology.Header
	Timestamp int64
}

type pending struct {
	topic string
	rec   Record
}

// Option configures a Driver.
type Option func(*Driver)

// Partitions sets the partition counts of input topics (default 1).
func Partitions(counts map[string]int32) Option {
	return func(d *Driver) {
		for k, v := range counts {
			d.counts[k] = v
		}
	}
}

// WithCache gives every task a record cache of n bytes; Commit flushes it.
func WithCache(n int) Option { return func(d *Driver) { d.cache = n } }

// New builds b's topology under application id "streamtest" and creates
// its tasks. Failures end the test.
func New(t testing.TB, b *stream.Builder, opts ...Option) *Driver {
	t.Helper()
	topo, err := topology.Of(b).Build("streamtest")
	if err != nil {
		t.Fatalf("streamtest: %v", err)
	}
	d := &Driver{t: t, topo: topo, counts: make(map[string]int32), tasks: make(map[task.ID]*task.Task),
		topics: make(map[string][]Record), hasher: kgo.StickyKeyPartitioner(nil)}
	for _, topic := range topo.UserSourceTopics() {
		d.counts[topic] = 1
	}
	for _, o := range opts {
		o(d)
	}
	if err := topo.Resolve(d.counts); err != nil {
		t.Fatalf("streamtest: %v", err)
	}
	for _, sub := range topo.Subtopologies {
		for p := range sub.Partitions {
			d.newTask(sub, p)
		}
	}
	t.Cleanup(d.close)
	return d
}

func (d *Driver) newTask(sub *topology.Subtopology, p int32) {
	id := task.ID{Subtopology: sub.ID, Partition: p}
	tk, err := task.New(task.Config{
		ID: id, AppID: d.topo.AppID, Topo: d.topo, Sub: sub, Output: output{d},
		Open:       func(*topology.Store) (state.Store, error) { return state.NewMemory(), nil },
		CacheBytes: d.cache,
	})
	if err != nil {
		d.t.Fatalf("streamtest: %v", err)
	}
	d.tasks[id] = tk
}

func (d *Driver) close() {
	for _, tk := range d.tasks {
		tk.Close()
	}
}

// output routes a task's records: every record is kept per topic; those
// for topics the topology reads are queued to be processed.
type output struct{ d *Driver }

func (o output) Send(topic string, partition int32, key, value []byte, headers []topology.Header, ts int64) error {
	d := o.d
	if partition < 0 {
		partition = d.partitionFor(topic, key)
	}
	rec := Record{Partition: partition, Key: key, Value: value, Headers: headers, Timestamp: ts}
	d.topics[topic] = append(d.topics[topic], rec)
	if _, reads := d.topo.SubtopologyFor(topic); reads {
		d.queue = append(d.queue, pending{topic, rec})
	}
	return nil
}

// partitionFor applies Kafka's default partitioner (murmur2 of the key).
func (d *Driver) partitionFor(topic string, key []byte) int32 {
	n, ok := d.counts[topic]
	if !ok || n <= 1 {
		return 0
	}
	return int32(d.hasher.ForTopic(topic).Partition(&kgo.Record{Key: key}, int(n)))
}

// pipe processes one record and everything it causes downstream.
func (d *Driver) pipe(topic string, rec Record) {
	d.t.Helper()
	d.queue = append(d.queue, pending{topic, rec})
	d.drain()
}

// drain processes queued records (those written to topics the topology
// reads) until none is left.
func (d *Driver) drain() {
	d.t.Helper()
	for len(d.queue) > 0 {
		next := d.queue[0]
		d.queue = d.queue[1:]
		sub, ok := d.topo.SubtopologyFor(next.topic)
		if !ok {
			d.t.Fatalf("streamtest: topic %q is not read by the topology", next.topic)
		}
		tk := d.tasks[task.ID{Subtopology: sub.ID, Partition: next.rec.Partition}]
		origin := topology.Origin{Topic: next.topic, Partition: next.rec.Partition, Offset: int64(len(d.topics[next.topic]))}
		if err := tk.Process(next.topic, next.rec.Key, next.rec.Value, next.rec.Timestamp, next.rec.Headers, origin); err != nil {
			d.t.Fatalf("streamtest: processing a record of %s: %v", next.topic, err)
		}
	}
}

// Commit flushes every task's caches (and follows what that emits), as the
// App's commit does.
func (d *Driver) Commit() {
	d.t.Helper()
	for _, id := range d.taskIDs() {
		if err := d.tasks[id].Flush(); err != nil {
			d.t.Fatalf("streamtest: %v", err)
		}
		d.drain()
	}
}

func (d *Driver) taskIDs() []task.ID {
	ids := make([]task.ID, 0, len(d.tasks))
	for id := range d.tasks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].Subtopology != ids[j].Subtopology {
			return ids[i].Subtopology < ids[j].Subtopology
		}
		return ids[i].Partition < ids[j].Partition
	})
	return ids
}

// AdvanceTime moves every task's stream time to t, as a record stamped t
// would, without processing one: windows whose close time has passed emit
// their final results. Stream time never goes back.
func (d *Driver) AdvanceTime(t time.Time) {
	d.t.Helper()
	for _, id := range d.taskIDs() {
		if err := d.tasks[id].AdvanceStreamTime(t.UnixMilli()); err != nil {
			d.t.Fatalf("streamtest: %v", err)
		}
		d.drain()
	}
}

// Records returns every record written to topic so far, changelogs and
// repartition topics included.
func (d *Driver) Records(topic string) []Record { return d.topics[topic] }

// Metric sums a counter over all tasks ("dropped-late-records", ...).
func (d *Driver) Metric(name string) int64 {
	var n int64
	for _, tk := range d.tasks {
		n += tk.Metrics()[name]
	}
	return n
}

// Store returns the raw store of a task (after Commit it holds every
// update). Partition is the task's partition.
func (d *Driver) Store(name string, partition int32) state.Store {
	d.t.Helper()
	for id, tk := range d.tasks {
		if id.Partition != partition {
			continue
		}
		if s, ok := tk.Store(name); ok {
			return s
		}
	}
	d.t.Fatalf("streamtest: no store %q in partition %d", name, partition)
	return nil
}

func (d *Driver) String() string { return fmt.Sprintf("streamtest.Driver(%d tasks)", len(d.tasks)) }
