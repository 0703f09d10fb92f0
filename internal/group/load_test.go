package group

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func replay(t *testing.T, from *memLog) *Coordinator {
	t.Helper()
	c, _ := newTest(t, testConfig())
	for _, r := range from.records() {
		if err := c.Load(r.Key, r.Value); err != nil {
			t.Fatalf("Load: %v", err)
		}
	}
	return c
}

func TestLoadReplay(t *testing.T) {
	c1, l1 := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c1, "g", 2, false)
	wantCode(t, "commit", commitCode(t, c1.OffsetCommit(ctx, newCommit(8, "g", ms[0].id, gen, "a", 0, 10))), 0)
	wantCode(t, "commit", commitCode(t, c1.OffsetCommit(ctx, newCommit(8, "g", ms[1].id, gen, "a", 1, 11))), 0)
	wantCode(t, "commit", commitCode(t, c1.OffsetCommit(ctx, newCommit(8, "g", ms[1].id, gen, "a", 1, 12))), 0)
	wantCode(t, "commit", commitCode(t, c1.OffsetCommit(ctx, newCommit(2, "s", "", -1, "b", 0, 5))), 0)
	wantCode(t, "commit", commitCode(t, c1.OffsetCommit(ctx, newCommit(2, "s", "", -1, "b", 1, 6))), 0)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "s"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "b"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}
	od.Topics = []kmsg.OffsetDeleteRequestTopic{odt}
	wantCode(t, "offset delete", c1.OffsetDelete(ctx, od).Topics[0].Partitions[0].ErrorCode, 0)
	wantCode(t, "commit", commitCode(t, c1.OffsetCommit(ctx, newCommit(2, "d", "", -1, "a", 2, 1))), 0)
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"d"}
	wantCode(t, "delete", c1.DeleteGroups(ctx, dg).Groups[0].ErrorCode, 0)
	sms, sgen := stableGroup(t, c1, "st", 1, true)
	// A group that emptied keeps its type and generation.
	ems, _ := stableGroup(t, c1, "e", 1, false)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Group, lr.MemberID = "e", ems[0].id
	wantCode(t, "leave", c1.LeaveGroup(ctx, lr).ErrorCode, 0)
	eventually(t, 5*time.Second, "empty record", func() bool { return len(l1.groupMetas(t, "e")) == 2 })
	c1.Close()

	c2 := replay(t, l1)
	for _, tc := range []struct {
		group, topic string
		part         int32
		want         int64
	}{{"g", "a", 0, 10}, {"g", "a", 1, 12}, {"s", "b", 0, 5}, {"s", "b", 1, -1}, {"d", "a", 2, -1}} {
		off, epoch, md := fetch(t, c2, tc.group, tc.topic, tc.part)
		if off != tc.want {
			t.Fatalf("%s %s/%d: offset %d, want %d", tc.group, tc.topic, tc.part, off, tc.want)
		}
		if off != -1 && tc.group == "g" && (epoch != 7 || md != "md") {
			t.Fatalf("restored epoch %d metadata %q", epoch, md)
		}
	}
	l := c2.ListGroups(ctx, kmsg.NewPtrListGroupsRequest())
	var names []string
	for _, g := range l.Groups {
		names = append(names, g.Group+":"+g.GroupState)
	}
	if got := names; len(got) != 4 || got[0] != "e:Empty" || got[1] != "g:Stable" || got[2] != "s:Empty" || got[3] != "st:Stable" {
		t.Fatalf("groups after replay %v", got)
	}

	// Group metadata: members, protocol, assignments, leader, generation.
	d := describe(t, c2, "g")
	if d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 2 {
		t.Fatalf("restored group %+v", d)
	}
	for i, m := range d.Members {
		if m.MemberID != ms[i].id || !bytes.Equal(m.MemberAssignment, assignmentFor(ms[i].id)) || !bytes.Equal(m.ProtocolMetadata, sub("a")) {
			t.Fatalf("restored member %+v", m)
		}
	}
	g := c2.lockGroup("g", false)
	if g.generation != gen || g.leader != ms[0].id {
		t.Errorf("restored generation %d leader %s, want %d %s", g.generation, g.leader, gen, ms[0].id)
	}
	g.mu.Unlock()
	g = c2.lockGroup("e", false)
	if g.generation != 2 || g.protocolType != "consumer" {
		t.Errorf("restored empty group generation %d type %q", g.generation, g.protocolType)
	}
	g.mu.Unlock()

	// Members carry on without rejoining.
	wantCode(t, "heartbeat", c2.Heartbeat(ctx, newHeartbeat(0, "g", ms[1].id, gen)).ErrorCode, 0)
	wantCode(t, "stale heartbeat", c2.Heartbeat(ctx, newHeartbeat(0, "g", ms[1].id, gen-1)).ErrorCode, kerr.IllegalGeneration.Code)
	wantCode(t, "commit", commitCode(t, c2.OffsetCommit(ctx, newCommit(2, "g", ms[0].id, gen, "a", 0, 13))), 0)
	s := c2.SyncGroup(ctx, newSync(0, "g", ms[1].id, gen))
	wantCode(t, "sync", s.ErrorCode, 0)
	if !bytes.Equal(s.MemberAssignment, assignmentFor(ms[1].id)) {
		t.Fatalf("restored assignment %q", s.MemberAssignment)
	}

	// The static mapping is restored: a restart replaces the member
	// without a rebalance, and the old id is fenced.
	sj := newJoin(5, "st", "")
	sj.InstanceID = sms[0].instance
	j := c2.JoinGroup(ctx, sj)
	wantCode(t, "static restart", j.ErrorCode, 0)
	if j.Generation != sgen || j.MemberID == sms[0].id {
		t.Fatalf("static restart after replay %+v", j)
	}
	hb := newHeartbeat(3, "st", sms[0].id, sgen)
	hb.InstanceID = sms[0].instance
	wantCode(t, "fenced", c2.Heartbeat(ctx, hb).ErrorCode, kerr.FencedInstanceID.Code)

	// A rebalance after replay continues the generations.
	lead := joinAsync(c2, ctx, newJoin(3, "g", ms[0].id))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c2, "g") == "PreparingRebalance" })
	j2 := c2.JoinGroup(ctx, newJoin(3, "g", ms[1].id))
	j1 := recv(t, lead, "leader join")
	if j1.Generation != gen+1 || j2.Generation != gen+1 || j1.LeaderID != ms[0].id || len(j1.Members) != 2 {
		t.Fatalf("rebalance after replay %+v %+v", j1, j2)
	}
}

func TestLoadSessionTimersStartOnFirstRequest(t *testing.T) {
	src := newTestGroupValue("m-1", 50)
	c, _ := newTest(t, testConfig())
	if err := c.Load(groupKey("g"), src); err != nil {
		t.Fatal(err)
	}
	g := c.lockGroup("g", false)
	if g.state != stateStable || g.members["m-1"] == nil || g.members["m-1"].timer != nil {
		t.Fatalf("loaded group state %s, members %v", g.state, g.members)
	}
	g.mu.Unlock()
	// The first request arms the timers; nobody heartbeats, so the member
	// expires.
	c.ListGroups(context.Background(), kmsg.NewPtrListGroupsRequest())
	eventually(t, 5*time.Second, "restored member to expire", func() bool { return stateOf(t, c, "g") == "Empty" })
}

func newTestGroupValue(member string, sessionMs int32) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = "consumer"
	v.Generation = 4
	v.Protocol = kmsg.StringPtr("range")
	v.Leader = kmsg.StringPtr(member)
	v.CurrentStateTimestamp = time.Now().UnixMilli()
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID = member
	m.ClientID = "cli"
	m.ClientHost = "/1.2.3.4"
	m.SessionTimeoutMillis = sessionMs
	m.RebalanceTimeoutMillis = 1000
	m.Subscription = sub("a")
	m.Assignment = []byte("assignment")
	v.Members = []kmsg.GroupMetadataValueMember{m}
	return v.AppendTo(nil)
}

func TestLoadRecords(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		key, value []byte
		wantErr    bool
	}{
		{"empty key", nil, nil, true},
		{"one byte key", []byte{0}, nil, true},
		{"truncated offset key", offsetKey("g", "a", 0)[:5], []byte{0, 3}, true},
		{"truncated offset value", offsetKey("g", "a", 0), []byte{0, 3, 0}, true},
		{"bad offset value version", offsetKey("g", "a", 0), []byte{0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true},
		{"truncated group value", groupKey("g"), []byte{0, 3, 0, 8}, true},
		{"KIP-848 record", []byte{0, 3, 0, 1, 'x'}, []byte{1, 2, 3}, false},
		{"tombstone of unknown offset", offsetKey("x", "a", 0), nil, false},
		{"tombstone of unknown group", groupKey("x"), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Load(tc.key, tc.value); (err != nil) != tc.wantErr {
				t.Fatalf("Load error %v, want error %v", err, tc.wantErr)
			}
		})
	}
	if n := len(c.ListGroups(ctx, kmsg.NewPtrListGroupsRequest()).Groups); n != 0 {
		t.Fatalf("bad records created %d groups", n)
	}

	// Offset then tombstone; group metadata then tombstone.
	val := offsetValue(offset{offset: 3, leaderEpoch: 1, metadata: "m", commitTs: 1, expireTs: -1})
	for _, step := range []struct{ key, value []byte }{
		{offsetKey("o", "a", 0), val},
		{groupKey("gm"), newTestGroupValue("m-1", 30_000)},
	} {
		if err := c.Load(step.key, step.value); err != nil {
			t.Fatal(err)
		}
	}
	if off, _, _ := fetch(t, c, "o", "a", 0); off != 3 {
		t.Fatalf("loaded offset %d", off)
	}
	if d := describe(t, c, "gm"); d.State != "Stable" || len(d.Members) != 1 || d.Members[0].ClientHost != "/1.2.3.4" {
		t.Fatalf("loaded group %+v", d)
	}
	if err := c.Load(offsetKey("o", "a", 0), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(groupKey("gm"), nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"o", "gm"} {
		if d := describe(t, c, name); d.State != "Dead" {
			t.Fatalf("group %s after tombstone: %s", name, d.State)
		}
	}
	// A v1 offset value (with expire timestamp) and a v0 key.
	v1 := offsetValue(offset{offset: 8, metadata: "m", commitTs: 1, expireTs: 5})
	k0 := kmsg.NewOffsetCommitKey()
	k0.Group, k0.Topic, k0.Partition = "old", "a", 1
	if err := c.Load(k0.AppendTo(nil), v1); err != nil {
		t.Fatal(err)
	}
	if off, epoch, _ := fetch(t, c, "old", "a", 1); off != 8 || epoch != -1 {
		t.Fatalf("v1 offset %d epoch %d", off, epoch)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(offsetKey("g", "a", 0), offsetValue(offset{offset: 1, leaderEpoch: 2, metadata: "m", commitTs: 3, expireTs: -1}))
	f.Add(offsetKey("g", "a", 0), offsetValue(offset{offset: 1, metadata: "m", commitTs: 3, expireTs: 9}))
	f.Add(offsetKey("g", "a", 0), []byte(nil))
	f.Add(groupKey("g"), newTestGroupValue("m-1", 10))
	f.Add(groupKey("g"), []byte(nil))
	f.Add([]byte{0, 2}, []byte{0, 4, 0})
	f.Add([]byte{0, 3}, []byte{})
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		cfg := testConfig()
		c := New(cfg, newMemLog(), testTopics)
		defer c.Close()
		_ = c.Load(key, value)
		_ = c.Load(key, nil)
		_ = c.Load(key, value)
		ctx := context.Background()
		// Whatever was loaded must be describable, listable and fetchable.
		lg := c.ListGroups(ctx, kmsg.NewPtrListGroupsRequest())
		for _, g := range lg.Groups {
			d := kmsg.NewPtrDescribeGroupsRequest()
			d.Groups = []string{g.Group}
			c.DescribeGroups(ctx, d)
			r := kmsg.NewPtrOffsetFetchRequest()
			r.Version = 8
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = g.Group
			r.Groups = []kmsg.OffsetFetchRequestGroup{rg}
			c.OffsetFetch(ctx, r)
			c.Heartbeat(ctx, newHeartbeat(0, g.Group, "m-1", 4))
		}
	})
}

func TestUnload(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, false)
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[0].id, gen, "a", 0, 4))), 0)
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "other", "", -1, "a", 0, 4))), 0)
	if c.PartitionFor("g") == c.PartitionFor("other") {
		t.Fatal("test groups share a partition")
	}
	waiting := joinAsync(c, ctx, newJoin(3, "g", ms[0].id))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	c.Unload(c.PartitionFor("g"))
	wantCode(t, "join waiting at unload", recv(t, waiting, "join").ErrorCode, kerr.NotCoordinator.Code)
	if d := describe(t, c, "g"); d.State != "Dead" {
		t.Fatalf("unloaded group is %s", d.State)
	}
	if off, _, _ := fetch(t, c, "other", "a", 0); off != 4 {
		t.Fatalf("other partition's group lost its offset")
	}
	// Loading the partition again brings the group back.
	for _, r := range l.records() {
		if err := c.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if d := describe(t, c, "g"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("reloaded group %+v", d)
	}
	if off, _, _ := fetch(t, c, "g", "a", 0); off != 4 {
		t.Fatalf("reloaded offset %d", off)
	}
}

type idTopics struct{ topicMap }

func (idTopics) TopicName(id [16]byte) (string, bool) {
	if id[0] == 'a' {
		return "a", true
	}
	return "", false
}

func (idTopics) TopicID(name string) ([16]byte, bool) {
	if name == "a" {
		return [16]byte{'a'}, true
	}
	return [16]byte{}, false
}

func TestTopicIDs(t *testing.T) {
	cfg := testConfig()
	c := New(cfg, newMemLog(), idTopics{testTopics})
	t.Cleanup(c.Close)
	ctx := context.Background()
	r := newCommit(10, "s", "", -1, "", 1, 77)
	r.Topics[0].TopicID = [16]byte{'a'}
	t2 := r.Topics[0]
	t2.TopicID = [16]byte{'z'}
	r.Topics = append(r.Topics, t2)
	resp := c.OffsetCommit(ctx, r)
	wantCode(t, "commit by id", resp.Topics[0].Partitions[0].ErrorCode, 0)
	wantCode(t, "commit by unknown id", resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicID.Code)
	if off, _, _ := fetch(t, c, "s", "a", 1); off != 77 {
		t.Fatalf("offset %d", off)
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 10
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = "s"
	f.Groups = []kmsg.OffsetFetchRequestGroup{g}
	fr := c.OffsetFetch(ctx, f)
	if tp := fr.Groups[0].Topics; len(tp) != 1 || tp[0].TopicID != [16]byte{'a'} || tp[0].Partitions[0].Offset != 77 {
		t.Fatalf("v10 fetch %+v", fr)
	}

	// Without TopicIDs, ids are unknown.
	c2, _ := newTest(t, cfg)
	resp = c2.OffsetCommit(ctx, r)
	wantCode(t, "commit by id without ids", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID.Code)
}
