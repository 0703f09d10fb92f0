package replica

import (
	"bytes"
	"errors"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/batch"
)

func sampleState() fsmState {
	return fsmState{
		Index: 42, LogStart: 3, LogEnd: 100, Clock: 1_700_000_000_000,
		Producers: []producerWindow{
			{ID: 1, Epoch: 0, LastTS: 5, Recent: []seqRange{{First: 0, Last: 1, Base: 3}}},
			{ID: 9, Epoch: 2, LastTS: 7, Recent: []seqRange{
				{First: 10, Last: 11, Base: 20}, {First: 12, Last: 12, Base: 30},
				{First: math.MaxInt32, Last: 2, Base: 40}, // wrapped sequence
			}},
		},
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, st := range []fsmState{{Clock: -1}, sampleState()} {
		b := appendState(nil, &st)
		got, err := decodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Producers) == 0 {
			st.Producers = []producerWindow{}
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, st)
		}
		for i := range b { // every single-byte corruption is caught
			c := bytes.Clone(b)
			c[i] ^= 0x40
			if _, err := decodeState(c); !errors.Is(err, errBadState) {
				t.Fatalf("corrupt byte %d accepted", i)
			}
		}
		if _, err := decodeState(b[:len(b)-1]); !errors.Is(err, errBadState) {
			t.Fatal("truncated state accepted")
		}
	}
}

// TestProducerWindowsRebuild checks that the persisted windows rebuild a
// table that decides exactly like the one they were taken from.
func TestProducerWindowsRebuild(t *testing.T) {
	p := newProducers(nil)
	var base int64
	record := func(pid int64, epoch int16, seq int32, n int) {
		h, _ := batch.ParseHeader(mkBatch(t, pid, epoch, seq, n, "w"))
		p.record(h, base)
		base += int64(n)
	}
	for i := range 8 { // more than a window
		record(1, 0, int32(i*2), 2)
	}
	record(2, 3, 0, 1)
	record(2, 4, 0, 1) // epoch bump starts over
	record(3, 0, math.MaxInt32-1, 3)
	q := newProducers(p.snapshot())
	if !reflect.DeepEqual(q.snapshot(), p.snapshot()) {
		t.Fatal("snapshot of the rebuilt table differs")
	}
	probes := [][]byte{
		mkBatch(t, 1, 0, 14, 2, "w"), // last batch: duplicate
		mkBatch(t, 1, 0, 6, 2, "w"),  // in the window: duplicate
		mkBatch(t, 1, 0, 4, 2, "w"),  // fell out of the window
		mkBatch(t, 1, 0, 16, 1, "w"), // next
		mkBatch(t, 2, 3, 1, 1, "w"),  // fenced epoch
		mkBatch(t, 2, 4, 1, 1, "w"),  // next in the new epoch
		mkBatch(t, 3, 0, 1, 1, "w"),  // after the wrap
		mkBatch(t, 4, 0, 7, 1, "w"),  // unknown producer
	}
	for i, b := range probes {
		h, _ := batch.ParseHeader(b)
		b1, d1, e1 := p.table.Check(h)
		b2, d2, e2 := q.table.Check(h)
		if b1 != b2 || d1 != d2 || !errors.Is(e2, e1) || (e1 == nil) != (e2 == nil) {
			t.Fatalf("probe %d: original (%d %v %v), rebuilt (%d %v %v)", i, b1, d1, e1, b2, d2, e2)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	st := sampleState()
	f.Add(appendState(nil, &st))
	f.Add(appendState(nil, &fsmState{Clock: -1}))
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, errBadState) {
				t.Fatalf("error %v does not wrap errBadState", err)
			}
			return
		}
		if !bytes.Equal(appendState(nil, &st), b) {
			t.Fatal("decoded state does not re-encode to the input")
		}
		newProducers(st.Producers) // must not panic
	})
}

// memSink collects decoded segments.
type memSink struct {
	bases []int64
	data  [][]byte
}

func (m *memSink) begin(base int64) error {
	m.bases = append(m.bases, base)
	m.data = append(m.data, nil)
	return nil
}

func (m *memSink) batch(b []byte) error {
	m.data[len(m.data)-1] = append(m.data[len(m.data)-1], b...)
	return nil
}

// streamOf plans and reads the whole stream of st over the FSM's log.
func streamOf(t testing.TB, f *FSM, st fsmState) []byte {
	t.Helper()
	l := f.Log()
	src, err := planStream(f.dir, st, l.StartOffset(), l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := io.ReadAll(src.reader())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != src.size {
		t.Fatalf("stream of %d bytes, planned %d", len(b), src.size)
	}
	return b
}

// TestStreamRoundTrip streams a partition with several segments, cut at
// a log end inside the active segment, and decodes it: the segments come
// back byte for byte up to that offset.
func TestStreamRoundTrip(t *testing.T) {
	f := openFSM(t, t.TempDir())
	defer f.Close()
	logs := entries(t)
	for i := range 40 {
		logs = append(logs, batchLog(uint64(len(logs)+1), mkBatch(t, -1, -1, -1, 3, "s"+string(rune('a'+i%26)))))
	}
	var st fsmState
	for i, l := range logs {
		apply(f, l)
		if i == len(logs)-5 {
			f.mu.Lock()
			st = f.state()
			f.mu.Unlock()
		}
	}
	b := streamOf(t, f, st)
	r := bytes.NewReader(b)
	got, hasData, err := readStreamHead(r)
	if err != nil || !hasData || got.LogEnd != st.LogEnd {
		t.Fatalf("head: %+v %v %v", got, hasData, err)
	}
	var m memSink
	next, err := readSegments(r, &got, &m)
	if err != nil || next != st.LogEnd {
		t.Fatalf("segments: next %d, %v", next, err)
	}
	segs := segmentBytes(t, f.dir)
	if len(m.bases) < 3 {
		t.Fatalf("only %d segments streamed", len(m.bases))
	}
	for i, base := range m.bases {
		disk := segs[segmentFileName(base)]
		if i < len(m.bases)-1 && !bytes.Equal(m.data[i], disk) {
			t.Fatalf("segment %d differs", base)
		}
		if !bytes.HasPrefix(disk, m.data[i]) {
			t.Fatalf("segment %d is not a prefix of the file", base)
		}
	}
	// A replica whose log does not reach the log end sends the head only.
	empty := openFSM(t, filepath.Join(t.TempDir(), "e"))
	defer empty.Close()
	if _, hasData, err := readStreamHead(bytes.NewReader(streamOf(t, empty, st))); err != nil || hasData {
		t.Fatalf("behind replica: data %v, %v", hasData, err)
	}
}

// batchLog is a committed raft entry carrying b.
func batchLog(index uint64, b []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 2, Type: raft.LogCommand, Data: EncodeBatch(b)}
}

func FuzzReadStream(f *testing.F) {
	fsm := openFSM(f, f.TempDir())
	for _, l := range entries(f) {
		apply(fsm, l)
	}
	fsm.mu.Lock()
	st := fsm.state()
	fsm.mu.Unlock()
	f.Add(streamOf(f, fsm, st))
	f.Add(appendStreamHead(nil, &st, false))
	fsm.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		st, hasData, err := readStreamHead(r)
		if err != nil {
			if !errors.Is(err, errBadStream) && !errors.Is(err, errBadState) {
				t.Fatalf("head error %v wraps neither errBadStream nor errBadState", err)
			}
			return
		}
		if !hasData {
			return
		}
		var m memSink
		next, err := readSegments(r, &st, &m)
		if err != nil {
			if !errors.Is(err, errBadStream) {
				t.Fatalf("error %v does not wrap errBadStream", err)
			}
			return
		}
		if next > st.LogEnd {
			t.Fatalf("accepted data up to %d beyond the log end %d", next, st.LogEnd)
		}
		for i, d := range m.data {
			bs, err := batch.Split(d)
			if err != nil || len(bs) == 0 {
				t.Fatalf("segment %d: accepted %d batches, %v", m.bases[i], len(bs), err)
			}
		}
	})
}
