package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleLeaveGroup(c *conn, req *kmsg.LeaveGroupRequest) response {
	return ready{c.b.groups.LeaveGroup(c.groupCtx(), req)}
}
