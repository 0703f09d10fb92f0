package txn

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// memLog is an in-memory Log.
type memLog struct {
	mu    sync.Mutex
	parts map[int32][]Record
	fail  error
}

func newMemLog() *memLog { return &memLog{parts: make(map[int32][]Record)} }

func (l *memLog) Append(ctx context.Context, p int32, recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.fail != nil {
		return l.fail
	}
	for _, r := range recs {
		l.parts[p] = append(l.parts[p], Record{Key: clone(r.Key), Value: clone(r.Value)})
	}
	return nil
}

func (l *memLog) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

func (l *memLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, recs := range l.parts {
		n += len(recs)
	}
	return n
}

func (l *memLog) partition(p int32) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.parts[p]...)
}

// history decodes every record of id, in log order; a tombstone is a meta
// in state Dead.
func (l *memLog) history(t *testing.T, c *Coordinator, id string) []meta {
	t.Helper()
	var out []meta
	for _, r := range l.partition(c.PartitionFor(id)) {
		k, _, err := decodeKey(r.Key)
		if err != nil {
			t.Fatalf("decoding key: %v", err)
		}
		if k != id {
			continue
		}
		if r.Value == nil {
			out = append(out, meta{state: stateDead})
			continue
		}
		m, err := decodeValue(r.Value)
		if err != nil {
			t.Fatalf("decoding value: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// fakeMarkers records marker requests; fail decides each partition's result.
type fakeMarkers struct {
	mu   sync.Mutex
	reqs []MarkerRequest
	fail func(tp TopicPartition, attempt int) error
	seen map[TopicPartition]int
}

func (f *fakeMarkers) WriteMarkers(ctx context.Context, m MarkerRequest) map[TopicPartition]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m.Partitions = append([]TopicPartition(nil), m.Partitions...)
	f.reqs = append(f.reqs, m)
	if f.seen == nil {
		f.seen = make(map[TopicPartition]int)
	}
	errs := make(map[TopicPartition]error)
	for _, tp := range m.Partitions {
		f.seen[tp]++
		errs[tp] = nil
		if f.fail != nil {
			errs[tp] = f.fail(tp, f.seen[tp])
		}
	}
	return errs
}

func (f *fakeMarkers) setFail(fail func(TopicPartition, int) error) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func (f *fakeMarkers) requests() []MarkerRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]MarkerRequest(nil), f.reqs...)
}

func (f *fakeMarkers) attempts(tp TopicPartition) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[tp]
}

// failAll makes every marker fail retriably.
func failAll(TopicPartition, int) error { return kerr.NotLeaderForPartition }

type fakeIDs struct {
	next atomic.Int64
	fail atomic.Pointer[error]
}

func (f *fakeIDs) AllocateProducerID(context.Context) (int64, error) {
	if err := f.fail.Load(); err != nil {
		return -1, *err
	}
	return f.next.Add(1) + 999, nil
}

type fakeTopics map[string]int32

func (f fakeTopics) PartitionCount(topic string) (int32, bool) {
	n, ok := f[topic]
	return n, ok
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	c       *Coordinator
	log     *memLog
	markers *fakeMarkers
	ids     *fakeIDs
	clock   *clock
}

const testCoordEpoch = 7

var testTopics = fakeTopics{"a": 3, "b": 2}

// newEnv returns a coordinator serving every partition, on a fake clock,
// whose sweeps run only when a test calls them.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{log: newMemLog(), markers: &fakeMarkers{}, ids: &fakeIDs{}, clock: &clock{t: time.UnixMilli(1_700_000_000_000)}}
	e.c = e.newCoordinator(t)
	for p := range e.c.cfg.Partitions {
		e.c.Elect(p, testCoordEpoch)
	}
	return e
}

// newCoordinator returns a coordinator sharing e's fakes, serving nothing.
func (e *env) newCoordinator(t *testing.T) *Coordinator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AbortInterval, cfg.ExpireInterval = time.Hour, time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Now = e.clock.now
	c := New(cfg, e.log, e.markers, e.ids, testTopics)
	c.retryMin, c.retryMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(c.Close)
	return c
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) state(id string) string {
	return e.c.Describe([]string{id})[0].State
}

func (e *env) waitState(t *testing.T, id, state string) {
	t.Helper()
	eventually(t, id+" "+state, func() bool { return e.state(id) == state })
}

// begin initialises id and adds parts, returning its producer id and epoch.
func (e *env) begin(t *testing.T, id string, parts ...TopicPartition) (int64, int16) {
	t.Helper()
	pid, epoch, err := e.c.InitProducerID(context.Background(), id, 60_000, -1, -1)
	if err != nil {
		t.Fatalf("InitProducerID(%s): %v", id, err)
	}
	if len(parts) > 0 {
		mustAdd(t, e.c, id, pid, epoch, parts...)
	}
	return pid, epoch
}

func mustAdd(t *testing.T, c *Coordinator, id string, pid int64, epoch int16, parts ...TopicPartition) {
	t.Helper()
	for tp, err := range c.AddPartitions(context.Background(), id, pid, epoch, parts) {
		if err != nil {
			t.Fatalf("AddPartitions(%s) %v: %v", id, tp, err)
		}
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if got != want { // kerr values are sentinels
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func tp(topic string, p int32) TopicPartition { return TopicPartition{topic, p} }
