package controller

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

func logAt(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// applyAt encodes and applies rec at index and returns the result.
func applyAt(t testing.TB, f *FSM, index uint64, rec Record) Result {
	t.Helper()
	b, err := Encode(rec)
	if err != nil {
		t.Fatalf("encode %T: %v", rec, err)
	}
	res, ok := f.Apply(logAt(index, b)).(Result)
	if !ok {
		t.Fatalf("Apply returned %T", f.Apply(logAt(index, b)))
	}
	return res
}

// testFSM has brokers 1, 2, 3 registered (epochs 1, 2, 3) and unfenced.
func testFSM(t testing.TB) *FSM {
	t.Helper()
	f := NewFSM()
	for id := int32(1); id <= 3; id++ {
		res := applyAt(t, f, uint64(id), &RegisterBroker{NodeID: id, Incarnation: [16]byte{byte(id)},
			Listener: fmt.Sprintf("127.0.0.1:%d", 9090+id), RaftAddr: fmt.Sprintf("127.0.0.1:%d", 9190+id)})
		if res.Err != nil || res.BrokerEpoch != int64(id) {
			t.Fatalf("register %d: %+v", id, res)
		}
		if res := applyAt(t, f, uint64(10+id), &UnfenceBroker{NodeID: id, Epoch: int64(id)}); res.Err != nil {
			t.Fatalf("unfence %d: %v", id, res.Err)
		}
	}
	return f
}

func encodeImage(t testing.TB, im *Image) []byte {
	t.Helper()
	b, err := EncodeImage(im)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	idA = [16]byte{0xa}
	idB = [16]byte{0xb}
	idX = [16]byte{0xee}
)

func parts(rs ...[]int32) []PartitionAssignment { return assignments(0, rs) }

func TestApplyValidation(t *testing.T) {
	steps := []struct {
		name string
		rec  Record
		want error // nil or a sentinel
	}{
		{"create", &CreateTopic{Name: "a", ID: idA, Partitions: parts([]int32{1, 2}, []int32{2, 3})}, nil},
		{"duplicate name", &CreateTopic{Name: "a", ID: idB, Partitions: parts([]int32{1})}, ErrTopicExists},
		{"duplicate id", &CreateTopic{Name: "b", ID: idA, Partitions: parts([]int32{1})}, ErrTopicExists},
		{"zero id", &CreateTopic{Name: "b", Partitions: parts([]int32{1})}, ErrInvalidRequest},
		{"bad name", &CreateTopic{Name: "a/b", ID: idB, Partitions: parts([]int32{1})}, ErrInvalidTopic},
		{"dot name", &CreateTopic{Name: "..", ID: idB, Partitions: parts([]int32{1})}, ErrInvalidTopic},
		{"no partitions", &CreateTopic{Name: "b", ID: idB}, ErrInvalidPartitions},
		{"unknown broker", &CreateTopic{Name: "b", ID: idB, Partitions: parts([]int32{1, 9})}, ErrInvalidReplicaAssignment},
		{"broker twice", &CreateTopic{Name: "b", ID: idB, Partitions: parts([]int32{1, 1})}, ErrInvalidReplicaAssignment},
		{"no replicas", &CreateTopic{Name: "b", ID: idB, Partitions: parts([]int32{})}, ErrInvalidReplicationFactor},
		{"uneven rf", &CreateTopic{Name: "b", ID: idB, Partitions: parts([]int32{1}, []int32{1, 2})}, ErrInvalidReplicaAssignment},
		{"index gap", &CreateTopic{Name: "b", ID: idB, Partitions: []PartitionAssignment{{Index: 1, Replicas: []int32{1}}}}, ErrInvalidReplicaAssignment},
		{"empty config name", &CreateTopic{Name: "b", ID: idB, Configs: map[string]string{"": "x"}, Partitions: parts([]int32{1})}, ErrInvalidConfig},
		{"create b", &CreateTopic{Name: "b", ID: idB, Configs: map[string]string{"retention.ms": "1"}, Partitions: parts([]int32{3})}, nil},
		{"alter unknown", &AlterConfigs{TopicID: idX, Configs: map[string]string{"a": "b"}}, ErrUnknownTopic},
		{"alter", &AlterConfigs{TopicID: idB, Configs: map[string]string{"cleanup.policy": "compact"}}, nil},
		{"add partitions unknown", &CreatePartitions{TopicID: idX, New: assignments(1, [][]int32{{1}})}, ErrUnknownTopic},
		{"add partitions gap", &CreatePartitions{TopicID: idA, New: assignments(3, [][]int32{{1, 2}})}, ErrInvalidReplicaAssignment},
		{"add partitions rf", &CreatePartitions{TopicID: idA, New: assignments(2, [][]int32{{1}})}, ErrInvalidReplicaAssignment},
		{"add partitions none", &CreatePartitions{TopicID: idA}, ErrInvalidPartitions},
		{"add partitions", &CreatePartitions{TopicID: idA, New: assignments(2, [][]int32{{3, 1}})}, nil},
		{"leader", &PartitionChange{TopicID: idA, Partition: 0, Leader: 2, LeaderEpoch: 1}, nil},
		{"leader repeated", &PartitionChange{TopicID: idA, Partition: 0, Leader: 2, LeaderEpoch: 1}, nil},
		{"two leaders in one epoch", &PartitionChange{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 1}, ErrFencedLeaderEpoch},
		{"epoch goes back", &PartitionChange{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 0}, ErrFencedLeaderEpoch},
		{"leader not a replica", &PartitionChange{TopicID: idA, Partition: 0, Leader: 3, LeaderEpoch: 5}, ErrInvalidRequest},
		{"unknown partition", &PartitionChange{TopicID: idA, Partition: 3, Leader: 1, LeaderEpoch: 5}, ErrUnknownTopic},
		{"negative partition", &PartitionChange{TopicID: idA, Partition: -1, Leader: 1, LeaderEpoch: 5}, ErrUnknownTopic},
		{"leader moves", &PartitionChange{TopicID: idA, Partition: 0, Leader: 1, LeaderEpoch: 4}, nil},
		{"leaderless", &PartitionChange{TopicID: idA, Partition: 0, Leader: NoLeader, LeaderEpoch: 5}, nil},
		{"fence stale epoch", &FenceBroker{NodeID: 2, Epoch: 1}, ErrStaleBrokerEpoch},
		{"fence unknown", &FenceBroker{NodeID: 7, Epoch: 1}, ErrUnknownBroker},
		{"fence", &FenceBroker{NodeID: 2, Epoch: 2}, nil},
		{"register no incarnation", &RegisterBroker{NodeID: 4, Listener: "h:1", RaftAddr: "h:2"}, ErrInvalidRegistration},
		{"register bad listener", &RegisterBroker{NodeID: 4, Incarnation: [16]byte{4}, Listener: "h", RaftAddr: "h:2"}, ErrInvalidRegistration},
		{"register port 0", &RegisterBroker{NodeID: 4, Incarnation: [16]byte{4}, Listener: "h:0", RaftAddr: "h:2"}, ErrInvalidRegistration},
		{"register negative", &RegisterBroker{NodeID: -4, Incarnation: [16]byte{4}, Listener: "h:1", RaftAddr: "h:2"}, ErrInvalidRegistration},
		{"re-register moved", &RegisterBroker{NodeID: 1, Incarnation: [16]byte{1}, Listener: "h:1", RaftAddr: "h:2"}, ErrInvalidRegistration},
		{"producer ids 0", &AllocateProducerIDs{BlockSize: 0}, ErrInvalidRequest},
		{"producer ids huge", &AllocateProducerIDs{BlockSize: MaxProducerIDBlock + 1}, ErrInvalidRequest},
		{"delete unknown", &DeleteTopic{ID: idX}, ErrUnknownTopic},
		{"delete", &DeleteTopic{ID: idB}, nil},
		{"delete again", &DeleteTopic{ID: idB}, ErrUnknownTopic},
		{"recreate", &CreateTopic{Name: "b", ID: idX, Partitions: parts([]int32{1})}, nil},
	}
	f := testFSM(t)
	for i, s := range steps {
		before := f.Image()
		res := applyAt(t, f, uint64(100+i), s.rec)
		switch {
		case s.want == nil && res.Err != nil:
			t.Fatalf("%s: unexpected error %v", s.name, res.Err)
		case s.want != nil && !errors.Is(res.Err, s.want):
			t.Fatalf("%s: error %v, want %v", s.name, res.Err, s.want)
		case s.want != nil && f.Image() != before:
			t.Fatalf("%s: a rejected record changed the image", s.name)
		case s.want != nil:
			var e *Error
			if !errors.As(res.Err, &e) || e.Msg == "" {
				t.Fatalf("%s: error %#v is not an *Error with a message", s.name, res.Err)
			}
		}
	}
	im := f.Image()
	a, _ := im.Topic("a")
	if len(a.Partitions) != 3 || a.Partitions[0].Leader != NoLeader || a.Partitions[0].LeaderEpoch != 5 ||
		a.Partitions[0].PartitionEpoch != 4 || fmt.Sprint(a.Partitions[0].ISR) != "[1]" || a.Partitions[1].Leader != NoLeader || a.Partitions[2].Replicas[0] != 3 {
		t.Fatalf("topic a: %+v", a)
	}
	if _, ok := im.TopicByID(idB); ok {
		t.Fatal("deleted topic b still found by id")
	}
	if b, ok := im.Topic("b"); !ok || b.ID != idX {
		t.Fatalf("recreated b: %+v", b)
	}
	if br, _ := im.Broker(2); !br.Fenced {
		t.Fatal("broker 2 not fenced")
	}
	if got := im.UnfencedBrokers(); fmt.Sprint(got) != "[1 3]" {
		t.Fatalf("unfenced %v", got)
	}
}

func TestRegisterBrokerEpochs(t *testing.T) {
	f := NewFSM()
	reg := &RegisterBroker{NodeID: 1, Incarnation: [16]byte{1}, Listener: "a:1", RaftAddr: "a:2"}
	if res := applyAt(t, f, 5, reg); res.Err != nil || res.BrokerEpoch != 5 {
		t.Fatalf("register: %+v", res)
	}
	if br, _ := f.Image().Broker(1); !br.Fenced || br.Epoch != 5 {
		t.Fatalf("new broker %+v", br)
	}
	// A retry of the same incarnation keeps the epoch.
	if res := applyAt(t, f, 6, reg); res.Err != nil || res.BrokerEpoch != 5 {
		t.Fatalf("retry: %+v", res)
	}
	if res := applyAt(t, f, 7, &UnfenceBroker{NodeID: 1, Epoch: 5}); res.Err != nil {
		t.Fatal(res.Err)
	}
	// A restart (new incarnation) gets a new epoch and starts fenced; the
	// old epoch is now stale.
	restarted := *reg
	restarted.Incarnation = [16]byte{2}
	restarted.Listener = "b:1"
	if res := applyAt(t, f, 8, &restarted); res.Err != nil || res.BrokerEpoch != 8 {
		t.Fatalf("restart: %+v", res)
	}
	if br, _ := f.Image().Broker(1); !br.Fenced || br.Epoch != 8 || br.Listener != "b:1" {
		t.Fatalf("restarted broker %+v", br)
	}
	if res := applyAt(t, f, 9, &UnfenceBroker{NodeID: 1, Epoch: 5}); !errors.Is(res.Err, ErrStaleBrokerEpoch) {
		t.Fatalf("unfence with old epoch: %v", res.Err)
	}
}

func TestProducerIDBlocks(t *testing.T) {
	f := NewFSM()
	var next int64
	idx := uint64(1)
	for _, size := range []int64{1000, 1, 7, 1000, MaxProducerIDBlock} {
		res := applyAt(t, f, idx, &AllocateProducerIDs{BlockSize: size})
		idx++
		if res.Err != nil || res.ProducerIDs.Start != next || res.ProducerIDs.Size != size {
			t.Fatalf("block %d: %+v, want start %d", size, res, next)
		}
		next += size
		if f.Image().NextProducerID() != next {
			t.Fatalf("next producer id %d, want %d", f.Image().NextProducerID(), next)
		}
		// A rejected allocation reserves nothing.
		applyAt(t, f, idx, &AllocateProducerIDs{BlockSize: -1})
		idx++
	}
	// Blocks continue after a snapshot restore: never reused.
	g := NewFSM()
	restore(t, g, snapshot(t, f))
	if res := applyAt(t, g, idx, &AllocateProducerIDs{BlockSize: 10}); res.ProducerIDs.Start != next {
		t.Fatalf("after restore: %+v, want start %d", res, next)
	}
	// Exhaustion is an error, not a wrap-around.
	h := NewFSM()
	restore(t, h, mustEncode(t, &snapshotV1{NextProducerID: 1<<63 - 5}))
	if res := applyAt(t, h, 1, &AllocateProducerIDs{BlockSize: 10}); !errors.Is(res.Err, ErrInvalidRequest) {
		t.Fatalf("exhausted: %+v", res)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func snapshot(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	return sink.Bytes()
}

func restore(t testing.TB, f *FSM, b []byte) {
	t.Helper()
	if err := f.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t testing.TB, s *snapshotV1) []byte {
	t.Helper()
	b, err := EncodeImage(&Image{index: s.Index, nextProducerID: s.NextProducerID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomLog is a reproducible mix of valid and invalid records over a few
// topics and brokers.
func randomLog(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	ids := [][16]byte{idA, idB, idX, {0xc}}
	names := []string{"a", "b", "x", "c"}
	var out [][]byte
	for range n {
		var rec Record
		ti := rng.IntN(len(ids))
		switch rng.IntN(13) {
		case 0:
			id := int32(rng.IntN(5))
			rec = &RegisterBroker{NodeID: id, Incarnation: [16]byte{byte(rng.IntN(3) + 1)}, Listener: fmt.Sprintf("h%d:1", id), RaftAddr: fmt.Sprintf("h%d:2", id)}
		case 1:
			rec = &UnfenceBroker{NodeID: int32(rng.IntN(5)), Epoch: int64(rng.IntN(len(out) + 1))}
		case 2:
			rec = &FenceBroker{NodeID: int32(rng.IntN(5)), Epoch: int64(rng.IntN(len(out) + 1))}
		case 3:
			rec = &CreateTopic{Name: names[ti], ID: ids[ti], Configs: map[string]string{"k": fmt.Sprint(rng.IntN(3))},
				Partitions: parts([]int32{int32(rng.IntN(5))}, []int32{int32(rng.IntN(5))})}
		case 4:
			rec = &DeleteTopic{ID: ids[ti]}
		case 5:
			rec = &CreatePartitions{TopicID: ids[ti], New: assignments(int32(2+rng.IntN(2)), [][]int32{{int32(rng.IntN(5))}})}
		case 6:
			rec = &AlterConfigs{TopicID: ids[ti], Configs: map[string]string{"a": "1", "b": fmt.Sprint(rng.IntN(9))}}
		case 7:
			rec = &PartitionChange{TopicID: ids[ti], Partition: int32(rng.IntN(3)), Leader: int32(rng.IntN(5)) - 1, LeaderEpoch: int32(rng.IntN(6))}
		case 8:
			rec = &AllocateProducerIDs{BlockSize: int64(rng.IntN(2000)) - 10}
		case 9:
			leader := int32(rng.IntN(5))
			rec = &AlterPartition{TopicID: ids[ti], Partition: int32(rng.IntN(3)), Leader: leader, LeaderEpoch: int32(rng.IntN(6)),
				PartitionEpoch: int32(rng.IntN(6)), ISR: []ISRMember{{NodeID: leader, BrokerEpoch: int64(rng.IntN(len(out) + 1))}}}
		case 10:
			rec = &ElectPreferred{Partitions: []PartitionRef{{TopicID: ids[ti], Partition: int32(rng.IntN(3))}}}
		case 11:
			var target []int32
			for range rng.IntN(3) {
				target = append(target, int32(rng.IntN(5)))
			}
			rec = &Reassign{TopicID: ids[ti], Partition: int32(rng.IntN(3)), Target: target}
		case 12:
			rec = &CompleteReassign{TopicID: ids[ti], Partition: int32(rng.IntN(3)), Leader: int32(rng.IntN(5)),
				LeaderEpoch: int32(rng.IntN(6)), PartitionEpoch: int32(rng.IntN(6))}
		}
		b, err := Encode(rec)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

func TestDeterministicReplay(t *testing.T) {
	accepted, topics, leaders := 0, 0, 0
	for seed := uint64(1); seed <= 20; seed++ {
		log := randomLog(seed, 400)
		a, b, c := NewFSM(), NewFSM(), NewFSM()
		var resA []string
		for i, e := range log {
			r := a.Apply(logAt(uint64(i+1), e)).(Result)
			if r.Err == nil {
				accepted++
			}
			resA = append(resA, fmt.Sprint(r))
			if r2 := b.Apply(logAt(uint64(i+1), e)).(Result); fmt.Sprint(r2) != resA[i] {
				t.Fatalf("seed %d entry %d: results differ: %v vs %v", seed, i, r2, r)
			}
			if i == len(log)/2 {
				// c joins from a snapshot, as a lagging follower would.
				restore(t, c, snapshot(t, a))
			}
			if i > len(log)/2 {
				c.Apply(logAt(uint64(i+1), e))
			}
		}
		ea := encodeImage(t, a.Image())
		if !bytes.Equal(ea, encodeImage(t, b.Image())) || !bytes.Equal(ea, encodeImage(t, c.Image())) {
			t.Fatalf("seed %d: replicas diverged", seed)
		}
		for _, tp := range a.Image().Topics() {
			topics++
			for _, p := range tp.Partitions {
				if p.LeaderEpoch > 0 {
					leaders++
				}
			}
		}
	}
	// The generator must exercise the FSM, not only its rejections.
	if accepted < 20*400/10 || topics < 10 || leaders < 5 {
		t.Fatalf("weak random logs: %d accepted, %d topics, %d leader changes at the end", accepted, topics, leaders)
	}
	t.Logf("%d records accepted, %d topics and %d elected partitions at the end", accepted, topics, leaders)
}

func TestSnapshotRestoreIdentical(t *testing.T) {
	f := testFSM(t)
	applyAt(t, f, 20, &CreateTopic{Name: "orders", ID: idA, Configs: map[string]string{"retention.ms": "60000", "cleanup.policy": "delete"},
		Partitions: parts([]int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2})})
	applyAt(t, f, 21, &CreateTopic{Name: "audit", ID: idB, Partitions: parts([]int32{2})})
	applyAt(t, f, 22, &PartitionChange{TopicID: idA, Partition: 1, Leader: 3, LeaderEpoch: 4})
	applyAt(t, f, 23, &AllocateProducerIDs{BlockSize: 1000})
	applyAt(t, f, 24, &FenceBroker{NodeID: 3, Epoch: 3})
	snap := snapshot(t, f)

	g := NewFSM()
	old := g.Image()
	restore(t, g, snap)
	select {
	case <-old.Changed():
	default:
		t.Fatal("restore did not signal Changed")
	}
	if !bytes.Equal(encodeImage(t, f.Image()), encodeImage(t, g.Image())) {
		t.Fatal("restored image differs")
	}
	im := g.Image()
	if im.Index() != 24 || im.NextProducerID() != 1000 {
		t.Fatalf("index %d next pid %d", im.Index(), im.NextProducerID())
	}
	if o, _ := im.TopicByID(idA); o.Name != "orders" || o.Partitions[1].Leader != 3 || o.Configs["cleanup.policy"] != "delete" {
		t.Fatalf("orders: %+v", o)
	}
	if got := fmt.Sprint(im.UnfencedBrokers()); got != "[1 2]" {
		t.Fatalf("unfenced %s", got)
	}

	// A corrupt snapshot is refused and the image kept.
	before := g.Image()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("WEIRMETA"), snap[8:]...),
		"version":   append(append([]byte(snapshotMagic), 2), snap[9:]...),
		"truncated": snap[:len(snap)-3],
		"trailing":  append(bytes.Clone(snap), 0),
	} {
		if err := g.Restore(io.NopCloser(bytes.NewReader(b))); err == nil {
			t.Errorf("%s: restore succeeded", name)
		}
	}
	if g.Image() != before {
		t.Fatal("failed restore replaced the image")
	}
}

func TestRestoreRejectsInvalidImage(t *testing.T) {
	bad := []snapshotV1{
		{NextProducerID: -1},
		{Brokers: []Broker{{NodeID: 1}, {NodeID: 1}}},
		{Topics: []Topic{{Name: "../etc", ID: idA, Partitions: []Partition{{Replicas: []int32{1}}}}}},
		{Brokers: []Broker{{NodeID: 1}}, Topics: []Topic{{Name: "a", ID: idA, Partitions: []Partition{{Replicas: []int32{2}}}}}},
		{Brokers: []Broker{{NodeID: 1}}, Topics: []Topic{{Name: "a", ID: idA}}},
		{Brokers: []Broker{{NodeID: 1}}, Topics: []Topic{{Name: "a", Partitions: []Partition{{Replicas: []int32{1}}}}}},
		{Brokers: []Broker{{NodeID: 1}}, Topics: []Topic{{Name: "a", ID: idA, Partitions: []Partition{{Index: 1, Replicas: []int32{1}}}}}},
		{Brokers: []Broker{{NodeID: 1}}, Topics: []Topic{{Name: "a", ID: idA, Partitions: []Partition{{Replicas: []int32{1}, Leader: 4}}}}},
		{Brokers: []Broker{{NodeID: 1}}, Topics: []Topic{
			{Name: "a", ID: idA, Partitions: []Partition{{Replicas: []int32{1}, Leader: 1}}},
			{Name: "b", ID: idA, Partitions: []Partition{{Replicas: []int32{1}, Leader: 1}}}}},
	}
	for i, s := range bad {
		b, err := encodeSnapshot(&s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeImage(b); err == nil {
			t.Errorf("case %d: accepted %+v", i, s)
		}
	}
}

func FuzzRestore(f *testing.F) {
	g := testFSM(f)
	applyAt(f, g, 20, &CreateTopic{Name: "orders", ID: idA, Configs: map[string]string{"a": "b"},
		Partitions: parts([]int32{1, 2}, []int32{2, 3})})
	applyAt(f, g, 21, &PartitionChange{TopicID: idA, Partition: 1, Leader: 3, LeaderEpoch: 4})
	f.Add(snapshot(f, g))
	f.Add(snapshot(f, NewFSM()))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsm := NewFSM()
		if err := fsm.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			return
		}
		// A restored image must re-encode to something that restores to
		// the same image, and accept further records.
		again := NewFSM()
		restore(t, again, snapshot(t, fsm))
		if !bytes.Equal(encodeImage(t, fsm.Image()), encodeImage(t, again.Image())) {
			t.Fatal("restore is not stable")
		}
		for i, e := range randomLog(1, 50) {
			fsm.Apply(logAt(uint64(i)+fsm.Image().Index()+1, e))
		}
	})
}

func TestConcurrentReaders(t *testing.T) {
	f := testFSM(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				im := f.Image()
				// Within one image every topic found by name is found
				// by id with the same partitions.
				for _, tp := range im.Topics() {
					byID, ok := im.TopicByID(tp.ID)
					if !ok || byID.Name != tp.Name || len(byID.Partitions) != len(tp.Partitions) {
						t.Errorf("inconsistent image at %d", im.Index())
						return
					}
					for _, p := range tp.Partitions {
						_ = p.Leader + p.Replicas[0]
					}
				}
				_ = im.ReplicaLoad()
			}
		}()
	}
	for i := range 300 {
		id := [16]byte{byte(i), byte(i >> 8), 1}
		idx := uint64(100 + 3*i)
		applyAt(t, f, idx, &CreateTopic{Name: fmt.Sprint("t", i), ID: id, Partitions: parts([]int32{1, 2})})
		applyAt(t, f, idx+1, &PartitionChange{TopicID: id, Partition: 0, Leader: 2, LeaderEpoch: 1})
		if i%3 == 0 {
			applyAt(t, f, idx+2, &DeleteTopic{ID: id})
		}
	}
	close(stop)
	wg.Wait()
}
