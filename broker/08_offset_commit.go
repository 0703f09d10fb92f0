package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleOffsetCommit(c *conn, req *kmsg.OffsetCommitRequest) response {
	// Waits for the commit to be durable, so it waits off the read loop.
	ctx := c.groupCtx() // on the read loop: the client id may change with the next request
	return later(func() kmsg.Response { return c.b.serveGroup(ctx, req) })
}
