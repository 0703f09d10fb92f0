package task

import (
	"fmt"
	"log/slog"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
)

// nodeCtx is one node's topology.Context.
type nodeCtx struct {
	t *Task
	n *node
}

func (c *nodeCtx) Forward(rec topology.Record) error { return c.t.forward(c.n, rec) }

func (c *nodeCtx) ForwardTo(child string, rec topology.Record) error {
	for _, ch := range c.n.spec.Children {
		if ch.Name == child {
			return c.t.deliver(c.t.nodes[child], rec)
		}
	}
	return fmt.Errorf("%s has no child %q", c.n.spec.Name, child)
}

// Store returns the cache in front of the named store, stamping each
// update with the current record's timestamp; it satisfies state.Store so
// window stores can layer over it.
func (c *nodeCtx) Store(name string) state.Store {
	s, ok := c.t.stores[name]
	if !ok {
		panic(fmt.Sprintf("step %s uses undeclared store %q", c.n.spec.Name, name))
	}
	return stamped{Store: s.cache, s: s, t: c.t}
}

// stamped records when each key was last written, for the flush.
type stamped struct {
	state.Store
	s *store
	t *Task
}

// stamp updates a key's stamp in place when it has one: assigning through
// m[string(key)] would allocate the key string on every write.
func (st stamped) stamp(key []byte) {
	if p, ok := st.s.stamps[string(key)]; ok {
		*p = st.t.now
		return
	}
	now := st.t.now
	st.s.stamps[string(key)] = &now
}

func (st stamped) Put(key, value []byte) error {
	st.stamp(key)
	return st.Store.Put(key, value)
}

func (st stamped) Delete(key []byte) error {
	st.stamp(key)
	return st.Store.Delete(key)
}

func (st stamped) Write(batch []state.Mutation) error {
	for _, m := range batch {
		st.stamp(m.Key)
	}
	return st.Store.Write(batch)
}

func (c *nodeCtx) StreamTime() int64            { return c.t.streamTime }
func (c *nodeCtx) Partition() int32             { return c.t.cfg.ID.Partition }
func (c *nodeCtx) Count(metric string, n int64) { c.t.metrics[metric] += n }
func (c *nodeCtx) Logger() *slog.Logger         { return c.t.log }
