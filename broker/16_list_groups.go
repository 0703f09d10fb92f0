package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleListGroups(c *conn, req *kmsg.ListGroupsRequest) response {
	return ready{c.b.groups.ListGroups(c.groupCtx(), req)}
}
