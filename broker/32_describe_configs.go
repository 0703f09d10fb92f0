package broker

import (
	"slices"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeConfigs(c *conn, req *kmsg.DescribeConfigsRequest) response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	var caughtUp sync.Once
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			// Configs altered through another broker a moment ago must
			// show here too: read them once caught up.
			caughtUp.Do(func() { c.b.meta.catchUp() })
			if t := c.b.lookupTopic(rr.ResourceName); t != nil {
				sr.Configs = c.b.describeTopicConfigs(t.configs, rr.ConfigNames)
			} else {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = errMessage(errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rr.ResourceName))
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName == "" || rr.ResourceName == strconv.Itoa(int(c.b.cfg.NodeID)) {
				sr.Configs = c.b.describeBrokerConfigs(rr.ConfigNames)
			} else {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = errMessage(errorf(kerr.InvalidRequest, "broker %q does not exist", rr.ResourceName))
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = errMessage(errorf(kerr.InvalidRequest, "config resource type %v is not supported", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return ready{resp}
}

// describeTopicConfigs lists every topic config we know (or only those
// named), marking which were set on the topic.
func (b *Broker) describeTopicConfigs(set map[string]string, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, tc := range topicConfigs {
		if names != nil && !slices.Contains(names, tc.name) {
			continue
		}
		v, explicit := configValue(b.cfg, set, tc.name)
		d := kmsg.NewDescribeConfigsResponseResourceConfig()
		d.Name, d.Value, d.IsDefault = tc.name, &v, !explicit
		d.Source = kmsg.ConfigSourceDefaultConfig
		if explicit {
			d.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		d.ConfigType = configType(tc)
		out = append(out, d)
	}
	return out
}

func configType(tc topicConfig) kmsg.ConfigType {
	if _, err := strconv.ParseInt(tc.def(DefaultConfig()), 10, 64); err == nil {
		return kmsg.ConfigTypeLong
	}
	return kmsg.ConfigTypeString
}

// describeBrokerConfigs reports the broker's static settings, read-only.
func (b *Broker) describeBrokerConfigs(names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	static := [][2]string{
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID))},
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics)},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions))},
		{"default.replication.factor", "1"},
		{"message.max.bytes", strconv.Itoa(int(b.cfg.MaxMessageBytes))},
		{"log.segment.bytes", strconv.FormatInt(b.cfg.SegmentBytes, 10)},
		{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxRequestBytes))},
		{"offsets.topic.num.partitions", strconv.Itoa(int(b.cfg.OffsetsPartitions))},
		{"group.initial.rebalance.delay.ms", strconv.FormatInt(b.cfg.GroupInitialRebalanceDelay.Milliseconds(), 10)},
		{"log.retention.check.interval.ms", strconv.FormatInt(b.cfg.RetentionCheckInterval.Milliseconds(), 10)},
		{"transaction.state.log.num.partitions", strconv.Itoa(int(b.cfg.TransactionPartitions))},
		{"transaction.max.timeout.ms", strconv.FormatInt(b.cfg.TransactionMaxTimeout.Milliseconds(), 10)},
		{"transactional.id.expiration.ms", strconv.FormatInt(b.cfg.TransactionalIDExpiration.Milliseconds(), 10)},
		{"transaction.abort.timed.out.transaction.cleanup.interval.ms", strconv.FormatInt(b.cfg.TransactionAbortInterval.Milliseconds(), 10)},
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, kv := range static {
		if names != nil && !slices.Contains(names, kv[0]) {
			continue
		}
		d := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := kv[1]
		d.Name, d.Value, d.ReadOnly = kv[0], &v, true
		d.Source = kmsg.ConfigSourceStaticBrokerConfig
		out = append(out, d)
	}
	return out
}
