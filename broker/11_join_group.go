package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleJoinGroup(c *conn, req *kmsg.JoinGroupRequest) response {
	// Blocks until the rebalance completes, so it waits off the read loop.
	ctx := c.groupCtx() // on the read loop: the client id may change with the next request
	return later(func() kmsg.Response { return c.b.serveGroup(ctx, req) })
}
