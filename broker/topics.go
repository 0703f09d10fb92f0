package broker

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-io/weir/internal/partlog"
)

// offsetsTopic is Kafka's internal topic for group commits.
const offsetsTopic = "__consumer_offsets"

// topic is one topic's metadata and open partitions. Its fields are
// replaced, never mutated in place, under Broker.mu, so a reader holding a
// *topic sees a consistent snapshot.
type topic struct {
	name     string
	id       [16]byte
	internal bool
	configs  map[string]string // explicitly set configs only
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

// knownTopic is lookupTopic for admin requests, which name topics a
// client may just have created through another broker: in a cluster, a
// topic not found here is looked up again once this broker has caught up
// with the active controller (catchUp).
func (b *Broker) knownTopic(name string) *topic {
	t := b.lookupTopic(name)
	if t == nil && b.cluster != nil && b.cluster.catchUp() {
		t = b.lookupTopic(name)
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

// topicForWrite returns the named topic, creating it when auto-creation
// is on and allowed for this request.
func (b *Broker) topicForWrite(name string, allowAuto bool) (*topic, error) {
	if t := b.lookupTopic(name); t != nil {
		return t, nil
	}
	if !allowAuto || !b.cfg.AutoCreateTopics {
		return nil, kerr.UnknownTopicOrPartition
	}
	t, err := b.createTopic(name, b.cfg.DefaultPartitions, nil)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return b.lookupTopic(name), nil
	}
	return t, err
}

// createTopic validates and creates a topic, opening its partition logs and
// persisting the metadata before returning.
func (b *Broker) createTopic(name string, partitions int32, configs map[string]string) (*topic, error) {
	if err := validateTopicName(name); err != nil {
		return nil, errorf(kerr.InvalidTopicException, "%v", err)
	}
	if err := b.checkPartitionCount(partitions); err != nil {
		return nil, err
	}
	if err := validateConfigs(configs); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[name]; ok {
		return nil, errorf(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	t := &topic{name: name, id: newUUID(), internal: name == offsetsTopic, configs: maps.Clone(configs)}
	if err := b.openPartitions(t, partitions); err != nil {
		return nil, err
	}
	b.topics[name] = t
	if err := b.saveMetaLocked(); err != nil {
		delete(b.topics, name)
		t.closeParts()
		return nil, errorf(kerr.KafkaStorageError, "%v", err)
	}
	b.log.Info("created topic", "topic", name, "partitions", partitions)
	return t, nil
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

// openPartitions opens (creating or recovering) logs up to n partitions.
func (b *Broker) openPartitions(t *topic, n int32) error {
	lc := logConfig(b.cfg, t.configs)
	for p := int32(len(t.parts)); p < n; p++ {
		l, err := partlog.Open(b.partitionDir(t.name, p), lc)
		if err != nil {
			return errorf(kerr.KafkaStorageError, "open %s-%d: %v", t.name, p, err)
		}
		part := newPartition(t.name, p, l, b.log)
		if err := part.loadProducers(); err != nil {
			l.Close()
			return errorf(kerr.KafkaStorageError, "recover producer state of %s-%d: %v", t.name, p, err)
		}
		t.parts = append(t.parts, part)
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

func (b *Broker) deleteTopic(name string) error {
	if b.cluster != nil {
		return b.cluster.deleteTopic(name)
	}
	b.mu.Lock()
	t, ok := b.topics[name]
	if !ok {
		b.mu.Unlock()
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	if t.internal {
		b.mu.Unlock()
		return errorf(kerr.InvalidRequest, "topic %q is internal and cannot be deleted", name)
	}
	delete(b.topics, name)
	if err := b.saveMetaLocked(); err != nil {
		b.topics[name] = t
		b.mu.Unlock()
		return errorf(kerr.KafkaStorageError, "%v", err)
	}
	// Still under b.mu, so a topic recreated under the same name cannot
	// open these directories: close the logs and move them aside (as
	// Kafka's "-delete" suffix does); remove them after unlocking.
	var trash []string
	for _, p := range t.parts {
		p.plog().Close()
		p.deleted.Store(true)
		p.wake() // long polls on the topic return now
		dir := b.partitionDir(name, p.index)
		aside := fmt.Sprintf("%s.%x%s", dir, t.id[:8], deletedSuffix)
		if err := os.Rename(dir, aside); err != nil {
			b.log.Warn("moving deleted partition aside", "topic", name, "partition", p.index, "err", err)
			aside = dir
		}
		trash = append(trash, aside)
	}
	b.mu.Unlock()
	for _, dir := range trash {
		if err := os.RemoveAll(dir); err != nil {
			b.log.Warn("removing deleted partition", "dir", dir, "err", err)
		}
	}
	b.log.Info("deleted topic", "topic", name)
	return nil
}

// deletedSuffix marks a partition directory of a deleted topic; startup
// removes any left behind by a crash.
const deletedSuffix = "-delete"

// addPartitions grows a topic to total partitions; in a cluster, assign
// (if not nil) gives the new partitions' replicas.
func (b *Broker) addPartitions(name string, total int32, assign [][]int32) error {
	if b.cluster != nil {
		t := b.lookupTopic(name)
		if t == nil {
			return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		return b.cluster.addPartitions(t, total, assign)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	if total <= int32(len(t.parts)) {
		return errorf(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", name, len(t.parts), total)
	}
	if err := b.checkPartitionCount(total); err != nil {
		return err
	}
	grown := *t
	grown.parts = append([]*partition(nil), t.parts...)
	if err := b.openPartitions(&grown, total); err != nil {
		for _, p := range grown.parts[len(t.parts):] {
			p.plog().Close()
		}
		return err
	}
	b.topics[name] = &grown
	if err := b.saveMetaLocked(); err != nil {
		b.topics[name] = t
		return errorf(kerr.KafkaStorageError, "%v", err)
	}
	return nil
}

// setConfigs replaces a topic's explicit configs and applies them to its
// logs.
func (b *Broker) setConfigs(name string, configs map[string]string, validateOnly bool) error {
	if err := validateConfigs(configs); err != nil {
		return err
	}
	if c := b.cluster; c != nil {
		t := b.knownTopic(name)
		switch {
		case t == nil:
			return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		case validateOnly:
			return nil
		}
		return c.setConfigs(t, configs)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return errorf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	if validateOnly {
		return nil
	}
	changed := *t
	changed.configs = maps.Clone(configs)
	b.topics[name] = &changed
	if err := b.saveMetaLocked(); err != nil {
		b.topics[name] = t
		return errorf(kerr.KafkaStorageError, "%v", err)
	}
	lc := logConfig(b.cfg, changed.configs)
	for _, p := range changed.parts {
		p.plog().SetConfig(lc)
	}
	return nil
}

// saveMetaLocked persists topics and the producer-id limit. b.mu is held.
func (b *Broker) saveMetaLocked() error {
	m := metaFile{Version: 1, ClusterID: b.clusterID, ProducerIDLimit: b.producerIDLimit}
	for _, t := range b.topics {
		m.Topics = append(m.Topics, metaTopic{Name: t.name, ID: t.id, Partitions: int32(len(t.parts)), Configs: t.configs})
	}
	return saveMeta(b.cfg.DataDir, m)
}

// loadTopics opens every topic in the metadata file and removes partition
// directories of topics that were deleted while the broker was down.
func (b *Broker) loadTopics(m metaFile) error {
	known := make(map[string]bool)
	for _, mt := range m.Topics {
		t := &topic{name: mt.Name, id: mt.ID, internal: mt.Name == offsetsTopic, configs: mt.Configs}
		if err := b.openPartitions(t, mt.Partitions); err != nil {
			return err
		}
		b.topics[t.name] = t
		for p := range mt.Partitions {
			known[filepath.Base(b.partitionDir(t.name, p))] = true
		}
	}
	entries, err := os.ReadDir(b.cfg.DataDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && !known[e.Name()] && (looksLikePartitionDir(e.Name()) || strings.HasSuffix(e.Name(), deletedSuffix)) {
			b.log.Info("removing partition directory of a deleted topic", "dir", e.Name())
			os.RemoveAll(filepath.Join(b.cfg.DataDir, e.Name()))
		}
	}
	return nil
}

func looksLikePartitionDir(name string) bool {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return false
	}
	_, err := strconv.ParseUint(name[i+1:], 10, 31)
	return err == nil && validateTopicName(name[:i]) == nil
}
