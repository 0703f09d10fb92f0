package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleJoinGroup(c *conn, req *kmsg.JoinGroupRequest) response {
	// Blocks until the rebalance completes, so it waits off the read loop.
	return later(func() kmsg.Response { return c.b.groups.JoinGroup(c.groupCtx(), req) })
}
