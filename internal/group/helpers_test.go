package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memLog is an in-memory Log. Like a partition, it keeps each record's
// batch identity (producer id of a transactional batch, or a marker), so
// tests can replay it as the broker does (replayAll).
type memLog struct {
	mu      sync.Mutex
	parts   map[int32][]logEntry
	fail    error
	appends int
	epochs  map[int64]int16 // producer id -> latest epoch, as a producer table keeps
}

// logEntry is one record of a partition: pid -1 for a plain record; a
// marker (pid's COMMIT or ABORT) when marker is set.
type logEntry struct {
	part   int32
	rec    Record
	pid    int64
	marker bool
	commit bool
}

func newMemLog() *memLog {
	return &memLog{parts: make(map[int32][]logEntry), epochs: make(map[int64]int16)}
}

func (l *memLog) Append(ctx context.Context, p int32, recs []Record) error {
	return l.append(ctx, p, -1, -1, recs)
}

// AppendTxn appends like Append and, as a partition's producer table does,
// refuses an epoch older than the producer's latest with
// kerr.InvalidProducerEpoch.
func (l *memLog) AppendTxn(ctx context.Context, p int32, producerID int64, epoch int16, recs []Record) error {
	return l.append(ctx, p, producerID, epoch, recs)
}

func (l *memLog) append(ctx context.Context, p int32, pid int64, epoch int16, recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.fail != nil {
		return l.fail
	}
	if pid >= 0 {
		if e, ok := l.epochs[pid]; ok && epoch < e {
			return kerr.InvalidProducerEpoch
		}
		l.epochs[pid] = epoch
	}
	l.appends++
	for _, r := range recs {
		l.parts[p] = append(l.parts[p], logEntry{part: p, rec: Record{Key: clone(r.Key), Value: clone(r.Value)}, pid: pid})
	}
	return nil
}

// marker appends pid's COMMIT or ABORT marker to partition p, as the broker
// does before calling CompleteTxn; a newer epoch fences older ones.
func (l *memLog) marker(p int32, pid int64, epoch int16, commit bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.epochs[pid]; !ok || epoch > e {
		l.epochs[pid] = epoch
	}
	l.parts[p] = append(l.parts[p], logEntry{part: p, pid: pid, marker: true, commit: commit})
}

func (l *memLog) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

// entries returns every entry, partition by partition, each in log order.
func (l *memLog) entries() []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logEntry
	for p := range int32(100) {
		out = append(out, l.parts[p]...)
	}
	return out
}

// records returns every record but markers, partition by partition, each
// in log order.
func (l *memLog) records() []Record {
	var out []Record
	for _, e := range l.entries() {
		if !e.marker {
			out = append(out, e.rec)
		}
	}
	return out
}

// txnRecords counts the records written in transactional batches.
func (l *memLog) txnRecords() int {
	n := 0
	for _, e := range l.entries() {
		if !e.marker && e.pid >= 0 {
			n++
		}
	}
	return n
}

// groupMetas decodes every GroupMetadata record of group (nil value for a
// tombstone).
func (l *memLog) groupMetas(t *testing.T, group string) []*kmsg.GroupMetadataValue {
	t.Helper()
	var out []*kmsg.GroupMetadataValue
	for _, r := range l.records() {
		var k kmsg.GroupMetadataKey
		if r.Key[1] != 2 || k.ReadFrom(r.Key) != nil || k.Group != group {
			continue
		}
		if r.Value == nil {
			out = append(out, nil)
			continue
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(r.Value); err != nil {
			t.Fatalf("decoding group metadata: %v", err)
		}
		out = append(out, &v)
	}
	return out
}

type topicMap map[string]int32

func (m topicMap) PartitionCount(t string) (int32, bool) { n, ok := m[t]; return n, ok }

var testTopics = topicMap{"a": 3, "b": 2}

func testConfig() Config {
	return Config{
		InitialRebalanceDelay: -1,
		MinSessionTimeout:     time.Millisecond,
		MaxSessionTimeout:     time.Hour,
		Logger:                slog.New(slog.DiscardHandler),
	}
}

func newTest(t testing.TB, cfg Config) (*Coordinator, *memLog) {
	t.Helper()
	l := newMemLog()
	c := New(cfg, l, testTopics)
	t.Cleanup(c.Close)
	return c, l
}

// sub encodes a consumer subscription to topics.
func sub(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinReq returns a JoinGroup request with a 10s session, a 5s rebalance
// timeout and protocol "range" subscribing to topic a.
func newJoin(version int16, group, member string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.SessionTimeoutMillis = 10_000
	r.RebalanceTimeoutMillis = 5_000
	r.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = sub("a")
	r.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	return r
}

func withProtocols(r *kmsg.JoinGroupRequest, names ...string) *kmsg.JoinGroupRequest {
	r.Protocols = nil
	for _, n := range names {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = n
		p.Metadata = sub("a")
		r.Protocols = append(r.Protocols, p)
	}
	return r
}

func newSync(version int16, group, member string, gen int32) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.Generation = gen
	return r
}

func newHeartbeat(version int16, group, member string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.Generation = gen
	return r
}

func newCommit(version int16, group, member string, gen int32, topic string, part int32, off int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = version
	r.Group = group
	r.MemberID = member
	r.Generation = gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = part
	p.Offset = off
	p.LeaderEpoch = 7
	p.Metadata = kmsg.StringPtr("md")
	t.Partitions = []kmsg.OffsetCommitRequestTopicPartition{p}
	r.Topics = []kmsg.OffsetCommitRequestTopic{t}
	return r
}

func commitCode(t *testing.T, resp *kmsg.OffsetCommitResponse) int16 {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected commit response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetch returns the committed offset of group/topic/partition via
// OffsetFetch v5.
func fetch(t *testing.T, c *Coordinator, group, topic string, part int32) (int64, int32, string) {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 5
	r.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{part}
	r.Topics = []kmsg.OffsetFetchRequestTopic{rt}
	resp := c.OffsetFetch(context.Background(), r)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected fetch response: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch partition error %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset, p.LeaderEpoch, *p.Metadata
}

func describe(t *testing.T, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{group}
	resp := c.DescribeGroups(context.Background(), r)
	if len(resp.Groups) != 1 {
		t.Fatalf("describe returned %d groups", len(resp.Groups))
	}
	return resp.Groups[0]
}

func stateOf(t *testing.T, c *Coordinator, group string) string {
	t.Helper()
	return describe(t, c, group).State
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got error %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

// joinAsync runs JoinGroup in a goroutine.
func joinAsync(c *Coordinator, ctx context.Context, r *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- c.JoinGroup(ctx, r) }()
	return ch
}

func syncAsync(c *Coordinator, ctx context.Context, r *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- c.SyncGroup(ctx, r) }()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// assignmentFor is what test leaders assign a member.
func assignmentFor(memberID string) []byte { return []byte("assigned:" + memberID) }

// syncAll has every member of a completed join phase sync (the leader
// assigning assignmentFor(member) to each) and returns the assignment each
// got, by member id.
func syncAll(t *testing.T, c *Coordinator, version int16, group string, joins []*kmsg.JoinGroupResponse) map[string][]byte {
	t.Helper()
	chans := make([]<-chan *kmsg.SyncGroupResponse, len(joins))
	for i, j := range joins {
		wantCode(t, "join", j.ErrorCode, 0)
		r := newSync(version, group, j.MemberID, j.Generation)
		if j.LeaderID == j.MemberID {
			for _, m := range j.Members {
				a := kmsg.NewSyncGroupRequestGroupAssignment()
				a.MemberID = m.MemberID
				a.MemberAssignment = assignmentFor(m.MemberID)
				r.GroupAssignment = append(r.GroupAssignment, a)
			}
		}
		chans[i] = syncAsync(c, context.Background(), r)
	}
	out := make(map[string][]byte)
	for i, ch := range chans {
		s := recv(t, ch, "sync")
		wantCode(t, "sync", s.ErrorCode, 0)
		out[joins[i].MemberID] = s.MemberAssignment
	}
	return out
}

type stableMember struct {
	id       string
	instance *string
}

// stableGroup builds a Stable group of n dynamic members (JoinGroup v3) or,
// with instances, static members (v5), one member at a time, and returns its
// members in join order and its generation.
func stableGroup(t *testing.T, c *Coordinator, group string, n int, static bool) ([]stableMember, int32) {
	t.Helper()
	version := int16(3)
	if static {
		version = 5
	}
	var members []stableMember
	var gen int32
	for k := range n {
		var inst *string
		if static {
			inst = kmsg.StringPtr(fmt.Sprintf("instance-%d", k))
		}
		nr := newJoin(version, group, "")
		nr.InstanceID = inst
		chans := []<-chan *kmsg.JoinGroupResponse{joinAsync(c, context.Background(), nr)}
		if k > 0 {
			eventually(t, 5*time.Second, "rebalance to start", func() bool { return stateOf(t, c, group) == "PreparingRebalance" })
			for _, m := range members {
				r := newJoin(version, group, m.id)
				r.InstanceID = m.instance
				chans = append(chans, joinAsync(c, context.Background(), r))
			}
		}
		var joins []*kmsg.JoinGroupResponse
		for _, ch := range chans {
			joins = append(joins, recv(t, ch, "join"))
		}
		got := syncAll(t, c, version, group, joins)
		members = append(members, stableMember{id: joins[0].MemberID, instance: inst})
		gen = joins[0].Generation
		if len(got) != k+1 {
			t.Fatalf("got %d assignments, want %d", len(got), k+1)
		}
	}
	if s := stateOf(t, c, group); s != "Stable" {
		t.Fatalf("group state %s, want Stable", s)
	}
	return members, gen
}

var errDisk = errors.New("disk on fire")
