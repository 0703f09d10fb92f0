package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDeleteGroups(c *conn, req *kmsg.DeleteGroupsRequest) response {
	return ready{c.b.groups.DeleteGroups(c.groupCtx(), req)}
}
