package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupType is what ListGroups v5 reports: every group here is a classic
// group (no KIP-848 "consumer" groups yet).
const groupType = "classic"

// DescribeGroups handles DescribeGroups v0-v6. Member metadata and
// assignments are included only for a Stable group, as Kafka does. An unknown
// group is described as Dead (v0-v5) or GROUP_ID_NOT_FOUND (v6+, KIP-1043).
// AuthorizedOperations is left unset (the broker owns ACLs).
func (c *Coordinator) DescribeGroups(_ context.Context, r *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = r.Version
	if !c.closed.Load() {
		c.activate()
	}
	for _, name := range r.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		g := c.lockGroup(name, false)
		switch {
		case c.closed.Load():
			dg.ErrorCode = kerr.NotCoordinator.Code
		case g == nil && r.Version >= 6:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
			dg.ErrorMessage = kmsg.StringPtr("group " + name + " not found")
		case g == nil:
			dg.State = stateDead.String()
		default:
			dg.State = g.state.String()
			dg.ProtocolType = g.protocolType
			stable := g.state == stateStable
			if stable {
				dg.Protocol = g.protocol
			}
			for _, m := range g.sortedMembers() {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID = m.id
				dm.InstanceID = m.instanceID
				dm.ClientID = m.clientID
				dm.ClientHost = m.clientHost
				if stable {
					dm.ProtocolMetadata = nonNil(m.metadata(g.protocol))
					dm.MemberAssignment = nonNil(m.assignment)
				} else {
					dm.ProtocolMetadata = []byte{}
					dm.MemberAssignment = []byte{}
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		if g != nil {
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// ListGroups handles ListGroups v0-v5: v4 filters by state, v5 by type, both
// case-insensitively.
func (c *Coordinator) ListGroups(_ context.Context, r *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = r.Version
	if c.closed.Load() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	c.activate()
	lower := func(ss []string) map[string]bool {
		m := make(map[string]bool, len(ss))
		for _, s := range ss {
			m[strings.ToLower(s)] = true
		}
		return m
	}
	var states, types map[string]bool
	if r.Version >= 4 {
		states = lower(r.StatesFilter)
	}
	if r.Version >= 5 {
		types = lower(r.TypesFilter)
	}
	if len(types) > 0 && !types[groupType] {
		return resp
	}
	gs := c.snapshotGroups()
	slices.SortFunc(gs, func(a, b *group) int { return strings.Compare(a.name, b.name) })
	for _, g := range gs {
		g.mu.Lock()
		if !g.removed && (len(states) == 0 || states[strings.ToLower(g.state.String())]) {
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group = g.name
			lg.ProtocolType = g.protocolType
			lg.GroupState = g.state.String()
			lg.GroupType = groupType
			resp.Groups = append(resp.Groups, lg)
		}
		g.mu.Unlock()
	}
	return resp
}

// DeleteGroups handles DeleteGroups v0-v2: an Empty group is removed and
// tombstones for its metadata and every committed offset are written before
// the response; a group with members, or with offsets of an open
// transaction (TxnOffsetCommit not yet settled by its marker), answers
// NON_EMPTY_GROUP.
func (c *Coordinator) DeleteGroups(ctx context.Context, r *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = r.Version
	if !c.closed.Load() {
		c.activate()
	}
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(r.Groups))
	waits := make([]chan int16, len(r.Groups))
	for i, name := range r.Groups {
		dg := &resp.Groups[i]
		*dg = kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		g := c.lockGroup(name, false)
		switch {
		case c.closed.Load():
			dg.ErrorCode = kerr.NotCoordinator.Code
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.state != stateEmpty || g.hasTxn():
			// A group with offsets of an open transaction is kept until
			// the transaction ends.
			dg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			var recs []Record
			for k := range g.offsets {
				recs = append(recs, Record{Key: offsetKey(name, k.topic, k.partition)})
			}
			for k := range g.inflight {
				if _, ok := g.offsets[k]; !ok {
					recs = append(recs, Record{Key: offsetKey(name, k.topic, k.partition)})
				}
			}
			recs = append(recs, Record{Key: groupKey(name)})
			g.shutdown(kerr.GroupIDNotFound.Code)
			c.removeGroup(g)
			g.offsets = make(map[tp]offset)
			ch := make(chan int16, 1)
			waits[i] = ch
			g.write(recs, func(err error) { ch <- errCode(err) })
			c.logger.Info("deleting group", "group", name)
		}
		if g != nil {
			g.mu.Unlock()
		}
	}
	for i, ch := range waits {
		if ch == nil {
			continue
		}
		select {
		case resp.Groups[i].ErrorCode = <-ch:
		case <-c.done:
			resp.Groups[i].ErrorCode = kerr.NotCoordinator.Code
		case <-ctx.Done():
			resp.Groups[i].ErrorCode = kerr.RequestTimedOut.Code
		}
	}
	return resp
}
