package runtime

import "github.com/twmb/franz-go/pkg/kgo"

// partitioner places records the way Kafka's Java producer does, so every
// Kafka client agrees on where a key lives: a record whose Partition is set
// (>= 0) goes to that partition (changelog records belong to their task's
// partition); a record with Partition -1 is placed by key with murmur2, as
// Kafka's default partitioner does (kgo's StickyKeyPartitioner with a nil
// hasher is exactly that: murmur2, the sign bit masked, modulo the partition
// count), and a record without a key sticks to one partition per batch.
//
// Records carry the choice in their own Partition field, which kgo leaves
// untouched until it asks the partitioner, so no side table or context value
// is needed.
type partitioner struct {
	byKey kgo.Partitioner
}

func newPartitioner() kgo.Partitioner {
	return &partitioner{byKey: kgo.StickyKeyPartitioner(nil)}
}

func (p *partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{byKey: p.byKey.ForTopic(topic)}
}

type topicPartitioner struct {
	byKey kgo.TopicPartitioner
}

// RequiresConsistency is true for explicit partitions and keyed records:
// both must wait for their partition rather than move to another one.
func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || p.byKey.RequiresConsistency(r)
}

// Partition returns the explicit partition (kgo fails the record if it is
// out of range) or delegates to the key partitioner.
func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	return p.byKey.Partition(r, n)
}

// OnNewBatch lets the sticky part pick a new partition for keyless records.
func (p *topicPartitioner) OnNewBatch() {
	if nb, ok := p.byKey.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

// partitionForKey is Kafka's default partition of a key among n partitions,
// for routing store queries to the task that owns a key.
func partitionForKey(key []byte, n int32) int32 {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("")
	return int32(tp.Partition(&kgo.Record{Key: key}, int(n)))
}
