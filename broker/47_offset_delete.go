package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// Deferred like every group request, so a connection's group requests
// run in the order they were sent (see conn.go).
func handleOffsetDelete(c *conn, req *kmsg.OffsetDeleteRequest) response {
	ctx := c.groupCtx()
	return later(func() kmsg.Response { return c.b.serveGroup(ctx, req) })
}
