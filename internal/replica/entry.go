package replica

import (
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
)

func (t EntryType) String() string {
	switch t {
	case EntryBatch:
		return "batch"
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
}

// EncodeBatch returns the Raft command for one produced batch: the tag
// byte followed by the batch bytes.
func EncodeBatch(b []byte) []byte {
	out := make([]byte, 1+len(b))
	out[0] = byte(EntryBatch)
	copy(out[1:], b)
	return out
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
	default:
		return Entry{}, fmt.Errorf("%w: unknown type %d", ErrBadEntry, uint8(t))
	}
}
