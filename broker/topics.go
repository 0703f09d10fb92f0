package broker

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// topic is one topic's metadata and open partitions. Its fields are
// replaced, never mutated in place, under Broker.mu, so a reader holding a
// *topic sees a consistent snapshot.
type topic struct {
	name     string
	id       [16]byte
	internal bool
	configs  map[string]string // explicitly set configs only
	settings topicSettings     // configs resolved against the broker's defaults
	parts    []*partition
}

// maxTopicNameLen is Kafka's limit: 255 minus room for a partition suffix.
const maxTopicNameLen = 249

// validateTopicName applies Kafka's rules for topic names.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is %d characters long, the limit is %d", len(name), maxTopicNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", name, r)
		}
	}
	return nil
}

// topicError pairs a Kafka error with a message for responses that carry
// one.
type topicError struct {
	kerr *kerr.Error
	msg  string
}

func (e *topicError) Error() string { return e.msg }
func (e *topicError) Unwrap() error { return e.kerr }

func errorf(ke *kerr.Error, format string, args ...any) error {
	return &topicError{ke, fmt.Sprintf(format, args...)}
}

// errMessage is the message of err for responses' ErrorMessage fields.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.cfg.DataDir, topic+"-"+strconv.Itoa(int(p)))
}

// lookupTopic returns the topic named name, or nil.
func (b *Broker) lookupTopic(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}

// knownTopic is lookupTopic for requests that name topics a client may
// just have created through another broker: a topic not found here is
// looked up again once this broker has caught up with the active
// controller (catchUp).
func (b *Broker) knownTopic(name string) *topic {
	t := b.lookupTopic(name)
	if t == nil && b.meta.catchUp() {
		t = b.lookupTopic(name)
	}
	return t
}

// knownTopicID is knownTopic by topic id.
func (b *Broker) knownTopicID(id [16]byte) *topic {
	t := b.lookupTopicID(id)
	if t == nil && b.meta.catchUp() {
		t = b.lookupTopicID(id)
	}
	return t
}

func (b *Broker) lookupTopicID(id [16]byte) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, t := range b.topics {
		if t.id == id {
			return t
		}
	}
	return nil
}

// lookupPartition returns the partition or nil.
func (b *Broker) lookupPartition(name string, p int32) *partition {
	t := b.lookupTopic(name)
	if t == nil || p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

func (b *Broker) checkPartitionCount(n int32) error {
	if n < 1 {
		return errorf(kerr.InvalidPartitions, "partition count %d must be at least 1", n)
	}
	if n > b.cfg.MaxPartitionsPerTopic {
		return errorf(kerr.InvalidPartitions, "partition count %d exceeds this broker's limit of %d per topic", n, b.cfg.MaxPartitionsPerTopic)
	}
	return nil
}

func (t *topic) closeParts() error {
	var errs []error
	for _, p := range t.parts {
		if p != nil {
			errs = append(errs, p.close())
		}
	}
	return errors.Join(errs...)
}

// deletedSuffix marks a partition directory of a deleted topic that a
// single node moved aside before the controller quorum kept its metadata;
// startup removes any a crash left behind.
const deletedSuffix = "-delete"

func looksLikePartitionDir(name string) bool {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return false
	}
	_, err := strconv.ParseUint(name[i+1:], 10, 31)
	return err == nil && validateTopicName(name[:i]) == nil
}
