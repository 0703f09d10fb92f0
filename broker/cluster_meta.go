package broker

import (
	"errors"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/controller"
)

// liveBrokers are the registered brokers not fenced.
func liveBrokers(img *controller.Image) []controller.Broker {
	var out []controller.Broker
	for _, br := range img.Brokers() {
		if !br.Fenced {
			out = append(out, br)
		}
	}
	return out
}

func inService(img *controller.Image, id int32) bool {
	br, ok := img.Broker(id)
	return ok && !br.Fenced
}

func splitListener(addr string) (string, int32) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, int32(n)
}

// coordinator finds the broker coordinating key in ct: the leader of the
// key's partition. The topic is created on first use.
func (c *cluster) coordinator(ct coordTopic, key string) (int32, string, int32, error) {
	img := c.ctl.Image()
	t, ok := img.Topic(ct.name)
	if !ok {
		_, err := c.createTopic(ct.name, ct.partitions, c.b.cfg.DefaultReplicationFactor, ct.configs(), nil)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return -1, "", -1, errorf(kerr.CoordinatorNotAvailable, "creating %s: %v", ct.name, err)
		}
		// Single-replica partitions are led from creation: answer now.
		// Replicated ones elect first, and the client asks again.
		img = c.ctl.Image()
		if t, ok = img.Topic(ct.name); !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
	}
	p := ct.partitionFor(key)
	if int(p) >= len(t.Partitions) {
		return -1, "", -1, errorf(kerr.CoordinatorNotAvailable, "%s has %d partitions, brokers expect %d", ct.name, len(t.Partitions), ct.partitions)
	}
	leader := t.Partitions[p].Leader
	br, ok := img.Broker(leader)
	if !ok || br.Fenced {
		return -1, "", -1, kerr.CoordinatorNotAvailable
	}
	host, port := splitListener(br.Listener)
	return leader, host, port, nil
}

// describeCluster fills DescribeCluster's brokers and controller.
func (c *cluster) describeCluster(resp *kmsg.DescribeClusterResponse) {
	for _, br := range liveBrokers(c.ctl.Image()) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID = br.NodeID
		db.Host, db.Port = splitListener(br.Listener)
		resp.Brokers = append(resp.Brokers, db)
	}
	resp.ClusterID = c.clusterID()
	resp.ControllerID = c.controllerID()
}
