package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// The sparse indexes use Kafka's file formats: big-endian fixed-size
// entries, offsets relative to the segment's base offset.
const (
	indexEntrySize     = 8  // relative offset int32, file position int32
	timeIndexEntrySize = 12 // timestamp int64, relative offset int32
)

// indexEntry maps the last offset of a batch to the file position where
// that batch starts, as in Kafka's OffsetIndex.
type indexEntry struct {
	rel int32
	pos int32
}

// timeEntry says that every batch up to and including the one holding
// offset base+rel has a max timestamp <= ts (Kafka's TimeIndex).
type timeEntry struct {
	ts  int64
	rel int32
}

var errBadIndex = errors.New("partlog: invalid index file")

// lookupPos returns the file position to start scanning from for
// relative offset rel: the position of the last indexed batch whose last
// offset is <= rel, or 0.
func lookupPos(idx []indexEntry, rel int64) int64 {
	i := sort.Search(len(idx), func(i int) bool { return int64(idx[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupTime returns the relative offset to start scanning from for
// timestamp ts: the offset of the last entry with a timestamp < ts, whose
// batch and all before it cannot contain ts; -1 when no entry qualifies.
func lookupTime(tidx []timeEntry, ts int64) int64 {
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts >= ts })
	if i == 0 {
		return -1
	}
	return int64(tidx[i-1].rel)
}

func encodeIndex(idx []indexEntry) []byte {
	b := make([]byte, 0, len(idx)*indexEntrySize)
	for _, e := range idx {
		b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
		b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
	}
	return b
}

func encodeTimeIndex(tidx []timeEntry) []byte {
	b := make([]byte, 0, len(tidx)*timeIndexEntrySize)
	for _, e := range tidx {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
	}
	return b
}

// decodeIndex parses an offset index for a segment of logSize bytes and
// rejects anything a correct writer could not have produced, so that a torn
// or stale file leads to a rebuild rather than wrong reads.
func decodeIndex(b []byte, logSize int64) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("%w: size %d", errBadIndex, len(b))
	}
	idx := make([]indexEntry, len(b)/indexEntrySize)
	for i := range idx {
		e := indexEntry{
			rel: int32(binary.BigEndian.Uint32(b[i*indexEntrySize:])),
			pos: int32(binary.BigEndian.Uint32(b[i*indexEntrySize+4:])),
		}
		if e.rel < 0 || e.pos <= 0 || int64(e.pos) >= logSize {
			return nil, fmt.Errorf("%w: entry %d (%d, %d) out of range", errBadIndex, i, e.rel, e.pos)
		}
		if i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos) {
			return nil, fmt.Errorf("%w: entry %d not increasing", errBadIndex, i)
		}
		idx[i] = e
	}
	return idx, nil
}

// decodeTimeIndex parses a time index; timestamps and offsets must not
// decrease.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeIndexEntrySize != 0 {
		return nil, fmt.Errorf("%w: size %d", errBadIndex, len(b))
	}
	tidx := make([]timeEntry, len(b)/timeIndexEntrySize)
	for i := range tidx {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeIndexEntrySize:])),
			rel: int32(binary.BigEndian.Uint32(b[i*timeIndexEntrySize+8:])),
		}
		if e.rel < 0 || (i > 0 && (e.ts <= tidx[i-1].ts || e.rel < tidx[i-1].rel)) {
			return nil, fmt.Errorf("%w: time entry %d invalid", errBadIndex, i)
		}
		tidx[i] = e
	}
	return tidx, nil
}

// writeFileSync writes a small file crash-safely: temp file, fsync, rename.
// The caller fsyncs the directory when the rename must be durable.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
