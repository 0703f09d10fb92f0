package group

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestPartitionFor(t *testing.T) {
	for _, tc := range []struct {
		group string
		hash  int32 // Java's String.hashCode
		part  int32 // of 50
	}{
		{"", 0, 0},
		{"hello", 99162322, 22},
		{"polygenelubricants", -1 << 31, 0}, // Integer.MIN_VALUE: Utils.abs gives 0
		{"é", 233, 233 % 50},
		{"\U0001F600", 1772899, 1772899 % 50}, // a surrogate pair
		{"Aa", 2112, 2112 % 50},
		{"BB", 2112, 2112 % 50},
	} {
		if h := javaStringHash(tc.group); h != tc.hash {
			t.Errorf("hash(%q) = %d, want %d", tc.group, h, tc.hash)
		}
		if p := KeyPartition(tc.group, 50); p != tc.part {
			t.Errorf("KeyPartition(%q) = %d, want %d", tc.group, p, tc.part)
		}
	}
	c, _ := newTest(t, testConfig())
	for _, g := range []string{"a", "group-1", "polygenelubricants", "\xff"} {
		if p := c.PartitionFor(g); p < 0 || p >= 50 {
			t.Errorf("PartitionFor(%q) = %d out of range", g, p)
		}
	}
}

func TestJoinSingleMember(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := WithClientInfo(context.Background(), "cli", "/10.0.0.1")
	j := c.JoinGroup(ctx, newJoin(3, "g", ""))
	wantCode(t, "join", j.ErrorCode, 0)
	if j.Generation != 1 || j.LeaderID != j.MemberID || len(j.Members) != 1 || *j.Protocol != "range" {
		t.Fatalf("unexpected join response %+v", j)
	}
	if j.MemberID[:4] != "cli-" {
		t.Fatalf("member id %q does not start with the client id", j.MemberID)
	}
	if !bytes.Equal(j.Members[0].ProtocolMetadata, sub("a")) {
		t.Fatalf("leader got metadata %q", j.Members[0].ProtocolMetadata)
	}
	if s := stateOf(t, c, "g"); s != "CompletingRebalance" {
		t.Fatalf("state %s", s)
	}
	got := syncAll(t, c, 3, "g", []*kmsg.JoinGroupResponse{j})
	if !bytes.Equal(got[j.MemberID], assignmentFor(j.MemberID)) {
		t.Fatalf("assignment %q", got[j.MemberID])
	}
	d := describe(t, c, "g")
	if d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 1 {
		t.Fatalf("describe %+v", d)
	}
	m := d.Members[0]
	if m.ClientID != "cli" || m.ClientHost != "/10.0.0.1" || !bytes.Equal(m.MemberAssignment, assignmentFor(j.MemberID)) {
		t.Fatalf("describe member %+v", m)
	}
	wantCode(t, "heartbeat", c.Heartbeat(ctx, newHeartbeat(0, "g", j.MemberID, 1)).ErrorCode, 0)

	// The completed rebalance was persisted with the assignment.
	metas := l.groupMetas(t, "g")
	if len(metas) != 1 {
		t.Fatalf("%d group metadata records, want 1", len(metas))
	}
	v := metas[0]
	if v.Version != 3 || v.Generation != 1 || *v.Protocol != "range" || *v.Leader != j.MemberID || len(v.Members) != 1 ||
		!bytes.Equal(v.Members[0].Assignment, assignmentFor(j.MemberID)) || v.Members[0].ClientID != "cli" {
		t.Fatalf("group metadata record %+v", v)
	}
}

// simMember is a simulated consumer: join, sync, heartbeat, rejoin on
// rebalance, like a real client's loop.
type simMember struct {
	c       *Coordinator
	group   string
	version int16
	hb      time.Duration

	mu         sync.Mutex
	id         string
	gen        int32
	leader     bool
	assignment []byte
	stable     bool
	err        error
}

func (s *simMember) snapshot() (id string, gen int32, leader, stable bool, assignment []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.gen, s.leader, s.stable, s.assignment, s.err
}

func (s *simMember) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *simMember) run(ctx context.Context) {
	id := ""
	for ctx.Err() == nil {
		j := s.c.JoinGroup(ctx, newJoin(s.version, s.group, id))
		switch j.ErrorCode {
		case 0:
		case kerr.MemberIDRequired.Code:
			id = j.MemberID
			continue
		case kerr.UnknownMemberID.Code:
			id = ""
			continue
		case kerr.RebalanceInProgress.Code:
			continue
		default:
			s.fail(kerr.ErrorForCode(j.ErrorCode))
			return
		}
		id = j.MemberID
		sr := newSync(s.version, s.group, id, j.Generation)
		if j.LeaderID == id {
			for _, m := range j.Members {
				a := kmsg.NewSyncGroupRequestGroupAssignment()
				a.MemberID = m.MemberID
				a.MemberAssignment = assignmentFor(m.MemberID)
				sr.GroupAssignment = append(sr.GroupAssignment, a)
			}
		}
		sy := s.c.SyncGroup(ctx, sr)
		switch sy.ErrorCode {
		case 0:
		case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
			continue
		case kerr.UnknownMemberID.Code:
			id = ""
			continue
		default:
			s.fail(kerr.ErrorForCode(sy.ErrorCode))
			return
		}
		s.mu.Lock()
		s.id, s.gen, s.leader, s.assignment, s.stable = id, j.Generation, j.LeaderID == id, sy.MemberAssignment, true
		s.mu.Unlock()

		tick := time.NewTicker(s.hb)
	heartbeat:
		for {
			select {
			case <-ctx.Done():
				tick.Stop()
				return
			case <-tick.C:
				h := s.c.Heartbeat(ctx, newHeartbeat(s.version, s.group, id, j.Generation))
				if h.ErrorCode != 0 {
					break heartbeat
				}
			}
		}
		tick.Stop()
		s.mu.Lock()
		s.stable = false
		s.mu.Unlock()
	}
}

func TestJoinConcurrentMembers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		version int16
	}{
		{"one member v5", 1, 5},
		{"three members v5", 3, 5},
		{"three members v2 (kafka-go)", 3, 2},
		{"five members v9", 5, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.InitialRebalanceDelay = 50 * time.Millisecond
			c, _ := newTest(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			sims := make([]*simMember, tc.n)
			for i := range sims {
				sims[i] = &simMember{c: c, group: "g", version: tc.version, hb: 10 * time.Millisecond}
				wg.Go(func() { sims[i].run(ctx) })
			}
			eventually(t, 10*time.Second, "all members stable in one generation", func() bool {
				d := describe(t, c, "g")
				if d.State != "Stable" || len(d.Members) != tc.n {
					return false
				}
				var gen int32 = -1
				leaders := 0
				for _, s := range sims {
					id, g, leader, stable, a, err := s.snapshot()
					if err != nil {
						t.Fatalf("member failed: %v", err)
					}
					if !stable || (gen != -1 && g != gen) || !bytes.Equal(a, assignmentFor(id)) {
						return false
					}
					gen = g
					if leader {
						leaders++
					}
				}
				return leaders == 1
			})
			ids := map[string]bool{}
			for _, s := range sims {
				id, _, _, _, _, _ := s.snapshot()
				ids[id] = true
			}
			if len(ids) != tc.n {
				t.Fatalf("member ids not distinct: %v", ids)
			}
		})
	}
}

func TestMemberIDRequired(t *testing.T) {
	for v := int16(0); v <= 9; v++ {
		for _, static := range []bool{false, true} {
			if static && v < 5 {
				continue
			}
			c, _ := newTest(t, testConfig())
			r := newJoin(v, "g", "")
			if static {
				r.InstanceID = kmsg.StringPtr("inst")
			}
			j := c.JoinGroup(context.Background(), r)
			if v >= 4 && !static {
				wantCode(t, "first join", j.ErrorCode, kerr.MemberIDRequired.Code)
				if j.MemberID == "" {
					t.Fatalf("v%d: MEMBER_ID_REQUIRED without a member id", v)
				}
				if s := stateOf(t, c, "g"); s != "Empty" {
					t.Fatalf("v%d: pending member changed state to %s", v, s)
				}
				id := j.MemberID
				j = c.JoinGroup(context.Background(), newJoin(v, "g", id))
				if j.MemberID != id {
					t.Fatalf("v%d: rejoin got member id %q, want %q", v, j.MemberID, id)
				}
			}
			wantCode(t, "join", j.ErrorCode, 0)
			if j.MemberID == "" || j.Generation != 1 || j.LeaderID != j.MemberID {
				t.Fatalf("v%d static=%v: join response %+v", v, static, j)
			}
			if static && j.MemberID[:5] != "inst-" {
				t.Fatalf("static member id %q does not start with the instance id", j.MemberID)
			}
		}
	}
}

func TestJoinValidation(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, _ := stableGroup(t, c, "g", 1, false)
	for _, tc := range []struct {
		name string
		req  func() *kmsg.JoinGroupRequest
		want int16
	}{
		{"empty group id", func() *kmsg.JoinGroupRequest { return newJoin(5, "", "") }, kerr.InvalidGroupID.Code},
		{"session too small", func() *kmsg.JoinGroupRequest {
			r := newJoin(5, "x", "")
			r.SessionTimeoutMillis = 0
			return r
		}, kerr.InvalidSessionTimeout.Code},
		{"session too large", func() *kmsg.JoinGroupRequest {
			r := newJoin(5, "x", "")
			r.SessionTimeoutMillis = 2 * 3600 * 1000
			return r
		}, kerr.InvalidSessionTimeout.Code},
		{"no protocols", func() *kmsg.JoinGroupRequest { return withProtocols(newJoin(5, "x", "")) }, kerr.InconsistentGroupProtocol.Code},
		{"no protocol type", func() *kmsg.JoinGroupRequest {
			r := newJoin(5, "x", "")
			r.ProtocolType = ""
			return r
		}, kerr.InconsistentGroupProtocol.Code},
		{"other protocol type", func() *kmsg.JoinGroupRequest {
			r := newJoin(3, "g", "")
			r.ProtocolType = "connect"
			return r
		}, kerr.InconsistentGroupProtocol.Code},
		{"no common protocol", func() *kmsg.JoinGroupRequest { return withProtocols(newJoin(3, "g", ""), "roundrobin") }, kerr.InconsistentGroupProtocol.Code},
		{"unknown member, unknown group", func() *kmsg.JoinGroupRequest { return newJoin(5, "nope", "m-1") }, kerr.UnknownMemberID.Code},
		{"unknown member", func() *kmsg.JoinGroupRequest { return newJoin(5, "g", "m-1") }, kerr.UnknownMemberID.Code},
		{"unknown instance", func() *kmsg.JoinGroupRequest {
			r := newJoin(5, "g", ms[0].id)
			r.InstanceID = kmsg.StringPtr("who")
			return r
		}, kerr.UnknownMemberID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, c.JoinGroup(ctx, tc.req()).ErrorCode, tc.want)
		})
	}
	// Failed joins leave no group behind.
	l := c.ListGroups(ctx, kmsg.NewPtrListGroupsRequest())
	if len(l.Groups) != 1 || l.Groups[0].Group != "g" {
		t.Fatalf("groups after failed joins: %+v", l.Groups)
	}
}

func TestProtocolSelection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		protos [][]string // per member, in preference order; the first member leads
		want   string
	}{
		{"single", [][]string{{"range"}}, "range"},
		{"first preference", [][]string{{"sticky", "range"}}, "sticky"},
		{"common only", [][]string{{"sticky", "range"}, {"range", "roundrobin"}}, "range"},
		{"majority", [][]string{{"range", "sticky"}, {"sticky", "range"}, {"sticky", "range"}}, "sticky"},
		{"tie to leader", [][]string{{"range", "sticky"}, {"sticky", "range"}}, "range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.InitialRebalanceDelay = time.Hour // the first join waits: everyone joins one generation
			c, _ := newTest(t, cfg)
			ctx := context.Background()
			var chans []<-chan *kmsg.JoinGroupResponse
			for _, ps := range tc.protos {
				r := withProtocols(newJoin(3, "g", ""), ps...)
				r.RebalanceTimeoutMillis = 5_000
				chans = append(chans, joinAsync(c, ctx, r))
				n := len(chans)
				eventually(t, 5*time.Second, "member to join", func() bool { return len(describe(t, c, "g").Members) == n })
			}
			// End the initial delay: members trigger completion by
			// running the timer path directly.
			g := c.lockGroup("g", false)
			g.initialDelay = false
			g.maybeCompleteJoin()
			g.mu.Unlock()
			var leader string
			for _, ch := range chans {
				j := recv(t, ch, "join")
				wantCode(t, "join", j.ErrorCode, 0)
				if *j.Protocol != tc.want {
					t.Fatalf("protocol %s, want %s", *j.Protocol, tc.want)
				}
				leader = j.LeaderID
			}
			if d := describe(t, c, "g"); d.Members[0].MemberID != leader {
				t.Fatalf("leader %s is not the first member", leader)
			}
		})
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 100 * time.Millisecond
	c, _ := newTest(t, cfg)
	ctx := context.Background()
	start := time.Now()
	a := joinAsync(c, ctx, newJoin(3, "g", ""))
	b := joinAsync(c, ctx, newJoin(3, "g", ""))
	ja, jb := recv(t, a, "join a"), recv(t, b, "join b")
	if time.Since(start) < cfg.InitialRebalanceDelay {
		t.Fatalf("join completed before the initial rebalance delay")
	}
	if ja.Generation != 1 || jb.Generation != 1 || ja.LeaderID != jb.LeaderID {
		t.Fatalf("joins %+v %+v", ja, jb)
	}
	syncAll(t, c, 3, "g", []*kmsg.JoinGroupResponse{ja, jb})

	// A rebalance of a non-empty group does not wait the delay: once both
	// rejoin it completes.
	j1 := joinAsync(c, ctx, newJoin(3, "g", ja.LeaderID))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	other := ja.MemberID
	if other == ja.LeaderID {
		other = jb.MemberID
	}
	start = time.Now()
	j2 := joinAsync(c, ctx, newJoin(3, "g", other))
	r1, r2 := recv(t, j1, "rejoin 1"), recv(t, j2, "rejoin 2")
	if r1.Generation != 2 || r2.Generation != 2 {
		t.Fatalf("rejoin generations %d %d", r1.Generation, r2.Generation)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("rebalance of a non-empty group waited")
	}
}

func TestHeartbeatErrors(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, false)
	sms, sgen := stableGroup(t, c, "s", 1, true)
	inst := sms[0].instance
	for _, tc := range []struct {
		name string
		req  *kmsg.HeartbeatRequest
		want int16
	}{
		{"ok", newHeartbeat(0, "g", ms[0].id, gen), 0},
		{"ok v4", newHeartbeat(4, "g", ms[1].id, gen), 0},
		{"empty group id", newHeartbeat(0, "", ms[0].id, gen), kerr.InvalidGroupID.Code},
		{"unknown group", newHeartbeat(0, "nope", ms[0].id, gen), kerr.UnknownMemberID.Code},
		{"unknown member", newHeartbeat(0, "g", "who", gen), kerr.UnknownMemberID.Code},
		{"old generation", newHeartbeat(0, "g", ms[0].id, gen-1), kerr.IllegalGeneration.Code},
		{"future generation", newHeartbeat(0, "g", ms[0].id, gen+1), kerr.IllegalGeneration.Code},
		{"static ok", func() *kmsg.HeartbeatRequest {
			r := newHeartbeat(3, "s", sms[0].id, sgen)
			r.InstanceID = inst
			return r
		}(), 0},
		{"static fenced", func() *kmsg.HeartbeatRequest {
			r := newHeartbeat(3, "s", "someone-else", sgen)
			r.InstanceID = inst
			return r
		}(), kerr.FencedInstanceID.Code},
		{"static unknown instance", func() *kmsg.HeartbeatRequest {
			r := newHeartbeat(3, "s", sms[0].id, sgen)
			r.InstanceID = kmsg.StringPtr("other")
			return r
		}(), kerr.UnknownMemberID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, c.Heartbeat(ctx, tc.req).ErrorCode, tc.want) })
	}

	// During a rebalance: REBALANCE_IN_PROGRESS; in CompletingRebalance: OK.
	lead := joinAsync(c, ctx, newJoin(3, "g", ms[0].id))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	wantCode(t, "heartbeat during rebalance", c.Heartbeat(ctx, newHeartbeat(0, "g", ms[1].id, gen)).ErrorCode, kerr.RebalanceInProgress.Code)
	wantCode(t, "sync during rebalance", c.SyncGroup(ctx, newSync(0, "g", ms[1].id, gen)).ErrorCode, kerr.RebalanceInProgress.Code)
	j2 := c.JoinGroup(ctx, newJoin(3, "g", ms[1].id))
	j1 := recv(t, lead, "leader rejoin")
	if j1.Generation != gen+1 || j2.Generation != gen+1 {
		t.Fatalf("generations %d %d", j1.Generation, j2.Generation)
	}
	wantCode(t, "heartbeat in CompletingRebalance", c.Heartbeat(ctx, newHeartbeat(0, "g", ms[1].id, gen+1)).ErrorCode, 0)
	wantCode(t, "heartbeat with the old generation", c.Heartbeat(ctx, newHeartbeat(0, "g", ms[1].id, gen)).ErrorCode, kerr.IllegalGeneration.Code)
}

func TestSyncGroupErrors(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 1, false)
	for _, tc := range []struct {
		name string
		req  func() *kmsg.SyncGroupRequest
		want int16
	}{
		{"ok", func() *kmsg.SyncGroupRequest { return newSync(5, "g", ms[0].id, gen) }, 0},
		{"unknown group", func() *kmsg.SyncGroupRequest { return newSync(5, "nope", ms[0].id, gen) }, kerr.UnknownMemberID.Code},
		{"unknown member", func() *kmsg.SyncGroupRequest { return newSync(5, "g", "who", gen) }, kerr.UnknownMemberID.Code},
		{"bad generation", func() *kmsg.SyncGroupRequest { return newSync(5, "g", ms[0].id, gen+3) }, kerr.IllegalGeneration.Code},
		{"v5 protocol type", func() *kmsg.SyncGroupRequest {
			r := newSync(5, "g", ms[0].id, gen)
			r.ProtocolType = kmsg.StringPtr("connect")
			return r
		}, kerr.InconsistentGroupProtocol.Code},
		{"v5 protocol name", func() *kmsg.SyncGroupRequest {
			r := newSync(5, "g", ms[0].id, gen)
			r.ProtocolType = kmsg.StringPtr("consumer")
			r.Protocol = kmsg.StringPtr("sticky")
			return r
		}, kerr.InconsistentGroupProtocol.Code},
		{"v5 matching protocol", func() *kmsg.SyncGroupRequest {
			r := newSync(5, "g", ms[0].id, gen)
			r.ProtocolType = kmsg.StringPtr("consumer")
			r.Protocol = kmsg.StringPtr("range")
			return r
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.SyncGroup(ctx, tc.req())
			wantCode(t, tc.name, resp.ErrorCode, tc.want)
			if tc.want == 0 {
				if !bytes.Equal(resp.MemberAssignment, assignmentFor(ms[0].id)) || *resp.Protocol != "range" || *resp.ProtocolType != "consumer" {
					t.Fatalf("sync in Stable: %+v", resp)
				}
			}
		})
	}
}

func TestSyncMissingAssignmentAndLogFailure(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, false)

	// Rebalance; the leader's sync fails to persist: everyone gets the
	// error and the group rebalances.
	lead := joinAsync(c, ctx, newJoin(3, "g", ms[0].id))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	j2 := c.JoinGroup(ctx, newJoin(3, "g", ms[1].id))
	j1 := recv(t, lead, "leader join")
	if j1.LeaderID != ms[0].id || j1.Generation != gen+1 {
		t.Fatalf("join %+v", j1)
	}
	follower := syncAsync(c, ctx, newSync(3, "g", j2.MemberID, j2.Generation))
	eventually(t, 5*time.Second, "follower to wait in sync", func() bool {
		g := c.lockGroup("g", false)
		defer g.mu.Unlock()
		return g.members[j2.MemberID].sync != nil
	})
	l.setFail(errDisk)
	ls := newSync(3, "g", j1.MemberID, j1.Generation)
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID = j1.MemberID
	a.MemberAssignment = []byte("x")
	ls.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{a}
	wantCode(t, "leader sync with a failing log", c.SyncGroup(ctx, ls).ErrorCode, kerr.CoordinatorNotAvailable.Code)
	wantCode(t, "follower sync with a failing log", recv(t, follower, "follower sync").ErrorCode, kerr.CoordinatorNotAvailable.Code)
	if s := stateOf(t, c, "g"); s != "PreparingRebalance" {
		t.Fatalf("state %s after failed sync", s)
	}
	l.setFail(nil)

	// Rejoin; the leader assigns only itself: the follower gets an empty
	// assignment.
	c1 := joinAsync(c, ctx, newJoin(3, "g", ms[0].id))
	c2 := joinAsync(c, ctx, newJoin(3, "g", ms[1].id))
	j1, j2 = recv(t, c1, "join"), recv(t, c2, "join")
	if j1.MemberID != j1.LeaderID {
		j1, j2 = j2, j1
	}
	follower = syncAsync(c, ctx, newSync(3, "g", j2.MemberID, j2.Generation))
	ls = newSync(3, "g", j1.MemberID, j1.Generation)
	a.MemberID = j1.MemberID
	ls.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{a}
	wantCode(t, "leader sync", c.SyncGroup(ctx, ls).ErrorCode, 0)
	fs := recv(t, follower, "follower sync")
	wantCode(t, "follower sync", fs.ErrorCode, 0)
	if fs.MemberAssignment == nil || len(fs.MemberAssignment) != 0 {
		t.Fatalf("follower assignment %q, want empty", fs.MemberAssignment)
	}
}

func TestLeaveGroup(t *testing.T) {
	t.Run("v0 leave triggers a rebalance", func(t *testing.T) {
		c, l := newTest(t, testConfig())
		ctx := context.Background()
		ms, gen := stableGroup(t, c, "g", 2, false)
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Group, r.MemberID = "g", ms[1].id
		wantCode(t, "leave", c.LeaveGroup(ctx, r).ErrorCode, 0)
		wantCode(t, "leave again", c.LeaveGroup(ctx, r).ErrorCode, kerr.UnknownMemberID.Code)
		wantCode(t, "remaining heartbeat", c.Heartbeat(ctx, newHeartbeat(0, "g", ms[0].id, gen)).ErrorCode, kerr.RebalanceInProgress.Code)
		j := c.JoinGroup(ctx, newJoin(3, "g", ms[0].id))
		wantCode(t, "rejoin", j.ErrorCode, 0)
		if j.Generation != gen+1 || len(j.Members) != 1 {
			t.Fatalf("rejoin %+v", j)
		}
		syncAll(t, c, 3, "g", []*kmsg.JoinGroupResponse{j})

		// The last member leaving empties the group, which is persisted.
		r.MemberID = ms[0].id
		wantCode(t, "last leave", c.LeaveGroup(ctx, r).ErrorCode, 0)
		d := describe(t, c, "g")
		if d.State != "Empty" || len(d.Members) != 0 || d.ProtocolType != "consumer" {
			t.Fatalf("describe %+v", d)
		}
		eventually(t, 5*time.Second, "empty group record", func() bool {
			metas := l.groupMetas(t, "g")
			last := metas[len(metas)-1]
			return last != nil && len(last.Members) == 0 && last.Generation == gen+2 && last.Protocol == nil
		})
	})
	t.Run("v3 batch by member and instance id", func(t *testing.T) {
		c, _ := newTest(t, testConfig())
		ctx := context.Background()
		ms, _ := stableGroup(t, c, "g", 3, true)
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Version = 3
		r.Group = "g"
		m0 := kmsg.NewLeaveGroupRequestMember()
		m0.InstanceID = ms[0].instance // by instance id only
		m1 := kmsg.NewLeaveGroupRequestMember()
		m1.MemberID, m1.InstanceID = ms[1].id, ms[1].instance
		m2 := kmsg.NewLeaveGroupRequestMember()
		m2.MemberID, m2.InstanceID = "stale", ms[2].instance // fenced
		m3 := kmsg.NewLeaveGroupRequestMember()
		m3.InstanceID = kmsg.StringPtr("nobody")
		r.Members = []kmsg.LeaveGroupRequestMember{m0, m1, m2, m3}
		resp := c.LeaveGroup(ctx, r)
		wantCode(t, "top level", resp.ErrorCode, 0)
		want := []int16{0, 0, kerr.FencedInstanceID.Code, kerr.UnknownMemberID.Code}
		for i, m := range resp.Members {
			wantCode(t, "member", m.ErrorCode, want[i])
		}
		d := describe(t, c, "g")
		if d.State != "PreparingRebalance" || len(d.Members) != 1 || d.Members[0].MemberID != ms[2].id {
			t.Fatalf("describe %+v", d)
		}
		// Unknown group: each member UNKNOWN_MEMBER_ID.
		r.Group = "nope"
		resp = c.LeaveGroup(ctx, r)
		if resp.ErrorCode != 0 || len(resp.Members) != 4 || resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("leave unknown group %+v", resp)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	c, l := newTest(t, testConfig())
	ctx := context.Background()
	r := newJoin(3, "g", "")
	r.SessionTimeoutMillis = 50
	j := c.JoinGroup(ctx, r)
	syncAll(t, c, 3, "g", []*kmsg.JoinGroupResponse{j})
	// No heartbeats: the member expires and the group empties.
	eventually(t, 5*time.Second, "group to empty", func() bool { return stateOf(t, c, "g") == "Empty" })
	wantCode(t, "heartbeat after expiry", c.Heartbeat(ctx, newHeartbeat(0, "g", j.MemberID, 1)).ErrorCode, kerr.UnknownMemberID.Code)
	eventually(t, 5*time.Second, "empty group record", func() bool {
		metas := l.groupMetas(t, "g")
		return len(metas) == 2 && metas[1].Generation == 2 && len(metas[1].Members) == 0
	})

	// Heartbeats keep a member alive well past its session timeout.
	r = newJoin(3, "h", "")
	r.SessionTimeoutMillis = 100
	j = c.JoinGroup(ctx, r)
	syncAll(t, c, 3, "h", []*kmsg.JoinGroupResponse{j})
	deadline := time.Now().Add(400 * time.Millisecond)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		wantCode(t, "heartbeat", c.Heartbeat(ctx, newHeartbeat(0, "h", j.MemberID, 1)).ErrorCode, 0)
	}
}

func TestSessionExpiryTriggersRebalance(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A survivor that heartbeats, and a member that dies.
	survivor := &simMember{c: c, group: "g", version: 3, hb: 10 * time.Millisecond}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { survivor.run(ctx) })
	eventually(t, 5*time.Second, "survivor stable", func() bool { _, _, _, s, _, _ := survivor.snapshot(); return s })
	r := newJoin(3, "g", "")
	r.SessionTimeoutMillis = 100
	dying := joinAsync(c, ctx, r)
	j := recv(t, dying, "join of the dying member")
	wantCode(t, "join", j.ErrorCode, 0)
	if j.LeaderID != j.MemberID {
		s := c.SyncGroup(ctx, newSync(3, "g", j.MemberID, j.Generation))
		wantCode(t, "sync", s.ErrorCode, 0)
	}
	eventually(t, 10*time.Second, "the dying member to expire and the survivor to restabilise", func() bool {
		d := describe(t, c, "g")
		id, gen, _, stable, _, _ := survivor.snapshot()
		return d.State == "Stable" && len(d.Members) == 1 && d.Members[0].MemberID == id && stable && gen > j.Generation
	})
}

func TestRebalanceTimeoutRemovesMembers(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, false)
	// The leader rejoins with a short rebalance timeout; the other member
	// never rejoins and is dropped at the timeout.
	r := newJoin(3, "g", ms[0].id)
	r.RebalanceTimeoutMillis = 100
	g := c.lockGroup("g", false)
	g.members[ms[1].id].rebalance = 100 * time.Millisecond
	g.mu.Unlock()
	j := c.JoinGroup(ctx, r)
	wantCode(t, "join", j.ErrorCode, 0)
	if j.Generation != gen+1 || len(j.Members) != 1 || j.LeaderID != ms[0].id {
		t.Fatalf("join %+v", j)
	}
	wantCode(t, "dropped member heartbeat", c.Heartbeat(ctx, newHeartbeat(0, "g", ms[1].id, gen)).ErrorCode, kerr.UnknownMemberID.Code)
}

func TestPendingSyncTimeout(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, false)
	// Both rejoin with a short rebalance timeout, only the leader syncs:
	// the follower is removed after the rebalance timeout and the group
	// rebalances.
	lj := newJoin(3, "g", ms[0].id)
	lj.RebalanceTimeoutMillis = 100
	lead := joinAsync(c, ctx, lj)
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	rj := newJoin(3, "g", ms[1].id)
	rj.RebalanceTimeoutMillis = 100
	j2 := c.JoinGroup(ctx, rj)
	j1 := recv(t, lead, "leader join")
	if j1.Generation != gen+1 || j2.Generation != gen+1 {
		t.Fatalf("generations %d %d", j1.Generation, j2.Generation)
	}
	wantCode(t, "leader sync", c.SyncGroup(ctx, newSync(3, "g", j1.MemberID, j1.Generation)).ErrorCode, 0)
	eventually(t, 5*time.Second, "follower removal", func() bool {
		d := describe(t, c, "g")
		return d.State == "PreparingRebalance" && len(d.Members) == 1 && d.Members[0].MemberID == ms[0].id
	})
}

func TestStaticMemberRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		leader  bool
		version int16
	}{
		{"follower v5", false, 5},
		{"leader v5", true, 5},
		{"leader v9 skips assignment", true, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, l := newTest(t, testConfig())
			ctx := context.Background()
			ms, gen := stableGroup(t, c, "g", 2, true)
			restarting, other := ms[1], ms[0]
			if tc.leader {
				restarting, other = ms[0], ms[1]
			}
			metasBefore := len(l.groupMetas(t, "g"))

			r := newJoin(tc.version, "g", "")
			r.InstanceID = restarting.instance
			j := c.JoinGroup(ctx, r)
			wantCode(t, "restart join", j.ErrorCode, 0)
			if j.MemberID == restarting.id || j.Generation != gen {
				t.Fatalf("restart join %+v", j)
			}
			switch {
			case tc.leader && tc.version >= 9:
				if !j.SkipAssignment || j.LeaderID != j.MemberID || len(j.Members) != 2 {
					t.Fatalf("v9 leader restart %+v", j)
				}
			case tc.leader:
				if j.SkipAssignment || j.LeaderID != restarting.id || len(j.Members) != 0 {
					t.Fatalf("old leader restart %+v", j)
				}
			default:
				if j.LeaderID != other.id || j.SkipAssignment {
					t.Fatalf("follower restart %+v", j)
				}
			}
			// No rebalance: the other member carries on.
			if s := stateOf(t, c, "g"); s != "Stable" {
				t.Fatalf("state %s after a static restart", s)
			}
			hb := newHeartbeat(3, "g", other.id, gen)
			hb.InstanceID = other.instance
			wantCode(t, "other heartbeat", c.Heartbeat(ctx, hb).ErrorCode, 0)
			// The old member id is fenced.
			hb = newHeartbeat(3, "g", restarting.id, gen)
			hb.InstanceID = restarting.instance
			wantCode(t, "old id heartbeat", c.Heartbeat(ctx, hb).ErrorCode, kerr.FencedInstanceID.Code)
			// The new id syncs and gets its old assignment back.
			s := newSync(3, "g", j.MemberID, gen)
			s.InstanceID = restarting.instance
			sr := c.SyncGroup(ctx, s)
			wantCode(t, "sync", sr.ErrorCode, 0)
			if !bytes.Equal(sr.MemberAssignment, assignmentFor(restarting.id)) {
				t.Fatalf("assignment after restart %q", sr.MemberAssignment)
			}
			// The new member id was persisted.
			metas := l.groupMetas(t, "g")
			if len(metas) != metasBefore+1 {
				t.Fatalf("%d metadata records, want %d", len(metas), metasBefore+1)
			}
			var ids []string
			for _, m := range metas[len(metas)-1].Members {
				ids = append(ids, m.MemberID)
			}
			if !slices.Contains(ids, j.MemberID) || slices.Contains(ids, restarting.id) {
				t.Fatalf("persisted members %v", ids)
			}
		})
	}
}

func TestStaticMemberRestartDuringRebalance(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ctx := context.Background()
	ms, gen := stableGroup(t, c, "g", 2, true)
	// A dynamic member joins: rebalance. The static member restarts while
	// its old id never rejoins; the new id takes part in the rebalance.
	newcomer := joinAsync(c, ctx, newJoin(3, "g", ""))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	r0 := newJoin(5, "g", ms[0].id)
	r0.InstanceID = ms[0].instance
	j0 := joinAsync(c, ctx, r0)
	r1 := newJoin(5, "g", "")
	r1.InstanceID = ms[1].instance
	j1 := recv(t, joinAsync(c, ctx, r1), "restarted static join")
	a, b := recv(t, j0, "join"), recv(t, newcomer, "newcomer join")
	for _, j := range []*kmsg.JoinGroupResponse{a, b, j1} {
		wantCode(t, "join", j.ErrorCode, 0)
		if j.Generation != gen+1 {
			t.Fatalf("generation %d, want %d", j.Generation, gen+1)
		}
	}
	if j1.MemberID == ms[1].id {
		t.Fatalf("restarted static member kept its old id")
	}
}

func TestJoinContextCancelAndClose(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ms, gen := stableGroup(t, c, "g", 2, false)
	ctx, cancel := context.WithCancel(context.Background())
	ch := joinAsync(c, ctx, newJoin(3, "g", ms[0].id))
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	cancel()
	j := recv(t, ch, "cancelled join")
	if j.ErrorCode == 0 {
		t.Fatalf("cancelled join succeeded: %+v", j)
	}
	// The abandoned join still counts: when the other member rejoins the
	// join phase completes with both.
	j2 := c.JoinGroup(context.Background(), newJoin(3, "g", ms[1].id))
	wantCode(t, "rejoin", j2.ErrorCode, 0)
	if j2.Generation != gen+1 {
		t.Fatalf("generation %d", j2.Generation)
	}
	if d := describe(t, c, "g"); len(d.Members) != 2 {
		t.Fatalf("members %d", len(d.Members))
	}

	// Close fails waiting requests with NOT_COORDINATOR.
	pending := syncAsync(c, context.Background(), newSync(3, "g", ms[1].id, gen+1))
	eventually(t, 5*time.Second, "sync to wait", func() bool {
		g := c.lockGroup("g", false)
		defer g.mu.Unlock()
		return g.members[ms[1].id].sync != nil
	})
	c.Close()
	wantCode(t, "sync after close", recv(t, pending, "sync").ErrorCode, kerr.NotCoordinator.Code)
	wantCode(t, "join after close", c.JoinGroup(context.Background(), newJoin(3, "g", "")).ErrorCode, kerr.NotCoordinator.Code)
	wantCode(t, "heartbeat after close", c.Heartbeat(context.Background(), newHeartbeat(0, "g", ms[0].id, gen)).ErrorCode, kerr.NotCoordinator.Code)
}

// A member whose JoinGroup connection drops still counts as rejoined; if it
// never comes back, its session expires after the join phase and the group
// rebalances without it.
func TestAbandonedJoinExpires(t *testing.T) {
	c, _ := newTest(t, testConfig())
	ms, gen := stableGroup(t, c, "g", 2, false)
	ctx, cancel := context.WithCancel(context.Background())
	r := newJoin(3, "g", ms[0].id)
	r.SessionTimeoutMillis = 80
	ch := joinAsync(c, ctx, r)
	eventually(t, 5*time.Second, "rebalance", func() bool { return stateOf(t, c, "g") == "PreparingRebalance" })
	cancel()
	if j := recv(t, ch, "abandoned join"); j.ErrorCode == 0 {
		t.Fatalf("abandoned join succeeded")
	}
	bg := context.Background()
	j := c.JoinGroup(bg, newJoin(3, "g", ms[1].id))
	wantCode(t, "follower join", j.ErrorCode, 0)
	if j.Generation != gen+1 || j.LeaderID != ms[0].id {
		t.Fatalf("join %+v", j)
	}
	// The follower waits for an assignment that never comes: the leader's
	// session expires and the follower is told to rejoin.
	wantCode(t, "follower sync", c.SyncGroup(bg, newSync(3, "g", ms[1].id, j.Generation)).ErrorCode, kerr.RebalanceInProgress.Code)
	j = c.JoinGroup(bg, newJoin(3, "g", ms[1].id))
	wantCode(t, "rejoin", j.ErrorCode, 0)
	if j.Generation != gen+2 || j.LeaderID != ms[1].id || len(j.Members) != 1 {
		t.Fatalf("rejoin %+v", j)
	}
}
