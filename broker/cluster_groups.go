package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A group's coordinator is the leader of its __consumer_offsets
// partition, once it has loaded that partition. Every other broker answers NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while
// loading), so the client asks FindCoordinator again; the coordinator
// itself would otherwise create the group afresh and answer from nothing.

// coordinatorError is 0 when this broker coordinates group now.
func (b *Broker) coordinatorError(group string) int16 {
	p := b.lookupPartition(offsetsTopic, b.groups.PartitionFor(group))
	switch {
	case p == nil || !p.isLeader():
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

// serveSplit serves the entries of a multi-group request whose group is
// coordinated here (serve gets them in request order) and answers each
// other entry with its coordinator error.
func serveSplit[In, Out any](b *Broker, in []In, group func(In) string, serve func([]In) []Out, refuse func(group string, code int16) Out) []Out {
	var own []In
	var refused []Out
	for _, e := range in {
		if code := b.coordinatorError(group(e)); code != 0 {
			refused = append(refused, refuse(group(e), code))
		} else {
			own = append(own, e)
		}
	}
	var out []Out
	if len(own) > 0 {
		out = serve(own)
	}
	return append(out, refused...)
}

func (b *Broker) offsetFetch(ctx context.Context, r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.Version < 8 {
		if resp.ErrorCode = b.coordinatorError(r.Group); resp.ErrorCode != 0 {
			return resp
		}
		return b.groups.OffsetFetch(ctx, r)
	}
	resp.Groups = serveSplit(b, r.Groups,
		func(g kmsg.OffsetFetchRequestGroup) string { return g.Group },
		func(own []kmsg.OffsetFetchRequestGroup) []kmsg.OffsetFetchResponseGroup {
			sub := *r
			sub.Groups = own
			return b.groups.OffsetFetch(ctx, &sub).Groups
		},
		func(g string, code int16) kmsg.OffsetFetchResponseGroup {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group, sg.ErrorCode = g, code
			return sg
		})
	return resp
}

func (b *Broker) describeGroups(ctx context.Context, r *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = serveSplit(b, r.Groups, named,
		func(own []string) []kmsg.DescribeGroupsResponseGroup {
			sub := *r
			sub.Groups = own
			return b.groups.DescribeGroups(ctx, &sub).Groups
		},
		func(g string, code int16) kmsg.DescribeGroupsResponseGroup {
			sg := kmsg.NewDescribeGroupsResponseGroup()
			sg.Group, sg.ErrorCode = g, code
			return sg
		})
	return resp
}

func (b *Broker) deleteGroups(ctx context.Context, r *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = serveSplit(b, r.Groups, named,
		func(own []string) []kmsg.DeleteGroupsResponseGroup {
			sub := *r
			sub.Groups = own
			return b.groups.DeleteGroups(ctx, &sub).Groups
		},
		func(g string, code int16) kmsg.DeleteGroupsResponseGroup {
			sg := kmsg.NewDeleteGroupsResponseGroup()
			sg.Group, sg.ErrorCode = g, code
			return sg
		})
	return resp
}

// named is a group-id list entry's group.
func named(g string) string { return g }
