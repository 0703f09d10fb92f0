package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinReq is a validated JoinGroup request.
type joinReq struct {
	version            int16
	memberID           string
	instanceID         *string
	protocolType       string
	protos             []protocol
	session, rebalance time.Duration
	ci                 clientInfo
}

// JoinGroup handles JoinGroup v0-v9. It blocks until the join phase of the
// rebalance completes, the context is done, or the coordinator closes. A
// member whose call is abandoned stays in the rebalance (as in Kafka, the
// join was received); if its client is gone, its session then expires.
func (c *Coordinator) JoinGroup(ctx context.Context, r *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	errResp := func(code int16) *kmsg.JoinGroupResponse {
		resp := newJoinResponse(r.Version)
		resp.ErrorCode = code
		resp.MemberID = r.MemberID
		return resp
	}
	if c.closed.Load() {
		return errResp(kerr.NotCoordinator.Code)
	}
	c.activate()
	if r.Group == "" {
		return errResp(kerr.InvalidGroupID.Code)
	}
	j := joinReq{
		version:      r.Version,
		memberID:     r.MemberID,
		protocolType: r.ProtocolType,
		session:      time.Duration(r.SessionTimeoutMillis) * time.Millisecond,
		rebalance:    time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond,
		ci:           clientInfoFrom(ctx),
	}
	if j.session < c.cfg.MinSessionTimeout || j.session > c.cfg.MaxSessionTimeout {
		return errResp(kerr.InvalidSessionTimeout.Code)
	}
	if r.Version == 0 || j.rebalance <= 0 { // v0 has no rebalance timeout: Kafka uses the session timeout
		j.rebalance = j.session
	}
	if r.Version >= 5 && r.InstanceID != nil {
		id := *r.InstanceID
		j.instanceID = &id
	}
	for _, p := range r.Protocols {
		j.protos = append(j.protos, protocol{name: p.Name, meta: clone(p.Metadata)})
	}

	g := c.lockGroup(r.Group, r.MemberID == "")
	if g == nil {
		if c.closed.Load() {
			return errResp(kerr.NotCoordinator.Code)
		}
		return errResp(kerr.UnknownMemberID.Code)
	}
	if !g.supportsProtocols(j.protocolType, j.protos) {
		g.dropIfPristine()
		g.mu.Unlock()
		return errResp(kerr.InconsistentGroupProtocol.Code)
	}
	var (
		resp *kmsg.JoinGroupResponse
		w    *joinWaiter
	)
	if j.memberID == "" {
		resp, w = g.joinUnknown(&j)
	} else {
		resp, w = g.joinKnown(&j)
	}
	g.mu.Unlock()
	if resp != nil {
		return resp
	}

	select {
	case resp := <-w.ch:
		return resp
	case <-c.done:
		return errResp(kerr.NotCoordinator.Code)
	case <-ctx.Done():
		g.mu.Lock()
		for _, m := range g.members {
			if m.join == w {
				m.join = nil // still awaiting join: counted in the rebalance
			}
		}
		g.mu.Unlock()
		select {
		case resp := <-w.ch:
			return resp
		default:
			return errResp(kerr.RebalanceInProgress.Code)
		}
	}
}

// joinUnknown handles a join without a member id.
func (g *group) joinUnknown(j *joinReq) (*kmsg.JoinGroupResponse, *joinWaiter) {
	if j.instanceID != nil {
		newID := newMemberID(*j.instanceID)
		if oldID, ok := g.static[*j.instanceID]; ok {
			return nil, g.replaceStatic(oldID, newID, j)
		}
		// KIP-394's member id round trip applies to dynamic members only.
		return nil, g.addMemberAndRebalance(newID, j)
	}
	newID := newMemberID(j.ci.id)
	if j.version >= 4 { // KIP-394
		g.addPending(newID, j.session)
		resp := newJoinResponse(j.version)
		resp.ErrorCode = kerr.MemberIDRequired.Code
		resp.MemberID = newID
		return resp, nil
	}
	return nil, g.addMemberAndRebalance(newID, j)
}

// joinKnown handles a join with a member id.
func (g *group) joinKnown(j *joinReq) (*kmsg.JoinGroupResponse, *joinWaiter) {
	errResp := func(code int16) (*kmsg.JoinGroupResponse, *joinWaiter) {
		resp := newJoinResponse(j.version)
		resp.ErrorCode = code
		resp.MemberID = j.memberID
		return resp, nil
	}
	if g.removePending(j.memberID) {
		return nil, g.addMemberAndRebalance(j.memberID, j)
	}
	if code := g.validateMember(j.memberID, j.instanceID); code != 0 {
		return errResp(code)
	}
	m := g.members[j.memberID]
	switch g.state {
	case statePreparingRebalance:
		return nil, g.updateMemberAndRebalance(m, j)
	case stateCompletingRebalance:
		if m.matches(j.protos) {
			// The JoinGroup response was lost: resend it.
			resp := newJoinResponse(j.version)
			g.fillJoin(resp, m.id)
			if m.id == g.leader {
				resp.Members = g.joinMembers()
			}
			return resp, nil
		}
		return nil, g.updateMemberAndRebalance(m, j)
	case stateStable:
		if m.id == g.leader || !m.matches(j.protos) {
			return nil, g.updateMemberAndRebalance(m, j)
		}
		// A follower with unchanged metadata gets the current generation
		// and can go on to SyncGroup.
		resp := newJoinResponse(j.version)
		g.fillJoin(resp, m.id)
		return resp, nil
	default:
		return errResp(kerr.UnknownMemberID.Code)
	}
}

// validateMember is Kafka's ClassicGroup.validateMember.
func (g *group) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		id, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != memberID:
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

func newJoinWaiter(version int16) *joinWaiter {
	return &joinWaiter{version: version, ch: make(chan *kmsg.JoinGroupResponse, 1)}
}

func (g *group) addMemberAndRebalance(id string, j *joinReq) *joinWaiter {
	m := &member{
		id:           id,
		instanceID:   j.instanceID,
		clientID:     j.ci.id,
		clientHost:   j.ci.host,
		session:      j.session,
		rebalance:    j.rebalance,
		protocolType: j.protocolType,
		protocols:    j.protos,
	}
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m)
	w := newJoinWaiter(j.version)
	m.join, m.awaitingJoin = w, true
	g.armSession(m)
	g.maybePrepareRebalanceOrCompleteJoin("member " + id + " joined")
	return w
}

// updateMember takes a rejoin's protocols and timeouts and marks m as waiting
// in join.
func (g *group) updateMember(m *member, j *joinReq) *joinWaiter {
	g.addProtocols(m, -1)
	m.protocols = j.protos
	g.addProtocols(m, 1)
	m.session, m.rebalance = j.session, j.rebalance
	if old := m.join; old != nil { // superseded by this join
		resp := newJoinResponse(old.version)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		resp.MemberID = m.id
		old.ch <- resp
	}
	w := newJoinWaiter(j.version)
	m.join, m.awaitingJoin = w, true
	return w
}

func (g *group) updateMemberAndRebalance(m *member, j *joinReq) *joinWaiter {
	w := g.updateMember(m, j)
	g.maybePrepareRebalanceOrCompleteJoin("member " + m.id + " rejoined")
	return w
}

// replaceStatic handles a static member rejoining without a member id
// (KIP-345): the old member id is fenced and the member continues under a new
// id. In a Stable group whose protocol would not change, this happens without
// a rebalance: the member keeps its assignment.
func (g *group) replaceStatic(oldID, newID string, j *joinReq) *joinWaiter {
	old := g.members[oldID]
	if w := old.join; w != nil {
		resp := newJoinResponse(w.version)
		resp.ErrorCode = kerr.FencedInstanceID.Code
		resp.MemberID = oldID
		w.ch <- resp
		old.join = nil
	}
	if w := old.sync; w != nil {
		resp := newSyncResponse(w.version)
		resp.ErrorCode = kerr.FencedInstanceID.Code
		w.ch <- resp
		old.sync = nil
	}
	g.stopSession(old)
	oldLeader := g.leader
	m := &member{
		id:           newID,
		instanceID:   old.instanceID,
		clientID:     j.ci.id,
		clientHost:   j.ci.host,
		session:      old.session,
		rebalance:    old.rebalance,
		protocolType: old.protocolType,
		protocols:    old.protocols,
		assignment:   old.assignment,
		seq:          old.seq,
	}
	delete(g.members, oldID)
	g.members[newID] = m
	g.static[*m.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	g.armSession(m)
	w := g.updateMember(m, j)

	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			g.maybePrepareRebalanceOrCompleteJoin("static member " + *m.instanceID + " rejoined with a different protocol")
			break
		}
		g.c.logger.Info("static member rejoined without a rebalance", "group", g.name, "instance", *m.instanceID, "old", oldID, "new", newID)
		g.persistMeta(nil, func(err error) {
			if g.members[newID] != m || m.join != w || g.state != stateStable {
				return // removed, superseded, or now part of a rebalance
			}
			resp := newJoinResponse(w.version)
			if err != nil {
				resp.ErrorCode = errCode(err)
			} else {
				g.fillJoin(resp, newID)
				if g.leader == newID && w.version >= 9 {
					// KIP-814: the leader keeps the current assignment.
					resp.SkipAssignment = true
					resp.Members = g.joinMembers()
				} else {
					// An older leader must not think it leads: its
					// assignment would not be propagated in a Stable
					// group.
					resp.LeaderID = oldLeader
				}
			}
			m.join, m.awaitingJoin = nil, false
			g.armSession(m)
			w.ch <- resp
		})
	case stateCompletingRebalance:
		// The leader may already be assigning to the old member id.
		g.prepareRebalance("static member " + *m.instanceID + " rejoined during CompletingRebalance")
	case statePreparingRebalance:
		g.maybeCompleteJoin()
	}
	return w
}

// SyncGroup handles SyncGroup v0-v5. Followers block until the leader's
// assignment is durable (or the context is done, or the coordinator closes);
// the leader's assignment is written to __consumer_offsets with the group's
// metadata before anyone is answered.
func (c *Coordinator) SyncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	errResp := func(code int16) *kmsg.SyncGroupResponse {
		resp := newSyncResponse(r.Version)
		resp.ErrorCode = code
		return resp
	}
	if c.closed.Load() {
		return errResp(kerr.NotCoordinator.Code)
	}
	c.activate()
	if r.Group == "" {
		return errResp(kerr.InvalidGroupID.Code)
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		if c.closed.Load() {
			return errResp(kerr.NotCoordinator.Code)
		}
		return errResp(kerr.UnknownMemberID.Code)
	}
	var instanceID *string
	if r.Version >= 3 {
		instanceID = r.InstanceID
	}
	code := g.validateMember(r.MemberID, instanceID)
	switch {
	case code != 0:
	case r.Generation != g.generation:
		code = kerr.IllegalGeneration.Code
	case r.ProtocolType != nil && g.protocolType != "" && *r.ProtocolType != g.protocolType,
		r.Protocol != nil && g.protocol != "" && *r.Protocol != g.protocol:
		code = kerr.InconsistentGroupProtocol.Code
	}
	if code != 0 {
		g.mu.Unlock()
		return errResp(code)
	}
	m := g.members[r.MemberID]
	switch g.state {
	case statePreparingRebalance:
		g.mu.Unlock()
		return errResp(kerr.RebalanceInProgress.Code)
	case stateStable:
		g.synced(m.id)
		g.armSession(m)
		resp := newSyncResponse(r.Version)
		resp.ProtocolType = kmsg.StringPtr(g.protocolType)
		resp.Protocol = kmsg.StringPtr(g.protocol)
		resp.MemberAssignment = nonNil(m.assignment)
		g.mu.Unlock()
		return resp
	case stateCompletingRebalance:
	default:
		g.mu.Unlock()
		return errResp(kerr.UnknownMemberID.Code)
	}

	// CompletingRebalance: wait for the leader's assignment.
	if old := m.sync; old != nil {
		resp := newSyncResponse(old.version)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		old.ch <- resp
	}
	w := &syncWaiter{version: r.Version, ch: make(chan *kmsg.SyncGroupResponse, 1)}
	m.sync, m.awaitingSync = w, true
	g.synced(m.id)
	if m.id == g.leader && !g.assigning {
		g.assigning = true
		assign := make(map[string][]byte, len(g.members))
		for _, a := range r.GroupAssignment {
			if g.members[a.MemberID] != nil {
				assign[a.MemberID] = clone(a.MemberAssignment)
			}
		}
		for id := range g.members {
			if assign[id] == nil {
				assign[id] = []byte{}
			}
		}
		gen := g.generation
		g.persistMeta(assign, func(err error) {
			if g.state != stateCompletingRebalance || g.generation != gen {
				return
			}
			g.assigning = false
			if err != nil {
				g.resetAssignments(errCode(err))
				g.maybePrepareRebalanceOrCompleteJoin("failed to persist the assignment")
				return
			}
			for _, m := range g.members {
				m.assignment = assign[m.id]
				if m.assignment == nil {
					m.assignment = []byte{}
				}
				if w := m.sync; w != nil {
					resp := newSyncResponse(w.version)
					resp.ProtocolType = kmsg.StringPtr(g.protocolType)
					resp.Protocol = kmsg.StringPtr(g.protocol)
					resp.MemberAssignment = m.assignment
					w.ch <- resp
					m.sync = nil
					m.awaitingSync = false
					g.armSession(m)
				}
			}
			g.setState(stateStable)
			g.c.logger.Info("group stable", "group", g.name, "generation", g.generation, "members", len(g.members))
		})
	}
	g.mu.Unlock()

	select {
	case resp := <-w.ch:
		return resp
	case <-c.done:
		return errResp(kerr.NotCoordinator.Code)
	case <-ctx.Done():
		g.mu.Lock()
		for _, m := range g.members {
			if m.sync == w {
				m.sync = nil // still awaiting sync; its session restarts when the phase ends
			}
		}
		g.mu.Unlock()
		select {
		case resp := <-w.ch:
			return resp
		default:
			return errResp(kerr.RebalanceInProgress.Code)
		}
	}
}

// Heartbeat handles Heartbeat v0-v4.
func (c *Coordinator) Heartbeat(_ context.Context, r *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = r.Version
	if c.closed.Load() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	c.activate()
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		if c.closed.Load() {
			resp.ErrorCode = kerr.NotCoordinator.Code
		}
		return resp
	}
	defer g.mu.Unlock()
	var instanceID *string
	if r.Version >= 3 {
		instanceID = r.InstanceID
	}
	if code := g.validateMember(r.MemberID, instanceID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if r.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	}
	m := g.members[r.MemberID]
	switch g.state {
	case statePreparingRebalance:
		g.armSession(m)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		g.armSession(m)
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// LeaveGroup handles LeaveGroup v0-v5; v3+ removes a batch of members, by
// member id or (with an empty member id) by group.instance.id. The group
// rebalances once for the whole batch.
func (c *Coordinator) LeaveGroup(_ context.Context, r *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = r.Version
	leaving := r.Members
	if r.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: r.MemberID}}
	}
	finish := func() *kmsg.LeaveGroupResponse {
		if r.Version < 3 {
			if resp.ErrorCode == 0 && len(resp.Members) > 0 {
				resp.ErrorCode = resp.Members[0].ErrorCode
			}
			resp.Members = nil
		}
		return resp
	}
	if c.closed.Load() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return finish()
	}
	c.activate()
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return finish()
	}
	g := c.lockGroup(r.Group, false)
	if g == nil && c.closed.Load() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return finish()
	}
	var removed, pendingRemoved bool
	for _, lm := range leaving {
		mr := kmsg.NewLeaveGroupResponseMember()
		mr.MemberID = lm.MemberID
		mr.InstanceID = lm.InstanceID
		switch {
		case g == nil:
			mr.ErrorCode = kerr.UnknownMemberID.Code
		case lm.MemberID == "":
			// Administrative removal by group.instance.id.
			id, ok := "", false
			if lm.InstanceID != nil {
				id, ok = g.static[*lm.InstanceID]
			}
			if !ok {
				mr.ErrorCode = kerr.UnknownMemberID.Code
				break
			}
			g.removeMember(g.members[id])
			removed = true
		case g.removePending(lm.MemberID):
			pendingRemoved = true
		default:
			if code := g.validateMember(lm.MemberID, lm.InstanceID); code != 0 {
				mr.ErrorCode = code
				break
			}
			g.removeMember(g.members[lm.MemberID])
			removed = true
		}
		resp.Members = append(resp.Members, mr)
	}
	if g != nil {
		if removed {
			g.c.logger.Info("members left group", "group", g.name)
			switch g.state {
			case stateStable, stateCompletingRebalance:
				g.maybePrepareRebalanceOrCompleteJoin("members left the group")
			case statePreparingRebalance:
				g.maybeCompleteJoin()
			}
		} else if pendingRemoved {
			g.maybeCompleteJoin()
		}
		g.mu.Unlock()
	}
	return finish()
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
