package replica

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/producer"
)

// fsmState is everything the state machine is besides the segment files:
// the Raft position, the offsets, the record clock that drives producer
// expiry, and the idempotent producers' windows. It is the content of the
// checkpoint file and of every snapshot (the head of the snapshot stream).
//
// Producer state is persisted rather than rebuilt from batch headers
// because the log can lose batches independently of the entries that
// produced them (DeleteRecords, local retention and compaction): a replica
// that rebuilt its table from what its log still holds would accept a
// retry that the others answer as a duplicate, and the logs would fork.
type fsmState struct {
	Index    uint64 // last Raft index applied
	LogStart int64  // log start offset at Index (informational; see streamPlan)
	LogEnd   int64  // log end offset after Index: the high watermark
	// Clock is the largest batch max timestamp applied (Unix ms), the
	// replicated notion of "now" for producer expiry; -1 before any.
	Clock     int64
	Producers []producerWindow // ascending ID
}

// producerWindow is one idempotent producer's persisted state: the last
// batches recorded in its current epoch, oldest first, as producer.Table
// keeps them. Replaying them through Table.Record rebuilds the same state.
type producerWindow struct {
	ID     int64
	Epoch  int16
	LastTS int64 // max timestamp over the epoch's batches, as Table keeps it
	Recent []seqRange
}

type seqRange struct {
	First, Last int32
	Base        int64
}

// producerWindowSize matches producer's window (Kafka's
// NUM_BATCHES_TO_RETAIN): how many recent batches a producer is known by.
const producerWindowSize = 5

const (
	stateMagic   = "WRST"
	stateVersion = 1
	// stateFixed is magic, version, index, start, end, clock and the
	// producer count; stateTrailer the CRC-32C after everything.
	stateFixed   = 4 + 1 + 8 + 8 + 8 + 8 + 4
	stateTrailer = 4
	// producerFixed is id, epoch, last timestamp and the range count;
	// rangeSize one seqRange.
	producerFixed = 8 + 2 + 8 + 1
	rangeSize     = 4 + 4 + 8
	// maxStateBytes bounds what a decoder accepts: about 60k producers
	// per partition at a full window, far beyond what a partition sees
	// within the expiry time.
	maxStateBytes = 8 << 20
)

// errBadState reports an undecodable checkpoint or snapshot state.
var errBadState = errors.New("replica: malformed state")

// appendState encodes s: all integers big-endian, CRC-32C (Castagnoli) of
// everything before it at the end.
func appendState(b []byte, s *fsmState) []byte {
	start := len(b)
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	b = binary.BigEndian.AppendUint64(b, s.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(s.LogStart))
	b = binary.BigEndian.AppendUint64(b, uint64(s.LogEnd))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Clock))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Producers)))
	for _, p := range s.Producers {
		b = binary.BigEndian.AppendUint64(b, uint64(p.ID))
		b = binary.BigEndian.AppendUint16(b, uint16(p.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.LastTS))
		b = append(b, byte(len(p.Recent)))
		for _, r := range p.Recent {
			b = binary.BigEndian.AppendUint32(b, uint32(r.First))
			b = binary.BigEndian.AppendUint32(b, uint32(r.Last))
			b = binary.BigEndian.AppendUint64(b, uint64(r.Base))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// decodeState parses an encoded state, which must fill b exactly. It
// never panics and checks every invariant appendState's input has, so a
// damaged or hostile state cannot reach the FSM.
func decodeState(b []byte) (fsmState, error) {
	var s fsmState
	if len(b) < stateFixed+stateTrailer || len(b) > maxStateBytes {
		return s, fmt.Errorf("%w: %d bytes", errBadState, len(b))
	}
	body := b[:len(b)-stateTrailer]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return s, fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	if string(body[:4]) != stateMagic || body[4] != stateVersion {
		return s, fmt.Errorf("%w: unknown magic or version", errBadState)
	}
	r := reader{b: body[5:]}
	s.Index = r.u64()
	s.LogStart, s.LogEnd, s.Clock = int64(r.u64()), int64(r.u64()), int64(r.u64())
	n := r.u32()
	if s.LogStart < 0 || s.LogEnd < s.LogStart || s.Clock < -1 || uint64(n)*producerFixed > uint64(len(r.b)) {
		return s, fmt.Errorf("%w: implausible header", errBadState)
	}
	s.Producers = make([]producerWindow, 0, n)
	for range n {
		p, err := decodeProducer(&r, s.LogEnd)
		if err != nil {
			return s, err
		}
		if k := len(s.Producers); k > 0 && s.Producers[k-1].ID >= p.ID {
			return s, fmt.Errorf("%w: producers out of order", errBadState)
		}
		s.Producers = append(s.Producers, p)
	}
	if r.short || len(r.b) != 0 {
		return s, fmt.Errorf("%w: length does not match content", errBadState)
	}
	return s, nil
}

func decodeProducer(r *reader, logEnd int64) (producerWindow, error) {
	p := producerWindow{ID: int64(r.u64()), Epoch: int16(r.u16()), LastTS: int64(r.u64())}
	n := int(r.u8())
	// n == 0 is a producer whose epoch a transaction marker bumped.
	if r.short || p.ID < 0 || p.Epoch < 0 || p.LastTS < 0 || n > producerWindowSize {
		return p, fmt.Errorf("%w: bad producer", errBadState)
	}
	p.Recent = make([]seqRange, n)
	for i := range p.Recent {
		sr := seqRange{First: int32(r.u32()), Last: int32(r.u32()), Base: int64(r.u64())}
		if r.short || sr.First < 0 || sr.Last < 0 || sr.Base < 0 || sr.Base >= logEnd {
			return p, fmt.Errorf("%w: bad producer batch", errBadState)
		}
		p.Recent[i] = sr
	}
	return p, nil
}

// reader consumes big-endian integers; reading past the end sets short
// and yields zeros, so decoders check once at the end of a record.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) take(n int) []byte {
	if len(r.b) < n {
		r.short = true
		r.b = nil
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8   { return r.take(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }

// producers is the FSM's producer state: producer.Table makes the
// decisions, and windows mirrors what the table remembers so that it can
// be persisted (Table has no encoding of its own).
type producers struct {
	table   *producer.Table
	windows map[int64]*producerWindow
}

func newProducers(ws []producerWindow) *producers {
	p := &producers{table: producer.NewTable(), windows: make(map[int64]*producerWindow, len(ws))}
	for _, w := range ws {
		if len(w.Recent) == 0 { // only an epoch, set by a marker
			p.table.Record(batch.Header{ProducerID: w.ID, ProducerEpoch: w.Epoch, Attributes: batch.AttrControl, MaxTimestamp: w.LastTS}, 0)
		}
		for _, r := range w.Recent {
			p.table.Record(w.header(r), r.Base)
		}
		p.windows[w.ID] = &producerWindow{ID: w.ID, Epoch: w.Epoch, LastTS: w.LastTS, Recent: slices.Clone(w.Recent)}
	}
	return p
}

// header is a batch header that Table.Record remembers as r: only the
// producer fields, the sequence range and the timestamp matter to it.
func (w *producerWindow) header(r seqRange) batch.Header {
	delta := int64(r.Last) - int64(r.First)
	if delta < 0 { // the sequence wrapped past MaxInt32
		delta += math.MaxInt32 + 1
	}
	return batch.Header{
		ProducerID: w.ID, ProducerEpoch: w.Epoch, BaseSequence: r.First,
		LastOffsetDelta: int32(delta), MaxTimestamp: w.LastTS,
	}
}

// record remembers a batch appended at base, in the table and the mirror
// (Table.Record's rules: a new or bumped epoch starts over).
func (p *producers) record(h batch.Header, base int64) {
	p.table.Record(h, base)
	w := p.windows[h.ProducerID]
	if w == nil || h.ProducerEpoch > w.Epoch {
		w = &producerWindow{ID: h.ProducerID, Epoch: h.ProducerEpoch}
		p.windows[h.ProducerID] = w
	}
	w.LastTS = max(w.LastTS, h.MaxTimestamp)
	if producer.EpochOnly(h) {
		return // it moves the epoch (above) but records no sequences
	}
	last := int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
	w.Recent = append(w.Recent, seqRange{First: h.BaseSequence, Last: last, Base: base})
	if len(w.Recent) > producerWindowSize {
		w.Recent = slices.Delete(w.Recent, 0, 1)
	}
}

// expire forgets producers whose last batch is older than cutoff (Unix
// ms), in the table and the mirror alike.
func (p *producers) expire(cutoff int64) {
	p.table.Expire(cutoff)
	for id, w := range p.windows {
		if w.LastTS < cutoff {
			delete(p.windows, id)
		}
	}
}

// snapshot returns the persisted form, sorted by producer id so that
// equal states encode to equal bytes.
func (p *producers) snapshot() []producerWindow {
	out := make([]producerWindow, 0, len(p.windows))
	for _, w := range p.windows {
		out = append(out, producerWindow{ID: w.ID, Epoch: w.Epoch, LastTS: w.LastTS, Recent: slices.Clone(w.Recent)})
	}
	slices.SortFunc(out, func(a, b producerWindow) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
