package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAlterConfigs replaces a topic's whole config set, as the legacy
// AlterConfigs does: configs not named revert to their defaults.
func handleAlterConfigs(c *conn, req *kmsg.AlterConfigsRequest) response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := checkAlterable(rr.ResourceType)
		if err == nil {
			set := make(map[string]string, len(rr.Configs))
			for _, kv := range rr.Configs {
				if kv.Value != nil {
					set[kv.Name] = *kv.Value
				}
			}
			err = c.b.meta.setConfigs(rr.ResourceName, set, req.ValidateOnly)
		}
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return ready{resp}
}

func checkAlterable(rt kmsg.ConfigResourceType) error {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		return nil
	case kmsg.ConfigResourceTypeBroker:
		return errorf(kerr.InvalidRequest, "broker configs are static; restart the broker with new flags")
	default:
		return errorf(kerr.InvalidRequest, "config resource type %v is not supported", rt)
	}
}
