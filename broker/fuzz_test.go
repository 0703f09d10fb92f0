package broker

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecode feeds arbitrary frames through header parsing, version checks,
// kmsg decoding and the handlers. Nothing may panic, and every reply must
// encode. The connection's context is already cancelled, so handlers that
// would block (long polls, joins) answer at once.
func FuzzDecode(f *testing.F) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", f.TempDir()
	cfg.GroupInitialRebalanceDelay = 0
	cfg.OffsetsPartitions = 1
	cfg.AutoCreateTopics = false
	cfg.MaxPartitionsPerTopic = 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := Start(context.Background(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })

	for _, req := range seedRequests() {
		f.Add(frameFor(req))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		c := &conn{b: b, nc: server, ctx: ctx, cancel: cancel, log: b.log}
		if hugeTagCount(frame) {
			t.Skip("kmsg spins on tag counts larger than the frame; see hugeTagCount")
		}
		p, err := c.decode(frame)
		if err != nil || p.resp == nil {
			return
		}
		if resp := p.resp.await(); resp != nil {
			appendResponse(nil, p, resp)
		}
		// Keep the broker small across inputs: drop what an input created.
		for _, t := range b.allTopics() {
			if !t.internal {
				b.cluster.deleteTopic(t.name)
			}
		}
	})
}

// hugeTagCount reports whether a flexible frame holds a uvarint larger than
// the frame itself. kmsg (v1.15.0) reads a tagged-field count and loops that
// many times even after its reader runs out of bytes, so such a frame costs
// up to a minute of CPU before failing. It is a known gap (see the README's
// known issues); the fuzzer skips these frames so it keeps exploring.
func hugeTagCount(frame []byte) bool {
	if len(frame) < 4 {
		return false
	}
	req := kmsg.RequestForKey(int16(binary.BigEndian.Uint16(frame)))
	if req == nil {
		return false
	}
	req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
	if !req.IsFlexible() {
		return false
	}
	for i := range frame {
		var v uint64
		for j, shift := i, 0; j < len(frame) && j < i+5; j, shift = j+1, shift+7 {
			v |= uint64(frame[j]&0x7f) << shift
			if frame[j] < 0x80 {
				break
			}
		}
		if v > uint64(len(frame)) {
			return true
		}
	}
	return false
}

func seedRequests() []kmsg.Request {
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	topic := "fuzz"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	ft.Partitions = []kmsg.FetchRequestTopicPartition{kmsg.NewFetchRequestTopicPartition()}
	fetch.Topics = []kmsg.FetchRequestTopic{ft}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType = 5, "g", "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version = 5
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "fuzz2", NumPartitions: 1, ReplicationFactor: 1}}
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	logDirs := kmsg.NewPtrDescribeLogDirsRequest()
	logDirs.Version = 4
	logDirs.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	elect := kmsg.NewPtrElectLeadersRequest()
	elect.Version = 2
	elect.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
	move := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	move.Version = 1
	move.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{
		{Partition: 0, Replicas: []int32{1}}, {Partition: 1}}}}
	return []kmsg.Request{av, md, fetch, join, create, kmsg.NewPtrListOffsetsRequest(), kmsg.NewPtrOffsetFetchRequest(),
		elect, move, kmsg.NewPtrListPartitionReassignmentsRequest(), logDirs}
}

func frameFor(req kmsg.Request) []byte {
	if req.GetVersion() == 0 && req.Key() != 18 && req.MaxVersion() > 0 {
		req.SetVersion(1)
	}
	var buf []byte
	buf = kbin.AppendInt16(buf, req.Key())
	buf = kbin.AppendInt16(buf, req.GetVersion())
	buf = kbin.AppendInt32(buf, 1)
	id := "fuzz"
	buf = kbin.AppendNullableString(buf, &id)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	return req.AppendTo(buf)
}
