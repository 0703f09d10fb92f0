package broker

import (
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleIncrementalAlterConfigs(c *conn, req *kmsg.IncrementalAlterConfigsRequest) response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := checkAlterable(rr.ResourceType)
		if err == nil {
			err = c.b.alterIncrementally(rr, req.ValidateOnly)
		}
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return ready{resp}
}

func (b *Broker) alterIncrementally(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	t := b.knownTopic(rr.ResourceName)
	if t == nil {
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rr.ResourceName)
	}
	set := maps.Clone(t.configs)
	if set == nil {
		set = make(map[string]string)
	}
	for _, op := range rr.Configs {
		if err := applyConfigOp(b.cfg, set, op); err != nil {
			return err
		}
	}
	return b.meta.setConfigs(rr.ResourceName, set, validateOnly)
}

// applyConfigOp applies one set/delete/append/subtract to set. Append and
// subtract treat the value as a comma-separated list (cleanup.policy).
func applyConfigOp(cfg Config, set map[string]string, op kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	value := ""
	if op.Value != nil {
		value = *op.Value
	}
	switch op.Op {
	case kmsg.IncrementalAlterConfigOpSet:
		set[op.Name] = value
	case kmsg.IncrementalAlterConfigOpDelete:
		delete(set, op.Name)
	case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		if _, ok := lookupTopicConfig(op.Name); !ok {
			return errorf(kerr.InvalidConfig, "unknown or unsupported topic config %q", op.Name)
		}
		cur, _ := configValue(cfg, set, op.Name)
		list := strings.Split(cur, ",")
		if op.Op == kmsg.IncrementalAlterConfigOpAppend {
			if !slices.Contains(list, value) {
				list = append(list, value)
			}
		} else {
			list = slices.DeleteFunc(list, func(s string) bool { return s == value })
		}
		set[op.Name] = strings.Join(list, ",")
	default:
		return errorf(kerr.InvalidRequest, "unknown config operation %d", op.Op)
	}
	return nil
}
