package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleHeartbeat(c *conn, req *kmsg.HeartbeatRequest) response {
	return ready{c.b.groups.Heartbeat(c.groupCtx(), req)}
}
