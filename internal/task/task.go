package task

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/table"
)

// ID names a task: sub-topology and partition, written "0_3" as in Kafka
// Streams.
type ID struct {
	Subtopology int
	Partition   int32
}

func (id ID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// Output receives every record a task emits. Partition -1 asks for
// partitioning by key with Kafka's default partitioner.
type Output interface {
	Send(topic string, partition int32, key, value []byte, headers []topology.Header, timestamp int64) error
}

// Config is what a task needs.
type Config struct {
	ID     ID
	AppID  string
	Topo   *topology.Topology
	Sub    *topology.Subtopology
	Output Output
	// Open returns the task's raw store for a spec, already restored.
	Open func(spec *topology.Store) (state.Store, error)
	// CacheBytes is the task's record-cache budget, shared by its stores;
	// 0 disables caching (every update is forwarded and logged).
	CacheBytes int
	Logger     *slog.Logger
}

// Task is one running sub-topology instance. It is not safe for
// concurrent use: one goroutine feeds it.
type Task struct {
	cfg        Config
	nodes      map[string]*node
	sources    map[string]*node // by topic
	stores     map[string]*store
	order      []*store // flush order: declaration order, upstream first
	streamTime int64
	// now is the timestamp of the record being processed (stream time
	// during punctuation): store updates are stamped with it.
	now     int64
	metrics map[string]int64
	log     *slog.Logger
}

type node struct {
	spec     *topology.Node
	proc     topology.Processor
	ctx      *nodeCtx
	children []*node // spec.Children's nodes, resolved once rather than per record
}

// store is one store of the task: the raw store and its cache, and the
// timestamp of each dirty key's last update, which its changelog record
// and forwarded change carry (as Kafka's record cache keeps the record
// context).
type store struct {
	spec   *topology.Store
	raw    state.Store
	cache  *state.Cache
	stamps map[string]*int64
}

// ErrDecode wraps failures to decode an input record; the runtime's
// bad-record policy applies to them.
var ErrDecode = errors.New("task: cannot decode record")

// New opens the task's stores and initializes its processors.
func New(cfg Config) (*Task, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Task{
		cfg: cfg, nodes: make(map[string]*node), sources: make(map[string]*node),
		stores: make(map[string]*store), streamTime: -1, metrics: make(map[string]int64),
		log: cfg.Logger.With("task", cfg.ID.String()),
	}
	if err := t.openStores(); err != nil {
		t.closeStores()
		return nil, err
	}
	for _, n := range cfg.Sub.Nodes {
		nd := &node{spec: n}
		nd.ctx = &nodeCtx{t: t, n: nd}
		t.nodes[n.Name] = nd
		for _, topic := range n.Topics {
			t.sources[topic] = nd
		}
	}
	for _, n := range cfg.Sub.Nodes {
		nd := t.nodes[n.Name]
		for _, c := range n.Children {
			nd.children = append(nd.children, t.nodes[c.Name])
		}
		if n.New == nil {
			continue
		}
		nd.proc = n.New()
		if err := nd.proc.Init(nd.ctx); err != nil {
			t.Close()
			return nil, fmt.Errorf("task %s: init %s: %w", cfg.ID, n.Name, err)
		}
	}
	return t, nil
}

// ID is the task's id.
func (t *Task) ID() ID { return t.cfg.ID }

func (t *Task) openStores() error {
	budget := 0
	if n := len(t.cfg.Sub.Stores); n > 0 {
		budget = t.cfg.CacheBytes / n
	}
	for _, name := range t.cfg.Sub.Stores {
		spec := t.cfg.Topo.Stores[name]
		raw, err := t.cfg.Open(spec)
		if err != nil {
			return fmt.Errorf("task %s: open store %s: %w", t.cfg.ID, name, err)
		}
		s := &store{spec: spec, raw: raw, stamps: make(map[string]*int64)}
		s.cache = state.NewCache(raw, budget, func(entries []state.Dirty) error { return t.flushed(s, entries) })
		t.stores[name] = s
		t.order = append(t.order, s)
	}
	return nil
}

// Process runs one input record through the sub-topology.
func (t *Task) Process(topic string, key, value []byte, timestamp int64, headers []topology.Header, origin topology.Origin) error {
	src, ok := t.sources[topic]
	if !ok {
		return fmt.Errorf("task %s does not read topic %q", t.cfg.ID, topic)
	}
	rec, err := t.decode(src.spec, key, value, timestamp, headers)
	if err != nil {
		return err
	}
	rec.Origin = origin
	t.now = rec.Timestamp
	advanced := rec.Timestamp > t.streamTime
	if advanced {
		t.streamTime = rec.Timestamp
	}
	if err := t.forward(src, rec); err != nil {
		return err
	}
	if advanced {
		return t.punctuate()
	}
	return nil
}

func (t *Task) decode(src *topology.Node, key, value []byte, timestamp int64, headers []topology.Header) (topology.Record, error) {
	k, err := src.KeyCodec.Deserialize(key)
	if err != nil {
		return topology.Record{}, fmt.Errorf("%w: key (%s serde): %v", ErrDecode, src.KeyCodec.Name, err)
	}
	v, err := src.ValCodec.Deserialize(value)
	if err != nil {
		return topology.Record{}, fmt.Errorf("%w: value (%s serde): %v", ErrDecode, src.ValCodec.Name, err)
	}
	rec := topology.Record{Key: k, Value: v, Timestamp: timestamp, Headers: headers}
	if src.Timestamp != nil {
		ts, err := src.Timestamp(k, v, time.UnixMilli(timestamp))
		if err != nil {
			return topology.Record{}, fmt.Errorf("%w: timestamp extractor: %v", ErrDecode, err)
		}
		rec.Timestamp = ts.UnixMilli()
	}
	return rec, nil
}

// forward delivers rec to every child of from.
func (t *Task) forward(from *node, rec topology.Record) error {
	for _, c := range from.children {
		if err := t.deliver(c, rec); err != nil {
			return err
		}
	}
	return nil
}

// deliver runs one node on rec: a processor processes it, a sink encodes
// and emits it.
func (t *Task) deliver(n *node, rec topology.Record) error {
	if n.spec.Kind != topology.KindSink {
		if err := n.proc.Process(rec); err != nil {
			return &ProcessError{Node: n.spec.Name, Err: err}
		}
		return nil
	}
	topic := n.spec.Topic
	if n.spec.TopicFor != nil {
		var err error
		if topic, err = n.spec.TopicFor(rec); err != nil {
			return &ProcessError{Node: n.spec.Name, Err: err}
		}
	}
	k, err := n.spec.KeyCodec.Serialize(rec.Key)
	if err != nil {
		return &ProcessError{Node: n.spec.Name, Err: fmt.Errorf("serialize key: %w", err)}
	}
	v, err := n.spec.ValCodec.Serialize(rec.Value)
	if err != nil {
		return &ProcessError{Node: n.spec.Name, Err: fmt.Errorf("serialize value: %w", err)}
	}
	return t.cfg.Output.Send(topic, -1, k, v, rec.Headers, rec.Timestamp)
}

// ProcessError is a user function's (or a step's) failure, with the step.
type ProcessError struct {
	Node string
	Err  error
}

func (e *ProcessError) Error() string { return fmt.Sprintf("step %s: %v", e.Node, e.Err) }
func (e *ProcessError) Unwrap() error { return e.Err }

// punctuate tells processors that act on stream time that it moved.
func (t *Task) punctuate() error {
	t.now = t.streamTime
	for _, n := range t.cfg.Sub.Nodes {
		if p, ok := t.nodes[n.Name].proc.(topology.Punctuator); ok {
			if err := p.Punctuate(t.streamTime); err != nil {
				return &ProcessError{Node: n.Name, Err: err}
			}
		}
	}
	return nil
}

// flushed handles a cache flush of s: changelog records out, and for
// aggregations and tables, Change records to the owner's children.
func (t *Task) flushed(s *store, entries []state.Dirty) error {
	stamps := make([]int64, len(entries))
	for i, e := range entries {
		stamps[i] = t.streamTime
		if ts, ok := s.stamps[string(e.Key)]; ok {
			stamps[i] = *ts
			delete(s.stamps, string(e.Key))
		}
	}
	if s.spec.Changelog {
		topic := s.spec.ChangelogTopic(t.cfg.AppID)
		for i, e := range entries {
			var v []byte
			if !e.Delete {
				v = e.Value
			}
			if err := t.cfg.Output.Send(topic, t.cfg.ID.Partition, e.Key, v, nil, stamps[i]); err != nil {
				return err
			}
		}
	}
	owner, ok := t.nodes[s.spec.Owner]
	if !ok {
		return nil
	}
	for i, e := range entries {
		// A window store deletes only when windows expire, which is not
		// a retraction to announce downstream.
		if e.Delete && s.spec.Kind == topology.StoreWindow {
			continue
		}
		rec, err := t.change(s.spec, e)
		if err != nil {
			return err
		}
		rec.Timestamp = stamps[i]
		if err := t.forward(owner, rec); err != nil {
			return err
		}
	}
	return nil
}

// change decodes a flushed entry into the owner's Change record.
func (t *Task) change(spec *topology.Store, e state.Dirty) (topology.Record, error) {
	k, err := spec.KeyCodec.Deserialize(e.Key)
	if err != nil {
		return topology.Record{}, fmt.Errorf("store %s: decode key: %w", spec.Name, err)
	}
	var ch table.Change
	if e.Old != nil {
		if ch.Old, err = spec.ValCodec.Deserialize(e.Old); err != nil {
			return topology.Record{}, fmt.Errorf("store %s: decode old value: %w", spec.Name, err)
		}
	}
	if !e.Delete {
		if ch.New, err = spec.ValCodec.Deserialize(e.Value); err != nil {
			return topology.Record{}, fmt.Errorf("store %s: decode value: %w", spec.Name, err)
		}
	}
	return topology.Record{Key: k, Value: ch}, nil
}

// Flush empties every cache, upstream stores first, so everything the task
// has processed is in its Output and its stores. The runtime commits after.
func (t *Task) Flush() error {
	// Cache.Flush also makes the store durable.
	for _, s := range t.order {
		if err := s.cache.Flush(); err != nil {
			return fmt.Errorf("task %s: flush store %s: %w", t.cfg.ID, s.spec.Name, err)
		}
	}
	return nil
}

// AdvanceStreamTime moves stream time to ts (if later) as a record with
// that timestamp would, running punctuation (windows close), without
// processing a record. The test driver uses it.
func (t *Task) AdvanceStreamTime(ts int64) error {
	if ts <= t.streamTime {
		return nil
	}
	t.streamTime = ts
	return t.punctuate()
}

// StreamTime is the largest timestamp processed, -1 before any.
func (t *Task) StreamTime() int64 { return t.streamTime }

// Metrics returns the task's counters (dropped records and the like).
func (t *Task) Metrics() map[string]int64 { return t.metrics }

// Store returns the raw (uncached) store, for inspection after Flush.
func (t *Task) Store(name string) (state.Store, bool) {
	s, ok := t.stores[name]
	if !ok {
		return nil, false
	}
	return s.raw, true
}

// Close closes processors and stores without flushing: a caller that wants
// the caches written calls Flush first.
func (t *Task) Close() error {
	var errs []error
	for _, n := range t.nodes {
		if n.proc != nil {
			errs = append(errs, n.proc.Close())
		}
	}
	errs = append(errs, t.closeStores())
	return errors.Join(errs...)
}

func (t *Task) closeStores() error {
	var errs []error
	for _, s := range t.stores {
		errs = append(errs, s.raw.Close())
	}
	return errors.Join(errs...)
}
