package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/controller"
)

// metadata is all that request handlers know of cluster metadata and
// placement: reads come from this broker's copy of the controller's image,
// changes go through the controller quorum and return once this broker
// has applied them. It is the same on one node and on many (a single node
// is a quorum of one), so no handler knows how many brokers there are.
// The machinery behind it (cluster.go, reconcile.go, isr.go, leaders.go,
// reassign.go, fence.go) is out of a handler's reach.
type metadata interface {
	// image is this broker's copy of the metadata image.
	image() *controller.Image
	// catchUp waits until the image holds every change the active
	// controller has acknowledged; false if it could not.
	catchUp() bool
	clusterID() string

	metadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse
	describeCluster(resp *kmsg.DescribeClusterResponse)
	// coordinator is the broker coordinating key (a group id or a
	// transactional id) in the coordinator topic ct.
	coordinator(ct coordTopic, key string) (node int32, host string, port int32, err error)
	// inSyncReplicas counts a partition's ISR members in service.
	inSyncReplicas(topicID [16]byte, partition int32) int

	createFromRequest(rt kmsg.CreateTopicsRequestTopic, partitions int32, assign [][]int32, validateOnly bool, st *kmsg.CreateTopicsResponseTopic) error
	deleteTopic(name string) error
	addPartitions(t *topic, total int32, assign [][]int32) error
	setConfigs(name string, configs map[string]string, validateOnly bool) error
	elect(targets []electionTarget, how int8, timeout time.Duration) map[electionTarget]error
	reassign(t *topic, partition int32, replicas []int32, allowRF bool) error
	allocateProducerID() (int64, error)
}

var _ metadata = (*cluster)(nil)
