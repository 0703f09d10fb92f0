package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator's key types.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func handleFindCoordinator(c *conn, req *kmsg.FindCoordinatorRequest) response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		sc := kmsg.NewFindCoordinatorResponseCoordinator()
		sc.Key = key
		var err error
		switch req.CoordinatorType {
		case coordinatorGroup:
			sc.NodeID, sc.Host, sc.Port, err = c.b.meta.coordinator(c.b.groupsTopic(), key)
		case coordinatorTransaction:
			sc.NodeID, sc.Host, sc.Port, err = c.b.meta.coordinator(c.b.transactionsTopic(), key)
		default:
			err = errorf(kerr.InvalidRequest, "unknown coordinator type %d", req.CoordinatorType)
		}
		if err != nil {
			sc.ErrorCode, sc.ErrorMessage = errCode(err), errMessage(err)
			sc.NodeID, sc.Host, sc.Port = -1, "", -1
		}
		resp.Coordinators = append(resp.Coordinators, sc)
	}
	if req.Version < 4 {
		sc := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = sc.ErrorCode, sc.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = sc.NodeID, sc.Host, sc.Port
	}
	return ready{resp}
}
