package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// coordinatorGroup is FindCoordinator's key type for consumer groups; 1 is
// transactions, which are not supported yet.
const coordinatorGroup = 0

func handleFindCoordinator(c *conn, req *kmsg.FindCoordinatorRequest) response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := c.b.hostPort()
	code := int16(0)
	var msg *string
	if req.CoordinatorType != coordinatorGroup {
		err := errorf(kerr.InvalidRequest, "coordinator type %d is not supported: transactions are not implemented", req.CoordinatorType)
		code, msg = errCode(err), errMessage(err)
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = code, msg
		if code == 0 {
			resp.NodeID, resp.Host, resp.Port = c.b.cfg.NodeID, host, port
		} else {
			resp.NodeID, resp.Port = -1, -1
		}
		return ready{resp}
	}
	for _, key := range req.CoordinatorKeys {
		sc := kmsg.NewFindCoordinatorResponseCoordinator()
		sc.Key, sc.ErrorCode, sc.ErrorMessage = key, code, msg
		if code == 0 {
			sc.NodeID, sc.Host, sc.Port = c.b.cfg.NodeID, host, port
		} else {
			sc.NodeID, sc.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, sc)
	}
	return ready{resp}
}
