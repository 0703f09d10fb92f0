package broker

import (
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeLogDirs describes this broker's one log directory, the
// data directory, and the partition replicas it holds there
// (kafka-log-dirs.sh, kadm.DescribeAllLogDirs, the partition sizes UIs
// show). Each broker answers for itself, as in Kafka.
func handleDescribeLogDirs(c *conn, req *kmsg.DescribeLogDirsRequest) response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = c.b.cfg.DataDir
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = diskSpace(dir.Dir)
	wanted := func(topic string, p int32) bool {
		return req.Topics == nil || slices.ContainsFunc(req.Topics, func(rt kmsg.DescribeLogDirsRequestTopic) bool {
			return rt.Topic == topic && slices.Contains(rt.Partitions, p)
		})
	}
	for _, t := range c.b.allTopics() {
		st := kmsg.NewDescribeLogDirsResponseDirTopic()
		st.Topic = t.name
		for _, p := range t.parts {
			if p == nil || p.deleted.Load() || !wanted(t.name, p.index) {
				continue
			}
			l := p.plog()
			sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			sp.Partition, sp.Size = p.index, l.Size()
			// Kafka's lag of a current replica: how far its log end
			// is behind its own high watermark.
			sp.OffsetLag = max(0, p.highWatermark()-l.EndOffset())
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			dir.Topics = append(dir.Topics, st)
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return ready{resp}
}
