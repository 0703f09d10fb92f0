package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleOffsetFetch(c *conn, req *kmsg.OffsetFetchRequest) response {
	return ready{c.b.groups.OffsetFetch(c.groupCtx(), req)}
}
