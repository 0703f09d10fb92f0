package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EntryType is the first byte of every command entry this package puts in a
// partition's Raft log. New kinds of entries (DeleteRecords moving the log
// start, transaction markers) get new tags; a replica that meets a tag it
// does not know refuses the entry deterministically rather than guessing.
type EntryType uint8

const (
	// EntryBatch carries one produced RecordBatch v2, validated by the
	// leader before proposing (batch.Validate and CheckProduce), with any
	// broker-side rewrite (LogAppendTime) already applied: replicas append
	// the bytes as they are, stamping only the base offset and the leader
	// epoch, which the CRC does not cover.
	EntryBatch EntryType = 1
	// EntryDeleteRecords carries Kafka's DeleteRecords for the partition:
	// an 8-byte big-endian offset below which records are deleted, or -1
	// for the high watermark at the entry (everything committed before
	// it). Every replica raises its log start the same way.
	EntryDeleteRecords EntryType = 2
)

func (t EntryType) String() string {
	switch t {
	case EntryBatch:
		return "batch"
	case EntryDeleteRecords:
		return "delete-records"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// ErrBadEntry reports a Raft command that is not a well-formed entry.
var ErrBadEntry = errors.New("replica: malformed raft entry")

// Entry is a decoded command entry.
type Entry struct {
	Type EntryType
	// Batch is the record batch of an EntryBatch. It aliases the encoded
	// entry; copy before modifying.
	Batch []byte
	// Offset is the DeleteRecords offset of an EntryDeleteRecords: >= 0,
	// or -1 for the high watermark.
	Offset int64
}

// EncodeBatch returns the Raft command for one produced batch: the tag
// byte followed by the batch bytes.
func EncodeBatch(b []byte) []byte {
	out := make([]byte, 1+len(b))
	out[0] = byte(EntryBatch)
	copy(out[1:], b)
	return out
}

// EncodeDeleteRecords returns the Raft command that deletes the records
// below before (-1: below the high watermark at the entry).
func EncodeDeleteRecords(before int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{byte(EntryDeleteRecords)}, uint64(before))
}

// DecodeEntry parses a Raft command. It never panics; every error wraps
// ErrBadEntry. The batch itself is not checked here (see FSM.Apply).
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) == 0 {
		return Entry{}, fmt.Errorf("%w: empty", ErrBadEntry)
	}
	switch t := EntryType(b[0]); t {
	case EntryBatch:
		if len(b) == 1 {
			return Entry{}, fmt.Errorf("%w: batch entry without a batch", ErrBadEntry)
		}
		return Entry{Type: t, Batch: b[1:len(b):len(b)]}, nil
	case EntryDeleteRecords:
		if len(b) != 9 {
			return Entry{}, fmt.Errorf("%w: delete-records entry of %d bytes", ErrBadEntry, len(b))
		}
		off := int64(binary.BigEndian.Uint64(b[1:]))
		if off < -1 {
			return Entry{}, fmt.Errorf("%w: delete-records offset %d", ErrBadEntry, off)
		}
		return Entry{Type: t, Offset: off}, nil
	default:
		return Entry{}, fmt.Errorf("%w: unknown type %d", ErrBadEntry, uint8(t))
	}
}
