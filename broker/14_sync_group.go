package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleSyncGroup(c *conn, req *kmsg.SyncGroupRequest) response {
	// Blocks until the rebalance completes, so it waits off the read loop.
	return later(func() kmsg.Response { return c.b.groups.SyncGroup(c.groupCtx(), req) })
}
