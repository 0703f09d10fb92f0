package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Checkpoint maps a changelog topic-partition, named as CheckpointKey names
// it, to the offset its store's restoration resumes from: the offset after the
// last changelog record the store on disk is known to contain.
type Checkpoint map[string]int64

// CheckpointKey names a changelog partition in a Checkpoint the way Kafka
// prints a TopicPartition: "topic-partition", as in "app-counts-changelog-3".
func CheckpointKey(topic string, partition int32) string {
	return topic + "-" + strconv.FormatInt(int64(partition), 10)
}

// splitCheckpointKey undoes CheckpointKey. Kafka topic names may contain '-'
// but the partition after the last one is always a number.
func splitCheckpointKey(key string) (topic string, partition int32, ok bool) {
	i := strings.LastIndexByte(key, '-')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(key[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != key[i+1:] || !validTopic(key[:i]) {
		return "", 0, false
	}
	return key[:i], int32(p), true
}

// validTopic accepts what can be written on a checkpoint line: a non-empty
// name without spaces or control characters. (Kafka itself allows only
// letters, digits, '.', '_' and '-'.)
func validTopic(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] == 0x7f {
			return false
		}
	}
	return true
}

// checkpointVersion is the only format version, the one Kafka Streams writes
// in its .checkpoint files.
const checkpointVersion = 0

// ReadCheckpoint reads the checkpoint file at path. A missing file is an empty
// checkpoint: the task restores its stores from the start of their changelogs.
// A file that does not parse gives an error wrapping ErrCorruptCheckpoint;
// the safe reaction is the same as to a missing one, after deleting the
// stores it described, since their state is no longer known.
//
// The format is Kafka's offset checkpoint: a version line (0), a line with the
// number of entries, then one "topic partition offset" line per entry.
func ReadCheckpoint(path string) (Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read checkpoint: %w", err)
	}
	cp, err := parseCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("state: checkpoint %s: %w", path, err)
	}
	return cp, nil
}

// parseCheckpoint decodes a checkpoint file's contents. Errors wrap
// ErrCorruptCheckpoint.
func parseCheckpoint(b []byte) (Checkpoint, error) {
	corrupt := func(line int, format string, args ...any) error {
		return fmt.Errorf("line %d: %s: %w", line, fmt.Sprintf(format, args...), ErrCorruptCheckpoint)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}

	text, ok := next()
	if !ok {
		return nil, corrupt(1, "empty file")
	}
	if v, err := strconv.Atoi(text); err != nil || v != checkpointVersion {
		return nil, corrupt(line, "unsupported version %q", text)
	}
	text, ok = next()
	n, err := strconv.Atoi(text)
	if !ok || err != nil || n < 0 {
		return nil, corrupt(line, "bad entry count %q", text)
	}

	cp := make(Checkpoint, min(n, 1024)) // n is not trusted for allocation
	for range n {
		text, ok = next()
		if !ok {
			return nil, corrupt(line+1, "%d entries declared, %d found", n, len(cp))
		}
		f := strings.Split(text, " ")
		if len(f) != 3 {
			return nil, corrupt(line, "want \"topic partition offset\", got %q", text)
		}
		p, perr := strconv.ParseInt(f[1], 10, 32)
		off, oerr := strconv.ParseInt(f[2], 10, 64)
		if !validTopic(f[0]) || perr != nil || p < 0 || oerr != nil || off < 0 {
			return nil, corrupt(line, "bad entry %q", text)
		}
		key := CheckpointKey(f[0], int32(p))
		if _, dup := cp[key]; dup {
			return nil, corrupt(line, "duplicate entry for %s", key)
		}
		cp[key] = off
	}
	for {
		text, ok = next()
		if !ok {
			break
		}
		if strings.TrimSpace(text) != "" {
			return nil, corrupt(line, "unexpected line %q after %d entries", text, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, corrupt(line, "%v", err)
	}
	return cp, nil
}

// encode renders cp in the file format, entries sorted so that equal
// checkpoints are equal files.
func (cp Checkpoint) encode() ([]byte, error) {
	keys := make([]string, 0, len(cp))
	for k := range cp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", checkpointVersion, len(cp))
	for _, k := range keys {
		topic, p, ok := splitCheckpointKey(k)
		if !ok {
			return nil, fmt.Errorf("state: checkpoint key %q is not \"topic-partition\" (see CheckpointKey)", k)
		}
		if cp[k] < 0 {
			return nil, fmt.Errorf("state: checkpoint offset %d for %s is negative", cp[k], k)
		}
		fmt.Fprintf(&b, "%s %d %d\n", topic, p, cp[k])
	}
	return b.Bytes(), nil
}

// WriteCheckpoint replaces the checkpoint file at path with cp, atomically: it
// writes a temporary file in the same directory, syncs it, renames it over
// path and syncs the directory, so that after a crash path holds either the
// old checkpoint or the new one, never a torn mix.
func WriteCheckpoint(path string, cp Checkpoint) error {
	b, err := cp.encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, "write checkpoint")
}
