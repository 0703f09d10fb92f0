package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one supported request key: the version range we advertise and the
// handler that serves it.
type api struct {
	min, max int16
	handle   func(c *conn, req kmsg.Request) response
}

// on adapts a typed handler to the table.
func on[R kmsg.Request](min, max int16, h func(c *conn, req R) response) api {
	return api{min: min, max: max, handle: func(c *conn, req kmsg.Request) response {
		return h(c, req.(R))
	}}
}

// apis is the advertised profile: broad and coherent, close to Kafka 3.7.
// Old versions stay because real clients still send them: kafka-go uses
// JoinGroup v1/v2, SyncGroup v0, OffsetCommit v2 and FindCoordinator v0;
// goka pins sarama to Kafka 2.0; librdkafka turns compression off unless
// Produce min 0 is advertised (KAFKA-18659), though v0-2 are refused.
// Fetch starts at v4 (magic 2 only). Fetch v13+ address topics by id.
var apis map[int16]api

func init() {
	apis = map[int16]api{
		kmsg.Produce.Int16():                    on(0, 10, handleProduce),
		kmsg.Fetch.Int16():                      on(4, 16, handleFetch),
		kmsg.ListOffsets.Int16():                on(1, 8, handleListOffsets),
		kmsg.Metadata.Int16():                   on(0, 12, handleMetadata),
		kmsg.OffsetCommit.Int16():               on(2, 9, handleOffsetCommit),
		kmsg.OffsetFetch.Int16():                on(1, 9, handleOffsetFetch),
		kmsg.FindCoordinator.Int16():            on(0, 4, handleFindCoordinator),
		kmsg.JoinGroup.Int16():                  on(0, 9, handleJoinGroup),
		kmsg.Heartbeat.Int16():                  on(0, 4, handleHeartbeat),
		kmsg.LeaveGroup.Int16():                 on(0, 5, handleLeaveGroup),
		kmsg.SyncGroup.Int16():                  on(0, 5, handleSyncGroup),
		kmsg.DescribeGroups.Int16():             on(0, 5, handleDescribeGroups),
		kmsg.ListGroups.Int16():                 on(0, 4, handleListGroups),
		kmsg.ApiVersions.Int16():                on(0, 3, handleAPIVersions),
		kmsg.CreateTopics.Int16():               on(0, 7, handleCreateTopics),
		kmsg.DeleteTopics.Int16():               on(0, 6, handleDeleteTopics),
		kmsg.DeleteRecords.Int16():              on(0, 2, handleDeleteRecords),
		kmsg.InitProducerID.Int16():             on(0, 4, handleInitProducerID),
		kmsg.AddPartitionsToTxn.Int16():         on(0, 4, handleAddPartitionsToTxn),
		kmsg.AddOffsetsToTxn.Int16():            on(0, 3, handleAddOffsetsToTxn),
		kmsg.EndTxn.Int16():                     on(0, 3, handleEndTxn),
		kmsg.WriteTxnMarkers.Int16():            on(0, 1, handleWriteTxnMarkers),
		kmsg.TxnOffsetCommit.Int16():            on(0, 5, handleTxnOffsetCommit),
		kmsg.DescribeProducers.Int16():          on(0, 0, handleDescribeProducers),
		kmsg.DescribeTransactions.Int16():       on(0, 0, handleDescribeTransactions),
		kmsg.ListTransactions.Int16():           on(0, 1, handleListTransactions),
		kmsg.DescribeConfigs.Int16():            on(0, 4, handleDescribeConfigs),
		kmsg.AlterConfigs.Int16():               on(0, 2, handleAlterConfigs),
		kmsg.CreatePartitions.Int16():           on(0, 3, handleCreatePartitions),
		kmsg.DeleteGroups.Int16():               on(0, 2, handleDeleteGroups),
		kmsg.IncrementalAlterConfigs.Int16():    on(0, 1, handleIncrementalAlterConfigs),
		kmsg.OffsetDelete.Int16():               on(0, 0, handleOffsetDelete),
		kmsg.DescribeCluster.Int16():            on(0, 1, handleDescribeCluster),
		kmsg.DescribeLogDirs.Int16():            on(0, 4, handleDescribeLogDirs),
		kmsg.ElectLeaders.Int16():               on(0, 2, handleElectLeaders),
		kmsg.AlterPartitionAssignments.Int16():  on(0, 1, handleAlterPartitionAssignments),
		kmsg.ListPartitionReassignments.Int16(): on(0, 0, handleListPartitionReassignments),
	}
}

func lookupAPI(key int16) (api, bool) {
	a, ok := apis[key]
	return a, ok
}

func advertisedKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		if a, ok := apis[k]; ok {
			keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
		}
	}
	return keys
}

func handleAPIVersions(c *conn, req *kmsg.ApiVersionsRequest) response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = advertisedKeys()
	return ready{resp}
}

// unsupportedAPIVersions is the KIP-511 answer to an ApiVersions version we
// do not speak: v0 layout, UNSUPPORTED_VERSION, and our range for key 18.
func unsupportedAPIVersions() *kmsg.ApiVersionsResponse {
	a := apis[kmsg.ApiVersions.Int16()]
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: kmsg.ApiVersions.Int16(), MinVersion: a.min, MaxVersion: a.max}}
	return resp
}
