package batch

import (
	"encoding/binary"
	"fmt"
)

// Control record types (the int16 after the version in a control record's
// key), as Kafka's ControlRecordType numbers them.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// controlKeySize is a control record key: version int16, type int16.
// controlValueSize is an end-transaction marker value: version int16,
// coordinator epoch int32.
const (
	controlKeySize   = 4
	controlValueSize = 6
)

// Marker describes an end-transaction control batch: the COMMIT or ABORT
// that a transaction coordinator writes on every partition of a
// transaction.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Timestamp        int64 // Unix ms
}

// BuildMarker encodes m as a control batch of one record, as Kafka's
// EndTransactionMarker does: transactional and control attributes set, the
// producer's id and epoch, no sequence.
func BuildMarker(m Marker) ([]byte, error) {
	typ := ControlAbort
	if m.Commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(make([]byte, 0, controlKeySize), 0)
	key = binary.BigEndian.AppendUint16(key, uint16(typ))
	value := binary.BigEndian.AppendUint16(make([]byte, 0, controlValueSize), 0)
	value = binary.BigEndian.AppendUint32(value, uint32(m.CoordinatorEpoch))
	o := BuildOptions{
		Attributes:    AttrTransactional | AttrControl,
		BaseTimestamp: m.Timestamp,
		MaxTimestamp:  m.Timestamp,
		ProducerID:    m.ProducerID,
		ProducerEpoch: m.ProducerEpoch,
		BaseSequence:  -1,
	}
	return Build(o, []Record{{Key: key, Value: value}})
}

// ControlType returns the type (ControlAbort, ControlCommit, or another
// value Kafka may define) of the control batch b, read from its first
// record's key. It never panics on malformed input.
func ControlType(b []byte) (int16, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return 0, err
	}
	if !h.Control() {
		return 0, fmt.Errorf("%w: not a control batch", ErrCorrupt)
	}
	var typ int16 = -1
	err = Each(b, func(r *Record) error {
		if typ >= 0 {
			return nil
		}
		if len(r.Key) < controlKeySize {
			return fmt.Errorf("%w: control record key of %d bytes", ErrCorrupt, len(r.Key))
		}
		typ = int16(binary.BigEndian.Uint16(r.Key[2:]))
		return nil
	})
	if err != nil {
		return 0, err
	}
	if typ < 0 {
		return 0, fmt.Errorf("%w: control batch without records", ErrCorrupt)
	}
	return typ, nil
}
