package broker_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/broker/brokertest"
)

var clientName = "raw-test"

// rawConn is a hand-driven client connection for framing tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, nc}
}

// send writes a request frame: header v1 (or v2 when flexible) plus body.
func (c *rawConn) send(key, version int16, corr int32, body []byte, flexible bool) {
	c.write(append(header(key, version, corr, flexible), body...))
}

func (c *rawConn) write(frame []byte) {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
	if _, err := c.nc.Write(append(out, frame...)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) read() (int32, []byte) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		c.t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:]
}

// closed reports whether the broker closed the connection.
func (c *rawConn) closed() bool {
	var b [1]byte
	_, err := c.nc.Read(b[:])
	return err == io.EOF
}

func TestAPIVersionsUnsupportedVersionAnswersV0(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	c.send(18, 99, 7, []byte{0, 0, 0}, true)
	corr, body := c.read()
	if corr != 7 {
		t.Fatalf("correlation id %d, want 7", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 {
		t.Fatalf("got %+v, want UNSUPPORTED_VERSION with the ApiVersions range", resp)
	}
}

func TestAPIVersionsAdvertisesBroadProfile(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
	c.send(18, 3, 1, req.AppendTo(nil), true)
	_, body := c.read() // ApiVersions always answers with header v0
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	ranges := make(map[int16][2]int16)
	for _, k := range resp.ApiKeys {
		ranges[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for key, want := range map[int16][2]int16{
		0:  {0, 10}, // Produce min 0 for librdkafka's compression
		11: {0, 9},  // JoinGroup v0-1 for kafka-go
		8:  {2, 9},  // OffsetCommit v2 for kafka-go
		10: {0, 4},  // FindCoordinator v0 for kafka-go
	} {
		if got := ranges[key]; got[0] > want[0] || got[1] < want[1] {
			t.Errorf("%s advertised %v, want at least %v", kmsg.NameForKey(key), got, want)
		}
	}
}

func TestMalformedRequestsCloseOnlyThatConnection(t *testing.T) {
	b := brokertest.Start(t)
	cases := map[string]func(c *rawConn){
		"unknown api key":     func(c *rawConn) { c.send(999, 0, 1, nil, false) },
		"unsupported version": func(c *rawConn) { c.send(3, 99, 1, nil, true) },
		"garbage body":        func(c *rawConn) { c.send(3, 12, 1, []byte{0xff, 0xff, 0xff}, true) },
		"short header":        func(c *rawConn) { c.write([]byte{0, 3}) },
		"oversized frame":     func(c *rawConn) { c.nc.Write([]byte{0x7f, 0xff, 0xff, 0xff}) },
		"negative size":       func(c *rawConn) { c.nc.Write([]byte{0xff, 0xff, 0xff, 0xff}) },
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, b.Addr())
			send(c)
			if !c.closed() {
				t.Fatal("connection stayed open")
			}
		})
	}
	// The broker still serves.
	c := dialRaw(t, b.Addr())
	c.send(18, 0, 42, nil, false)
	if corr, _ := c.read(); corr != 42 {
		t.Fatalf("healthy connection got correlation %d", corr)
	}
}

func TestAcksZeroSendsNoResponse(t *testing.T) {
	b := brokertest.Start(t)
	mustCreate(t, testCtx(t), client(t, b.Addr()), "acks0", 1)
	c := dialRaw(t, b.Addr())
	req := acksZeroProduce("acks0", "fire-and-forget")
	c.send(0, 7, 1, req.AppendTo(nil), false)
	c.send(18, 0, 2, nil, false)
	if corr, _ := c.read(); corr != 2 {
		t.Fatalf("first response has correlation %d; acks=0 must not be answered", corr)
	}
}

// TestFetchOfEmptyPartitionSendsEmptyNotNullRecords: Kafka encodes an empty
// partition's records as length 0; sarama (Fetch v8), librdkafka and
// kafka-python cannot parse the null (length -1) that an unset field gives.
func TestFetchOfEmptyPartitionSendsEmptyNotNullRecords(t *testing.T) {
	b := brokertest.Start(t)
	cl := client(t, b.Addr())
	mustCreate(t, testCtx(t), cl, "empty", 1)
	c := dialRaw(t, b.Addr())
	req := fetchV8("empty", 0, 0)
	c.send(1, 8, 3, req.AppendTo(nil), false)
	_, body := c.read()
	// The v8 response ends with the partition's aborted transactions
	// (null, -1) and then its records: length 0, no bytes.
	if tail := body[len(body)-8:]; string(tail) != "\xff\xff\xff\xff\x00\x00\x00\x00" {
		t.Fatalf("response ends % x; want null aborted transactions then empty (not null) records", tail)
	}
}

// An acks=0 produce queued behind another request must not leave that
// request's reply sitting unflushed in the connection's buffer.
func TestReplyBeforeAcksZeroProduceIsFlushed(t *testing.T) {
	b := brokertest.Start(t)
	mustCreate(t, testCtx(t), client(t, b.Addr()), "acks0-flush", 1)
	c := dialRaw(t, b.Addr())
	req := acksZeroProduce("acks0-flush", "x")
	// Both frames in one write, so the produce is queued before the
	// ApiVersions reply is written.
	var frames []byte
	for _, f := range [][]byte{header(18, 0, 1, false), append(header(0, 7, 2, false), req.AppendTo(nil)...)} {
		frames = binary.BigEndian.AppendUint32(frames, uint32(len(f)))
		frames = append(frames, f...)
	}
	if _, err := c.nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	if corr, _ := c.read(); corr != 1 {
		t.Fatalf("got correlation %d, want the ApiVersions reply", corr)
	}
}

func header(key, version int16, corr int32, flexible bool) []byte {
	var h []byte
	h = kbin.AppendInt16(h, key)
	h = kbin.AppendInt16(h, version)
	h = kbin.AppendInt32(h, corr)
	h = kbin.AppendNullableString(h, &clientName)
	if flexible {
		h = append(h, 0)
	}
	return h
}

// Group requests on one connection run in the order they were sent, even
// when an earlier request (a long poll) is still waiting.
func TestGroupRequestsKeepConnectionOrder(t *testing.T) {
	b := brokertest.Start(t)
	cl := client(t, b.Addr())
	mustCreate(t, testCtx(t), cl, "ordered", 1)
	// The raw connection skips FindCoordinator; a client's first one is
	// what creates __consumer_offsets.
	if _, err := kadm.NewClient(cl).FetchOffsets(testCtx(t), "ordered-group"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.Addr())
	fetch := fetchV8("ordered", 300, 1)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 2, "ordered-group", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "ordered"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 42
	ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{cp}
	commit.Topics = []kmsg.OffsetCommitRequestTopic{ct}

	get := kmsg.NewPtrOffsetFetchRequest()
	get.Version, get.Group = 1, "ordered-group"
	gt := kmsg.NewOffsetFetchRequestTopic()
	gt.Topic, gt.Partitions = "ordered", []int32{0}
	get.Topics = []kmsg.OffsetFetchRequestTopic{gt}

	c.send(1, 8, 1, fetch.AppendTo(nil), false)
	c.send(8, 2, 2, commit.AppendTo(nil), false)
	c.send(9, 1, 3, get.AppendTo(nil), false)
	var body []byte
	for want := int32(1); want <= 3; want++ {
		corr, b := c.read()
		if corr != want {
			t.Fatalf("reply %d out of order: got correlation %d", want, corr)
		}
		body = b
	}
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = 1
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0].Partitions[0].Offset; got != 42 {
		t.Fatalf("OffsetFetch sent after OffsetCommit(42) saw %d", got)
	}
}

// A failed acks=0 produce closes the connection, as Kafka does, so the
// client refreshes its metadata instead of writing into the void.
func TestFailedAcksZeroProduceClosesConnection(t *testing.T) {
	b := brokertest.Start(t)
	c := dialRaw(t, b.Addr())
	req := acksZeroProduce("no-such-topic", "x")
	c.send(0, 7, 1, req.AppendTo(nil), false)
	if !c.closed() {
		t.Fatal("connection stayed open after a failed acks=0 produce")
	}
}

// acksZeroProduce is a Produce v7 with acks=0 of one record to partition 0.
func acksZeroProduce(topic, value string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, 0, 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(-1, -1, -1, value)
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return req
}

// fetchV8 is a Fetch v8 of partition 0 from offset 0.
func fetchV8(topic string, maxWaitMillis, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 8, maxWaitMillis, minBytes, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	req.Topics = []kmsg.FetchRequestTopic{ft}
	return req
}
