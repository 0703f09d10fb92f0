package group

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCommitFetchRoundTrip(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()

	// Unknown group: -1, no error, and no group is created.
	if off, epoch, md := fetch(t, c, "nope", "a", 0); off != -1 || epoch != -1 || md != "" {
		t.Fatalf("unknown group fetch: %d %d %q", off, epoch, md)
	}
	if n := len(c.ListGroups(ctx, kmsg.NewPtrListGroupsRequest()).Groups); n != 0 {
		t.Fatalf("fetch created %d groups", n)
	}

	// Simple commits (generation -1, no member) create an Empty group.
	wantCode(t, "v2 commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "s", "", -1, "a", 1, 42))), 0)
	wantCode(t, "v8 commit", commitCode(t, c.OffsetCommit(ctx, newCommit(8, "s", "", -1, "a", 2, 100))), 0)
	wantCode(t, "v0 commit", commitCode(t, c.OffsetCommit(ctx, newCommit(0, "s", "", -1, "b", 0, 7))), 0)
	for _, tc := range []struct {
		topic string
		part  int32
		off   int64
		epoch int32
	}{
		{"a", 1, 42, -1}, // v2 has no leader epoch
		{"a", 2, 100, 7},
		{"b", 0, 7, -1},
		{"a", 0, -1, -1},
	} {
		off, epoch, md := fetch(t, c, "s", tc.topic, tc.part)
		wantMD := "md"
		if tc.off == -1 {
			wantMD = ""
		}
		if off != tc.off || epoch != tc.epoch || md != wantMD {
			t.Fatalf("fetch %s/%d: %d %d %q, want %d %d %q", tc.topic, tc.part, off, epoch, md, tc.off, tc.epoch, wantMD)
		}
	}
	if d := describe(t, c, "s"); d.State != "Empty" || d.ProtocolType != "" || len(d.Members) != 0 {
		t.Fatalf("simple group %+v", d)
	}

	// The commits are in the log in Kafka's encoding.
	var found int
	for _, r := range l.records() {
		var k kmsg.OffsetCommitKey
		var v kmsg.OffsetCommitValue
		if k.ReadFrom(r.Key) != nil || k.Version != 1 || k.Group != "s" {
			continue
		}
		if err := v.ReadFrom(r.Value); err != nil || v.Version != 3 {
			t.Fatalf("offset value %+v: %v", v, err)
		}
		if k.Topic == "a" && k.Partition == 2 && (v.Offset != 100 || v.LeaderEpoch != 7 || v.Metadata != "md" || v.CommitTimestamp == 0) {
			t.Fatalf("offset record %+v", v)
		}
		found++
	}
	if found != 3 {
		t.Fatalf("%d offset records, want 3", found)
	}

	// OffsetFetch v8: several groups, all topics of one of them.
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	gs := kmsg.NewOffsetFetchRequestGroup()
	gs.Group = "s" // Topics nil: everything
	gn := kmsg.NewOffsetFetchRequestGroup()
	gn.Group = "nope"
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic = "a"
	gt.Partitions = []int32{0, 1}
	gn.Topics = []kmsg.OffsetFetchRequestGroupTopic{gt}
	r.Groups = []kmsg.OffsetFetchRequestGroup{gs, gn}
	resp := c.OffsetFetch(ctx, r)
	if len(resp.Groups) != 2 {
		t.Fatalf("v8 fetch %+v", resp)
	}
	var all []string
	for _, t := range resp.Groups[0].Topics {
		for _, p := range t.Partitions {
			all = append(all, fmt.Sprintf("%s/%d=%d", t.Topic, p.Partition, p.Offset))
		}
	}
	if got := strings.Join(all, " "); got != "a/1=42 a/2=100 b/0=7" {
		t.Fatalf("all offsets: %s", got)
	}
	nope := resp.Groups[1]
	if nope.ErrorCode != 0 || len(nope.Topics) != 1 || len(nope.Topics[0].Partitions) != 2 || nope.Topics[0].Partitions[1].Offset != -1 {
		t.Fatalf("unknown group in v8 fetch: %+v", nope)
	}

	// OffsetFetch v1 (kafka-go).
	r1 := kmsg.NewPtrOffsetFetchRequest()
	r1.Version = 1
	r1.Group = "s"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic = "a"
	ft.Partitions = []int32{1, 0}
	r1.Topics = []kmsg.OffsetFetchRequestTopic{ft}
	resp = c.OffsetFetch(ctx, r1)
	if ps := resp.Topics[0].Partitions; ps[0].Offset != 42 || ps[1].Offset != -1 || ps[1].ErrorCode != 0 {
		t.Fatalf("v1 fetch %+v", resp)
	}
}

func TestCommitValidation(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	big := strings.Repeat("x", 4097)

	r := newCommit(2, "s", "", -1, "a", 0, 1)
	tp := r.Topics[0]
	p := tp.Partitions[0]
	p2 := p
	p2.Partition = 1
	p2.Metadata = &big
	p3 := p
	p3.Partition = 3 // a has 3 partitions
	tp.Partitions = []kmsg.OffsetCommitRequestTopicPartition{p, p2, p3}
	tz := kmsg.NewOffsetCommitRequestTopic()
	tz.Topic = "zz"
	tz.Partitions = []kmsg.OffsetCommitRequestTopicPartition{p}
	r.Topics = []kmsg.OffsetCommitRequestTopic{tp, tz}
	resp := c.OffsetCommit(ctx, r)
	want := [][]int16{{0, kerr.OffsetMetadataTooLarge.Code, kerr.UnknownTopicOrPartition.Code}, {kerr.UnknownTopicOrPartition.Code}}
	for i, rt := range resp.Topics {
		for j, rp := range rt.Partitions {
			wantCode(t, fmt.Sprintf("%s/%d", rt.Topic, rp.Partition), rp.ErrorCode, want[i][j])
		}
	}
	if resp.ThrottleMillis != 0 {
		t.Fatalf("throttle %d", resp.ThrottleMillis)
	}

	// A failing log: retriable error and no change in memory.
	for _, tc := range []struct {
		err  error
		want int16
	}{
		{errDisk, kerr.CoordinatorNotAvailable.Code},
		{fmt.Errorf("raft: %w", kerr.NotLeaderForPartition), kerr.NotCoordinator.Code},
		{kerr.RequestTimedOut, kerr.CoordinatorNotAvailable.Code},
	} {
		l.setFail(tc.err)
		wantCode(t, "commit with a failing log", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "s", "", -1, "a", 0, 99))), tc.want)
		l.setFail(nil)
		if off, _, _ := fetch(t, c, "s", "a", 0); off != 1 {
			t.Fatalf("failed commit changed the offset to %d", off)
		}
	}
	// A failed commit creates no group.
	l.setFail(errDisk)
	c.OffsetCommit(ctx, newCommit(2, "fresh", "", -1, "a", 0, 1))
	l.setFail(nil)
	if d := describe(t, c, "fresh"); d.State != "Dead" {
		t.Fatalf("failed commit left group %+v", d)
	}
}

func TestCommitGenerations(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, false)
	sms, sgen := stableGroup(t, c, "st", 1, true)
	for _, tc := range []struct {
		name string
		req  *kmsg.OffsetCommitRequest
		want int16
	}{
		{"member, current generation", newCommit(2, "g", ms[0].id, gen, "a", 0, 10), 0},
		{"member v8", newCommit(8, "g", ms[1].id, gen, "a", 1, 11), 0},
		{"stale generation", newCommit(2, "g", ms[0].id, gen-1, "a", 0, 5), kerr.IllegalGeneration.Code},
		{"unknown member", newCommit(2, "g", "who", gen, "a", 0, 5), kerr.UnknownMemberID.Code},
		{"simple commit to a group with members", newCommit(2, "g", "", -1, "a", 0, 5), kerr.UnknownMemberID.Code},
		{"unknown group with a generation", newCommit(8, "nope", "m", 1, "a", 0, 5), kerr.IllegalGeneration.Code},
		{"unknown group with a generation v9", newCommit(9, "nope", "m", 1, "a", 0, 5), kerr.GroupIDNotFound.Code},
		{"static member", func() *kmsg.OffsetCommitRequest {
			r := newCommit(7, "st", sms[0].id, sgen, "a", 0, 5)
			r.InstanceID = sms[0].instance
			return r
		}(), 0},
		{"static member fenced", func() *kmsg.OffsetCommitRequest {
			r := newCommit(7, "st", "old-id", sgen, "a", 0, 6)
			r.InstanceID = sms[0].instance
			return r
		}(), kerr.FencedInstanceID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, commitCode(t, c.OffsetCommit(ctx, tc.req)), tc.want)
		})
	}
	if off, _, _ := fetch(t, c, "g", "a", 0); off != 10 {
		t.Fatalf("offset %d after rejected commits, want 10", off)
	}
	if d := describe(t, c, "nope"); d.State != "Dead" {
		t.Fatalf("rejected commit created group nope")
	}

	// During PreparingRebalance a member of the current generation may
	// still commit; during CompletingRebalance it may not.
	lead := joinAsync(c, ctx, newJoin(3, "g", ms[0].id))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	wantCode(t, "commit while preparing", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[1].id, gen, "a", 0, 20))), 0)
	j2 := c.JoinGroup(ctx, newJoin(3, "g", ms[1].id))
	recv(t, lead, "leader join")
	wantCode(t, "commit while completing", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[1].id, j2.Generation, "a", 0, 30))), kerr.RebalanceInProgress.Code)
	wantCode(t, "commit with the previous generation", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[1].id, gen, "a", 0, 30))), kerr.IllegalGeneration.Code)
}

func TestDeleteGroups(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	stableGroup(t, c, "g", 1, false)
	for _, tp := range []struct {
		topic string
		part  int32
	}{{"a", 0}, {"b", 1}} {
		wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "s", "", -1, tp.topic, tp.part, 5))), 0)
	}
	r := kmsg.NewPtrDeleteGroupsRequest()
	r.Version = 2
	r.Groups = []string{"g", "nope", "s"}
	resp := c.DeleteGroups(ctx, r)
	for i, want := range []int16{kerr.NonEmptyGroup.Code, kerr.GroupIDNotFound.Code, 0} {
		wantCode(t, "delete "+resp.Groups[i].Group, resp.Groups[i].ErrorCode, want)
	}
	if off, _, _ := fetch(t, c, "s", "a", 0); off != -1 {
		t.Fatalf("offset %d after delete", off)
	}
	if d := describe(t, c, "s"); d.State != "Dead" {
		t.Fatalf("deleted group described as %s", d.State)
	}
	// Tombstones for both offsets and the group.
	var tombstones []string
	for _, rec := range l.records() {
		if rec.Value != nil {
			continue
		}
		var k kmsg.OffsetCommitKey
		var gk kmsg.GroupMetadataKey
		switch {
		case rec.Key[1] == 1 && k.ReadFrom(rec.Key) == nil:
			tombstones = append(tombstones, fmt.Sprintf("%s:%s/%d", k.Group, k.Topic, k.Partition))
		case rec.Key[1] == 2 && gk.ReadFrom(rec.Key) == nil:
			tombstones = append(tombstones, gk.Group)
		}
	}
	if len(tombstones) != 3 || !strings.Contains(strings.Join(tombstones, " "), "s:a/0") || tombstones[2] != "s" {
		t.Fatalf("tombstones %v", tombstones)
	}
	// The name can be used again.
	wantCode(t, "commit after delete", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "s", "", -1, "a", 0, 9))), 0)
	if off, _, _ := fetch(t, c, "s", "a", 0); off != 9 {
		t.Fatalf("offset %d after recreate", off)
	}

	// A group that emptied can be deleted.
	ms, _ := stableGroup(t, c, "e", 1, false)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Group, lr.MemberID = "e", ms[0].id
	wantCode(t, "leave", c.LeaveGroup(ctx, lr).ErrorCode, 0)
	r.Groups = []string{"e"}
	wantCode(t, "delete emptied group", c.DeleteGroups(ctx, r).Groups[0].ErrorCode, 0)
}

func TestOffsetDelete(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 1, false) // subscribes to topic a
	for _, tp := range []struct {
		topic string
		part  int32
	}{{"a", 0}, {"b", 0}, {"b", 1}} {
		wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[0].id, gen, tp.topic, tp.part, 5))), 0)
	}
	del := func(group string, topics map[string][]int32) *kmsg.OffsetDeleteResponse {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		for _, name := range []string{"a", "b", "zz"} {
			parts, ok := topics[name]
			if !ok {
				continue
			}
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = name
			for _, p := range parts {
				rp := kmsg.NewOffsetDeleteRequestTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		return c.OffsetDelete(ctx, r)
	}
	wantCode(t, "unknown group", del("nope", map[string][]int32{"a": {0}}).ErrorCode, kerr.GroupIDNotFound.Code)

	resp := del("g", map[string][]int32{"a": {0}, "b": {0, 1}, "zz": {0}})
	wantCode(t, "top level", resp.ErrorCode, 0)
	want := map[string]int16{"a/0": kerr.GroupSubscribedToTopic.Code, "b/0": 0, "b/1": 0, "zz/0": kerr.UnknownTopicOrPartition.Code}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			key := fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)
			wantCode(t, key, rp.ErrorCode, want[key])
		}
	}
	if off, _, _ := fetch(t, c, "g", "a", 0); off != 5 {
		t.Fatalf("subscribed offset deleted")
	}
	if off, _, _ := fetch(t, c, "g", "b", 1); off != -1 {
		t.Fatalf("offset not deleted")
	}
	tombs := 0
	for _, rec := range l.records() {
		if rec.Value == nil {
			tombs++
		}
	}
	if tombs != 2 {
		t.Fatalf("%d tombstones, want 2", tombs)
	}

	// A non-consumer group with members cannot have offsets deleted.
	r := newJoin(3, "connect", "")
	r.ProtocolType = "connect"
	syncAll(t, c, 3, "connect", []*kmsg.JoinGroupResponse{c.JoinGroup(ctx, r)})
	wantCode(t, "non-consumer group", del("connect", map[string][]int32{"a": {0}}).ErrorCode, kerr.NonEmptyGroup.Code)

	// A simple group's offsets can be.
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "s", "", -1, "a", 0, 5))), 0)
	resp = del("s", map[string][]int32{"a": {0}})
	wantCode(t, "simple delete", resp.Topics[0].Partitions[0].ErrorCode, 0)
	if off, _, _ := fetch(t, c, "s", "a", 0); off != -1 {
		t.Fatalf("simple offset not deleted")
	}
}

func TestListAndDescribeGroups(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := WithClientInfo(context.Background(), "client-x", "/127.0.0.1")
	ms, _ := stableGroup(t, c, "stable", 2, false)
	pms, _ := stableGroup(t, c, "prep", 2, false)
	pj := newJoin(3, "prep", pms[0].id)
	pj.RebalanceTimeoutMillis = 600_000
	joinAsync(c, ctx, pj) // does not complete: pms[1] does not rejoin
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "prep") == "PreparingRebalance" })
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "simple", "", -1, "a", 0, 1))), 0)

	list := func(version int16, states, types []string) string {
		r := kmsg.NewPtrListGroupsRequest()
		r.Version = version
		r.StatesFilter = states
		r.TypesFilter = types
		resp := c.ListGroups(ctx, r)
		wantCode(t, "list", resp.ErrorCode, 0)
		var out []string
		for _, g := range resp.Groups {
			out = append(out, fmt.Sprintf("%s:%s:%s:%s", g.Group, g.ProtocolType, g.GroupState, g.GroupType))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name          string
		version       int16
		states, types []string
		want          string
	}{
		{"all", 5, nil, nil, "prep:consumer:PreparingRebalance:classic simple::Empty:classic stable:consumer:Stable:classic"},
		{"state filter", 4, []string{"stable"}, nil, "stable:consumer:Stable:classic"},
		{"states filter", 4, []string{"Empty", "PreparingRebalance"}, nil, "prep:consumer:PreparingRebalance:classic simple::Empty:classic"},
		{"states ignored before v4", 3, []string{"Stable"}, nil, "prep:consumer:PreparingRebalance:classic simple::Empty:classic stable:consumer:Stable:classic"},
		{"type classic", 5, nil, []string{"Classic"}, "prep:consumer:PreparingRebalance:classic simple::Empty:classic stable:consumer:Stable:classic"},
		{"type consumer", 5, nil, []string{"consumer"}, ""},
		{"no match", 4, []string{"Dead"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.version, tc.states, tc.types); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}

	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 6
	r.Groups = []string{"stable", "prep", "simple", "nope"}
	resp := c.DescribeGroups(ctx, r)
	st, pr, si, no := resp.Groups[0], resp.Groups[1], resp.Groups[2], resp.Groups[3]
	if st.State != "Stable" || st.Protocol != "range" || st.ProtocolType != "consumer" || len(st.Members) != 2 ||
		st.Members[0].MemberID != ms[0].id || string(st.Members[1].MemberAssignment) != string(assignmentFor(ms[1].id)) ||
		string(st.Members[0].ProtocolMetadata) != string(sub("a")) {
		t.Fatalf("stable group %+v", st)
	}
	if pr.State != "PreparingRebalance" || pr.Protocol != "" || len(pr.Members) != 2 || len(pr.Members[0].MemberAssignment) != 0 {
		t.Fatalf("rebalancing group %+v", pr)
	}
	if si.State != "Empty" || si.ProtocolType != "" || len(si.Members) != 0 {
		t.Fatalf("simple group %+v", si)
	}
	if no.ErrorCode != kerr.GroupIDNotFound.Code || no.State != "" {
		t.Fatalf("unknown group v6 %+v", no)
	}
	r.Version = 5
	if no := c.DescribeGroups(ctx, r).Groups[3]; no.ErrorCode != 0 || no.State != "Dead" {
		t.Fatalf("unknown group v5 %+v", no)
	}
}

func TestOffsetExpiry(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	now := time.Now()
	day := 24 * time.Hour

	// A simple group: offsets expire by commit time.
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "s", "", -1, "a", 0, 1))), 0)
	// A retention time on a v2 commit sets an expire timestamp.
	rc := newCommit(2, "r", "", -1, "a", 0, 1)
	rc.RetentionTimeMillis = 1000
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, rc)), 0)
	// A Stable consumer group subscribed to a: its b offsets expire by
	// commit time, its a offsets never.
	ms, gen := stableGroup(t, c, "g", 1, false)
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[0].id, gen, "a", 0, 1))), 0)
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "g", ms[0].id, gen, "b", 0, 1))), 0)
	// An emptied consumer group: offsets expire a retention after it
	// became Empty.
	ems, egen := stableGroup(t, c, "e", 1, false)
	wantCode(t, "commit", commitCode(t, c.OffsetCommit(ctx, newCommit(2, "e", ems[0].id, egen, "a", 0, 1))), 0)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Group, lr.MemberID = "e", ems[0].id
	wantCode(t, "leave", c.LeaveGroup(ctx, lr).ErrorCode, 0)

	c.expireOffsets(now.Add(2 * time.Second))
	if off, _, _ := fetch(t, c, "r", "a", 0); off != -1 {
		t.Fatalf("offset with an expire timestamp kept")
	}
	if off, _, _ := fetch(t, c, "s", "a", 0); off != 1 {
		t.Fatalf("simple offset expired early")
	}
	c.expireOffsets(now.Add(8 * day))
	for _, tc := range []struct {
		group, topic string
		want         int64
	}{{"s", "a", -1}, {"g", "a", 1}, {"g", "b", -1}, {"e", "a", -1}} {
		if off, _, _ := fetch(t, c, tc.group, tc.topic, 0); off != tc.want {
			t.Fatalf("%s %s: offset %d, want %d", tc.group, tc.topic, off, tc.want)
		}
	}
	for _, name := range []string{"s", "r", "e"} {
		if d := describe(t, c, name); d.State != "Dead" {
			t.Fatalf("expired group %s is %s", name, d.State)
		}
	}
	eventually(t, 5*time.Second, "group tombstone for e", func() bool {
		metas := l.groupMetas(t, "e")
		return len(metas) > 0 && metas[len(metas)-1] == nil
	})
}
