package group

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTxnCommit(version int16, group string, pid int64, epoch int16, topic string, part int32, off int64) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = version
	r.TransactionalID = "tx"
	r.Group = group
	r.ProducerID, r.ProducerEpoch = pid, epoch
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	p.Partition = part
	p.Offset = off
	p.LeaderEpoch = 3
	p.Metadata = kmsg.StringPtr("txn")
	t.Partitions = []kmsg.TxnOffsetCommitRequestTopicPartition{p}
	r.Topics = []kmsg.TxnOffsetCommitRequestTopic{t}
	return r
}

// asMember makes a v3 request carry a member's identity (KIP-447).
func asMember(r *kmsg.TxnOffsetCommitRequest, member string, instance *string, gen int32) *kmsg.TxnOffsetCommitRequest {
	r.MemberID, r.InstanceID, r.Generation = member, instance, gen
	return r
}

func txnCode(t *testing.T, resp *kmsg.TxnOffsetCommitResponse) int16 {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected txn commit response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func txnCommit(t *testing.T, c *Coordinator, r *kmsg.TxnOffsetCommitRequest, want int16) {
	t.Helper()
	wantCode(t, fmt.Sprintf("txn commit v%d %s pid %d", r.Version, r.Group, r.ProducerID), txnCode(t, c.TxnOffsetCommit(context.Background(), r)), want)
}

// fetchStable is OffsetFetch v7 with RequireStable (stable set) or without,
// for one partition: its offset and error.
func fetchStable(t *testing.T, c *Coordinator, group, topic string, part int32, stable bool) (int64, int16) {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	r.RequireStable = stable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{part}
	r.Topics = []kmsg.OffsetFetchRequestTopic{rt}
	resp := c.OffsetFetch(context.Background(), r)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected fetch response: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// wantOffset checks the committed offset (plain fetch) and what a stable
// fetch answers: the same offset, or UNSTABLE_OFFSET_COMMIT when unstable.
func wantOffset(t *testing.T, c *Coordinator, group, topic string, part int32, want int64, unstable bool) {
	t.Helper()
	if off, code := fetchStable(t, c, group, topic, part, false); off != want || code != 0 {
		t.Fatalf("%s %s/%d: offset %d (%v), want %d", group, topic, part, off, kerr.ErrorForCode(code), want)
	}
	off, code := fetchStable(t, c, group, topic, part, true)
	switch {
	case unstable && (code != kerr.UnstableOffsetCommit.Code || off != -1):
		t.Fatalf("%s %s/%d: stable fetch got %d (%v), want UNSTABLE_OFFSET_COMMIT", group, topic, part, off, kerr.ErrorForCode(code))
	case !unstable && (code != 0 || off != want):
		t.Fatalf("%s %s/%d: stable fetch got %d (%v), want %d", group, topic, part, off, kerr.ErrorForCode(code), want)
	}
}

// complete writes pid's marker on group's partition and settles it, as the
// broker does.
func complete(c *Coordinator, l *memLog, group string, pid int64, epoch int16, commit bool) {
	p := c.PartitionFor(group)
	l.marker(p, pid, epoch, commit)
	c.CompleteTxn(p, pid, commit)
}

// replayAll replays l into a new coordinator as the broker does: records of
// transactional batches through LoadTxn, markers through LoadMarker.
func replayAll(t *testing.T, l *memLog) (*Coordinator, *memLog) {
	t.Helper()
	c, l2 := newTest(t, testConfig())
	for _, e := range l.entries() {
		var err error
		switch {
		case e.marker:
			c.LoadMarker(e.part, e.pid, e.commit)
		case e.pid >= 0:
			err = c.LoadTxn(e.pid, e.rec.Key, e.rec.Value)
		default:
			err = c.Load(e.rec.Key, e.rec.Value)
		}
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	l2.mu.Lock()
	for p, es := range l.parts {
		l2.parts[p] = append([]logEntry(nil), es...)
	}
	for pid, e := range l.epochs {
		l2.epochs[pid] = e
	}
	l2.mu.Unlock()
	return c, l2
}

func TestTxnOffsetCommitVisibleOnlyAfterCommit(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(8, "g", "", -1, "a", 0, 3))), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 10), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 1, 11), 0)
	if n := l.txnRecords(); n != 2 {
		t.Fatalf("%d transactional records written, want 2", n)
	}
	// Invisible: the last committed offset, or nothing; stable fetches
	// answer UNSTABLE_OFFSET_COMMIT; partitions without pending offsets
	// are unaffected.
	wantOffset(t, c, "g", "a", 0, 3, true)
	wantOffset(t, c, "g", "a", 1, -1, true)
	wantOffset(t, c, "g", "a", 2, -1, false)
	// Fetching all topics lists committed partitions; stable, those with
	// pending offsets are unstable.
	all := kmsg.NewPtrOffsetFetchRequest()
	all.Version, all.Group, all.RequireStable = 7, "g", true
	if ft := c.OffsetFetch(ctx, all).Topics; len(ft) != 1 || len(ft[0].Partitions) != 1 ||
		ft[0].Partitions[0].ErrorCode != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("stable fetch of all topics: %+v", ft)
	}

	// Another partition's marker, or another producer's, settles nothing.
	c.CompleteTxn((c.PartitionFor("g")+1)%50, 7, true)
	c.CompleteTxn(c.PartitionFor("g"), 8, true)
	wantOffset(t, c, "g", "a", 0, 3, true)

	complete(c, l, "g", 7, 0, true)
	wantOffset(t, c, "g", "a", 0, 10, false)
	wantOffset(t, c, "g", "a", 1, 11, false)
	_, ep, md := fetch(t, c, "g", "a", 0)
	if ep != 3 || md != "txn" {
		t.Fatalf("committed txn offset has epoch %d metadata %q", ep, md)
	}
	// A second marker (a retried WriteTxnMarkers) changes nothing.
	complete(c, l, "g", 7, 0, true)
	wantOffset(t, c, "g", "a", 0, 10, false)
}

func TestTxnOffsetCommitAbortDrops(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(8, "g", "", -1, "a", 0, 3))), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 10), 0)
	// A group that exists only through pending offsets stays, and is not
	// deleted as empty (DeleteGroups, expiry).
	txnCommit(t, c, newTxnCommit(0, "only-txn", 7, 0, "a", 0, 10), 0)
	if s := stateOf(t, c, "only-txn"); s != "Empty" {
		t.Fatalf("group with only pending offsets is %s", s)
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"only-txn", "g"}
	for _, g := range c.DeleteGroups(ctx, dg).Groups {
		wantCode(t, "delete "+g.Group, g.ErrorCode, kerr.NonEmptyGroup.Code)
	}
	c.expireOffsets(time.Now().Add(30 * 24 * time.Hour))
	if s := stateOf(t, c, "only-txn"); s != "Empty" {
		t.Fatalf("expiry removed a group with pending offsets: %s", s)
	}
	wantOffset(t, c, "g", "a", 0, 3, true) // kept though expired: its partition has pending offsets

	complete(c, l, "g", 7, 0, false)
	wantOffset(t, c, "g", "a", 0, 3, false)
	if c.PartitionFor("only-txn") != c.PartitionFor("g") {
		if s := stateOf(t, c, "only-txn"); s != "Empty" {
			t.Fatalf("another partition's abort settled group only-txn: %s", s)
		}
		complete(c, l, "only-txn", 7, 0, false)
	}
	if s := stateOf(t, c, "only-txn"); s != "Dead" {
		t.Fatalf("group left with nothing after the abort is %s", s)
	}
	for _, g := range c.DeleteGroups(ctx, dg).Groups {
		if g.Group == "g" {
			wantCode(t, "delete g after the abort", g.ErrorCode, 0)
		}
	}
}

// TestTxnOffsetCommitLogOrder: a committed transaction's offset replaces a
// plain commit only if it was written after it, as Kafka compares record
// offsets.
func TestTxnOffsetCommitLogOrder(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 10), 0)
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(8, "g", "", -1, "a", 0, 20))), 0)
	wantOffset(t, c, "g", "a", 0, 20, true)
	complete(c, l, "g", 7, 0, true)
	wantOffset(t, c, "g", "a", 0, 20, false)

	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(8, "g", "", -1, "a", 0, 25))), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 30), 0)
	complete(c, l, "g", 7, 0, true)
	wantOffset(t, c, "g", "a", 0, 30, false)

	// Two producers' transactions on one group settle independently.
	txnCommit(t, c, newTxnCommit(3, "g", 8, 0, "a", 1, 40), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 9, 0, "a", 2, 50), 0)
	complete(c, l, "g", 9, 0, true)
	wantOffset(t, c, "g", "a", 1, -1, true)
	wantOffset(t, c, "g", "a", 2, 50, false)
	complete(c, l, "g", 8, 0, true)
	wantOffset(t, c, "g", "a", 1, 40, false)

	// The same replays to the same offsets.
	c2, _ := replayAll(t, l)
	for p, want := range map[int32]int64{0: 30, 1: 40, 2: 50} {
		wantOffset(t, c2, "g", "a", p, want, false)
	}
}

// TestTxnOffsetCommitFencing covers KIP-447's generation fencing (v3+),
// the producer epoch fencing done by the log, and request validation.
func TestTxnOffsetCommitFencing(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ms, gen := stableGroup(t, c, "g", 1, false)
	m := ms[0].id
	txnCommit(t, c, asMember(newTxnCommit(3, "g", 7, 0, "a", 0, 1), m, nil, gen), 0)
	txnCommit(t, c, asMember(newTxnCommit(3, "g", 7, 0, "a", 0, 1), m, nil, gen-1), kerr.IllegalGeneration.Code)
	txnCommit(t, c, asMember(newTxnCommit(3, "g", 7, 0, "a", 0, 1), m, nil, gen+1), kerr.IllegalGeneration.Code)
	txnCommit(t, c, asMember(newTxnCommit(3, "g", 7, 0, "a", 0, 1), "stranger", nil, gen), kerr.UnknownMemberID.Code)
	txnCommit(t, c, asMember(newTxnCommit(3, "g", 7, 0, "a", 0, 1), "", nil, gen), kerr.UnknownMemberID.Code)
	// Without member and generation (v0-v2, or v3 from a producer outside
	// the group), a transactional commit is accepted whatever the group.
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 1), 0)
	txnCommit(t, c, newTxnCommit(2, "g", 7, 0, "a", 0, 1), 0)
	// v0-v2 have no member fields: whatever the struct holds is ignored.
	txnCommit(t, c, asMember(newTxnCommit(2, "g", 7, 0, "a", 0, 1), "stranger", nil, gen+5), 0)
	// An unknown group with a generation.
	txnCommit(t, c, asMember(newTxnCommit(3, "nope", 7, 0, "a", 0, 1), "m", nil, 1), kerr.IllegalGeneration.Code)

	sms, sgen := stableGroup(t, c, "s", 1, true)
	txnCommit(t, c, asMember(newTxnCommit(3, "s", 7, 0, "a", 0, 1), sms[0].id, sms[0].instance, sgen), 0)
	txnCommit(t, c, asMember(newTxnCommit(3, "s", 7, 0, "a", 0, 1), "other", sms[0].instance, sgen), kerr.FencedInstanceID.Code)
	txnCommit(t, c, asMember(newTxnCommit(3, "s", 7, 0, "a", 0, 1), sms[0].id, kmsg.StringPtr("ghost"), sgen), kerr.UnknownMemberID.Code)

	// The producer's epoch: a newer one fences the older.
	txnCommit(t, c, newTxnCommit(3, "g", 7, 1, "a", 0, 1), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 1), kerr.InvalidProducerEpoch.Code)
	txnCommit(t, c, newTxnCommit(3, "g", -1, 0, "a", 0, 1), kerr.InvalidProducerIDMapping.Code)

	// Validation.
	txnCommit(t, c, newTxnCommit(3, "g", 7, 1, "zz", 0, 1), kerr.UnknownTopicOrPartition.Code)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 1, "a", 3, 1), kerr.UnknownTopicOrPartition.Code)
	txnCommit(t, c, newTxnCommit(3, "", 7, 1, "a", 0, 1), kerr.InvalidGroupID.Code)
	big := newTxnCommit(3, "g", 7, 1, "a", 0, 1)
	big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(strings.Repeat("x", maxMetadataBytes+1))
	txnCommit(t, c, big, kerr.OffsetMetadataTooLarge.Code)
	wantOffset(t, c, "g", "a", 0, -1, true)

	c.Close()
	txnCommit(t, c, newTxnCommit(3, "g", 7, 1, "a", 0, 1), kerr.NotCoordinator.Code)
}

func TestTxnOffsetCommitAppendFailure(t *testing.T) {
	c, l := newTest(t, testConfig())
	l.setFail(kerr.NotLeaderForPartition)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 1), kerr.NotCoordinator.Code)
	l.setFail(nil)
	if s := stateOf(t, c, "g"); s != "Dead" {
		t.Fatalf("failed txn commit left group %s", s)
	}
	wantOffset(t, c, "g", "a", 0, -1, false)
}

// TestTxnOffsetReplay restores pending and settled transactional offsets
// from the log: open transactions stay pending (and settle on a later
// marker), committed ones are visible, aborted ones gone, tombstones drop
// pending offsets.
func TestTxnOffsetReplay(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(8, "g", "", -1, "a", 0, 1))), 0)
	txnCommit(t, c, newTxnCommit(3, "g", 7, 0, "a", 0, 10), 0) // committed
	txnCommit(t, c, newTxnCommit(3, "g", 8, 0, "a", 1, 20), 0) // aborted
	txnCommit(t, c, newTxnCommit(3, "g", 9, 0, "a", 2, 30), 0) // open
	txnCommit(t, c, newTxnCommit(3, "g", 9, 0, "b", 0, 31), 0) // open, then deleted
	txnCommit(t, c, newTxnCommit(3, "o", 9, 0, "a", 0, 40), 0) // open, the group's only offsets
	complete(c, l, "g", 7, 0, true)
	complete(c, l, "g", 8, 0, false)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "b"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = []kmsg.OffsetDeleteRequestTopic{odt}
	wantCode(t, "offset delete of a pending offset", c.OffsetDelete(ctx, od).Topics[0].Partitions[0].ErrorCode, 0)
	check := func(c *Coordinator) {
		t.Helper()
		wantOffset(t, c, "g", "a", 0, 10, false)
		wantOffset(t, c, "g", "a", 1, -1, false)
		wantOffset(t, c, "g", "a", 2, -1, true)
		wantOffset(t, c, "g", "b", 0, -1, false)
		wantOffset(t, c, "o", "a", 0, -1, true)
		if s := stateOf(t, c, "o"); s != "Empty" {
			t.Fatalf("group o is %s", s)
		}
	}
	check(c)
	c.Close()

	c2, l2 := replayAll(t, l)
	check(c2)
	// The open transaction commits after the restart.
	complete(c2, l2, "g", 9, 0, true)
	if c2.PartitionFor("o") != c2.PartitionFor("g") {
		complete(c2, l2, "o", 9, 0, true)
	}
	wantOffset(t, c2, "g", "a", 2, 30, false)
	wantOffset(t, c2, "g", "b", 0, -1, false)
	wantOffset(t, c2, "o", "a", 0, 40, false)

	c3, _ := replayAll(t, l2)
	wantOffset(t, c3, "g", "a", 0, 10, false)
	wantOffset(t, c3, "g", "a", 2, 30, false)
	wantOffset(t, c3, "o", "a", 0, 40, false)

	// Unreadable transactional records are refused without effect.
	if err := c3.LoadTxn(9, []byte{0, 1, 0xff}, []byte{0, 3}); err == nil {
		t.Fatal("LoadTxn took a malformed key")
	}
}

// TestTxnOffsetCommitBatches: concurrent plain and transactional commits on
// one partition are written in batches of one kind (a producer's, or plain),
// each group's records in its commits' order.
func TestTxnOffsetCommitBatches(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	// Groups on one partition.
	var groups []string
	for i := 0; len(groups) < 4; i++ {
		if name := fmt.Sprint("g", i); c.PartitionFor(name) == c.PartitionFor("g0") {
			groups = append(groups, name)
		}
	}
	var wg sync.WaitGroup
	for i, g := range groups {
		pid := int64(100 + i)
		wg.Go(func() {
			for n := range 20 {
				if resp := c.TxnOffsetCommit(ctx, newTxnCommit(3, g, pid, 0, "a", 0, int64(n))); txnCode(t, resp) != 0 {
					t.Errorf("txn commit: %v", kerr.ErrorForCode(txnCode(t, resp)))
				}
				if resp := c.OffsetCommit(ctx, newCommit(8, g, "", -1, "a", 1, int64(n))); commitCode(t, resp) != 0 {
					t.Errorf("commit: %v", kerr.ErrorForCode(commitCode(t, resp)))
				}
			}
		})
	}
	wg.Wait()
	last := make(map[string]int64)
	for _, e := range l.entries() {
		k, o, err := decodeOffset(e.rec.Key, e.rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		i := -1
		for j, g := range groups {
			if g == k.Group {
				i = j
			}
		}
		switch {
		case k.Partition == 0 && e.pid != int64(100+i):
			t.Fatalf("txn offset of %s in a batch of producer %d", k.Group, e.pid)
		case k.Partition == 1 && e.pid != -1:
			t.Fatalf("plain offset of %s in a batch of producer %d", k.Group, e.pid)
		}
		key := fmt.Sprint(k.Group, k.Partition)
		if prev, ok := last[key]; ok && o.offset != prev+1 {
			t.Fatalf("%s: offset %d written after %d", key, o.offset, prev)
		}
		last[key] = o.offset
	}
	for i, g := range groups {
		complete(c, l, g, int64(100+i), 0, true)
		wantOffset(t, c, g, "a", 0, 19, false)
		wantOffset(t, c, g, "a", 1, 19, false)
	}
}
