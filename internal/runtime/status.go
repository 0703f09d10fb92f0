package runtime

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// TaskStatus is a snapshot of one assigned task.
type TaskStatus struct {
	ID         string // "<sub-topology>_<partition>"
	Running    bool   // false while restoring
	StreamTime int64  // Unix ms; -1 before the first record
	Inputs     []InputStatus
	Stores     []StoreStatus
}

// InputStatus is one input partition of a task.
type InputStatus struct {
	Topic     string
	Partition int32
	Offset    int64 // next offset to process; -1 before the first record
	Lag       int64 // records behind the high watermark; -1 if unknown
}

// StoreStatus is one store of a task and its restoration.
type StoreStatus struct {
	Store     string
	Changelog string // "" for a store without changelog
	Restored  int64  // changelog records applied so far
	Total     int64  // records to restore (the changelog range)
	Done      bool
}

// Metrics returns the instance's counters: the runtime's own plus the
// tasks' (current tasks and those closed before).
func (r *Runtime) Metrics() map[string]int64 {
	out := map[string]int64{
		MetricProcessed:    r.processed.Load(),
		MetricSkipped:      r.skipped.Load(),
		MetricDeadLettered: r.deadLettered.Load(),
		MetricRestored:     r.restored.Load(),
		MetricCommits:      r.commits.Load(),
	}
	if r.eos != nil {
		out[MetricAborts] = r.eos.aborts.Load()
	}
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	for k, v := range r.closedTotal {
		out[k] += v
	}
	for _, st := range r.stats {
		for k, v := range st.metrics {
			out[k] += v
		}
	}
	return out
}

// TaskStatus returns a snapshot of the assigned tasks, by id.
func (r *Runtime) TaskStatus() []TaskStatus {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	ids := slices.SortedFunc(maps.Keys(r.stats), compareTasks)
	out := make([]TaskStatus, 0, len(ids))
	for _, id := range ids {
		st := r.stats[id]
		ts := TaskStatus{ID: id.String(), Running: st.running, StreamTime: st.streamTime, Inputs: slices.Clone(st.inputs)}
		if st.job != nil {
			for _, sr := range st.job.stores {
				ts.Stores = append(ts.Stores, StoreStatus{Store: sr.spec.Name, Changelog: sr.topic,
					Restored: sr.restored.Load(), Total: sr.total.Load(), Done: sr.done.Load()})
			}
		}
		out = append(out, ts)
	}
	return out
}

// queryStore is a running task's raw store, open for queries.
type queryStore struct {
	task  string
	store state.Store
}

func (r *Runtime) registerQuery(ts *taskState, stores map[string]state.Store) {
	r.queryMu.Lock()
	defer r.queryMu.Unlock()
	for name, s := range stores {
		if r.query[name] == nil {
			r.query[name] = make(map[int32]queryStore)
		}
		r.query[name][ts.id.Partition] = queryStore{task: ts.id.String(), store: s}
	}
}

func (r *Runtime) unregisterQuery(ts *taskState) {
	r.queryMu.Lock()
	defer r.queryMu.Unlock()
	for _, name := range ts.sub.Stores {
		if q, ok := r.query[name][ts.id.Partition]; ok && q.task == ts.id.String() {
			delete(r.query[name], ts.id.Partition)
		}
	}
}

// Entry is one store entry a query returns.
type Entry struct {
	Key, Value []byte
}

// Lookup reads one key's committed entries from the task that holds the
// key: the key is routed with Kafka's default partitioner, which is where
// every store's records are partitioned, so key is the serialized record
// key. A key-value store returns the key's value, if any; a window store
// returns every window of the key it keeps, as (window store key, value)
// in window order. Queries see the stores as of the last commit: newer
// updates are still in the tasks' record caches.
func (r *Runtime) Lookup(store string, key []byte) (int32, []Entry, error) {
	spec, ok := r.topo.Stores[store]
	if !ok {
		return -1, nil, fmt.Errorf("%w: %q", ErrStoreNotFound, store)
	}
	var partitions int32
	if m := r.storePartitions.Load(); m != nil {
		partitions = (*m)[spec.Name]
	}
	if partitions <= 0 {
		return -1, nil, fmt.Errorf("%w: the application has not started", ErrNotLocal)
	}
	p := partitionForKey(key, partitions)
	r.queryMu.RLock()
	defer r.queryMu.RUnlock()
	q, ok := r.query[store][p]
	if !ok {
		return p, nil, fmt.Errorf("%w: store %s partition %d", ErrNotLocal, store, p)
	}
	if spec.Kind != topology.StoreWindow {
		v, err := q.store.Get(key)
		if err != nil || v == nil {
			return p, nil, err
		}
		return p, []Entry{{Key: bytes.Clone(key), Value: v}}, nil
	}
	// Window store keys lead with the window start, so one key's windows
	// are found by a scan of the partition.
	it, err := q.store.Range(nil, nil)
	if err != nil {
		return p, nil, err
	}
	var out []Entry
	for it.Next() {
		if k, _, err := window.DecodeKey(it.Key()); err == nil && bytes.Equal(k, key) {
			out = append(out, Entry{Key: bytes.Clone(it.Key()), Value: bytes.Clone(it.Value())})
		}
	}
	return p, out, it.Close()
}

// Range calls fn for the committed entries in [from, to) of every local
// partition of a store (nil bounds are open), partition by partition,
// until fn returns false. Keys are in order within a partition.
func (r *Runtime) Range(store string, from, to []byte, fn func(partition int32, key, value []byte) bool) error {
	if _, ok := r.topo.Stores[store]; !ok {
		return fmt.Errorf("%w: %q", ErrStoreNotFound, store)
	}
	r.queryMu.RLock()
	defer r.queryMu.RUnlock()
	parts := slices.Sorted(maps.Keys(r.query[store]))
	for _, p := range parts {
		it, err := r.query[store][p].store.Range(from, to)
		if err != nil {
			return err
		}
		for it.Next() {
			if !fn(p, bytes.Clone(it.Key()), bytes.Clone(it.Value())) {
				return it.Close()
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return nil
}
