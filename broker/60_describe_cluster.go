package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(c *conn, req *kmsg.DescribeClusterRequest) response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.EndpointType > 1 { // 1 = brokers; 2 = controllers, which clients cannot reach here
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return ready{resp}
	}
	c.b.meta.describeCluster(resp)
	return ready{resp}
}
