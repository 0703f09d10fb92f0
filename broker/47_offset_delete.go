package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleOffsetDelete(c *conn, req *kmsg.OffsetDeleteRequest) response {
	return ready{c.b.groups.OffsetDelete(c.groupCtx(), req)}
}
