package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// In a cluster a group's coordinator is the leader of its
// __consumer_offsets partition, once it has loaded that partition. Every
// other broker answers NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while
// loading), so the client asks FindCoordinator again; the coordinator
// itself would otherwise create the group afresh and answer from nothing.

// coordinatorError is 0 when this broker coordinates group now.
func (b *Broker) coordinatorError(group string) int16 {
	if b.cluster == nil {
		return 0
	}
	p := b.lookupPartition(offsetsTopic, b.groups.PartitionFor(group))
	switch {
	case p == nil || p.repl == nil || !p.repl.IsLeader():
		return kerr.NotCoordinator.Code
	case !p.loaded.Load():
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// serveGroup runs one group request on the coordinator, or answers it
// with the coordinator error when this broker does not coordinate the
// group(s) it names. Multi-group requests are split: groups coordinated
// here are served, the others answered with their error.
func (b *Broker) serveGroup(ctx context.Context, req kmsg.Request) kmsg.Response {
	if resp := b.refuseGroup(req); resp != nil {
		return resp
	}
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return b.groups.JoinGroup(ctx, r)
	case *kmsg.SyncGroupRequest:
		return b.groups.SyncGroup(ctx, r)
	case *kmsg.HeartbeatRequest:
		return b.groups.Heartbeat(ctx, r)
	case *kmsg.LeaveGroupRequest:
		return b.groups.LeaveGroup(ctx, r)
	case *kmsg.OffsetDeleteRequest:
		return b.groups.OffsetDelete(ctx, r)
	case *kmsg.OffsetCommitRequest:
		return b.groups.OffsetCommit(ctx, r)
	case *kmsg.OffsetFetchRequest:
		return b.offsetFetch(ctx, r)
	case *kmsg.DescribeGroupsRequest:
		return b.describeGroups(ctx, r)
	case *kmsg.DeleteGroupsRequest:
		return b.deleteGroups(ctx, r)
	case *kmsg.ListGroupsRequest:
		return b.groups.ListGroups(ctx, r)
	}
	panic("broker: serveGroup given a non-group request")
}

// refuseGroup answers a single-group request whose group is not
// coordinated here, and returns nil for everything else.
func (b *Broker) refuseGroup(req kmsg.Request) kmsg.Response {
	var group string
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		group = r.Group
	case *kmsg.SyncGroupRequest:
		group = r.Group
	case *kmsg.HeartbeatRequest:
		group = r.Group
	case *kmsg.LeaveGroupRequest:
		group = r.Group
	case *kmsg.OffsetDeleteRequest:
		group = r.Group
	case *kmsg.OffsetCommitRequest:
		group = r.Group
	default:
		return nil
	}
	code := b.coordinatorError(group)
	if code == 0 {
		return nil
	}
	switch resp := req.ResponseKind().(type) {
	case *kmsg.JoinGroupResponse:
		resp.ErrorCode = code
		return resp
	case *kmsg.SyncGroupResponse:
		resp.ErrorCode = code
		return resp
	case *kmsg.HeartbeatResponse:
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupResponse:
		resp.ErrorCode = code
		return resp
	case *kmsg.OffsetDeleteResponse:
		resp.ErrorCode = code
		return resp
	}
	return offsetCommitError(req.(*kmsg.OffsetCommitRequest), code)
}

func offsetCommitError(r *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// splitGroups separates the groups coordinated here from the others'
// errors.
func (b *Broker) splitGroups(groups []string) (own []string, errs map[string]int16) {
	errs = make(map[string]int16)
	for _, g := range groups {
		if code := b.coordinatorError(g); code != 0 {
			errs[g] = code
		} else {
			own = append(own, g)
		}
	}
	return own, errs
}

func (b *Broker) offsetFetch(ctx context.Context, r *kmsg.OffsetFetchRequest) kmsg.Response {
	if r.Version < 8 {
		if code := b.coordinatorError(r.Group); code != 0 {
			resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = code
			return resp
		}
		return b.groups.OffsetFetch(ctx, r)
	}
	names := make([]string, len(r.Groups))
	for i, g := range r.Groups {
		names[i] = g.Group
	}
	own, errs := b.splitGroups(names)
	if len(errs) == 0 {
		return b.groups.OffsetFetch(ctx, r)
	}
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if len(own) > 0 {
		sub := *r
		sub.Groups = nil
		for _, g := range r.Groups {
			if errs[g.Group] == 0 {
				sub.Groups = append(sub.Groups, g)
			}
		}
		resp = b.groups.OffsetFetch(ctx, &sub)
	}
	for g, code := range errs {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group, sg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (b *Broker) describeGroups(ctx context.Context, r *kmsg.DescribeGroupsRequest) kmsg.Response {
	own, errs := b.splitGroups(r.Groups)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	if len(own) > 0 {
		sub := *r
		sub.Groups = own
		resp = b.groups.DescribeGroups(ctx, &sub)
	}
	for g, code := range errs {
		sg := kmsg.NewDescribeGroupsResponseGroup()
		sg.Group, sg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (b *Broker) deleteGroups(ctx context.Context, r *kmsg.DeleteGroupsRequest) kmsg.Response {
	own, errs := b.splitGroups(r.Groups)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	if len(own) > 0 {
		sub := *r
		sub.Groups = own
		resp = b.groups.DeleteGroups(ctx, &sub)
	}
	for g, code := range errs {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group, sg.ErrorCode = g, code
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}
