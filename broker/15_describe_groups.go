package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeGroups(c *conn, req *kmsg.DescribeGroupsRequest) response {
	return ready{c.b.groups.DescribeGroups(c.groupCtx(), req)}
}
