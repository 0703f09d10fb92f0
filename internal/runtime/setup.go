package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/topology"
)

// windowChangelogExtraRetention is added to a window store's retention for
// its changelog, as Kafka Streams' windowstore.changelog.additional.retention.ms.
const windowChangelogExtraRetention = 24 * time.Hour

// topicSpec is an internal topic the application needs.
type topicSpec struct {
	name       string
	partitions int32
	configs    map[string]*string
}

// setup checks the user topics, resolves the topology's partition counts
// and creates the internal topics that are missing.
func (r *Runtime) setup(ctx context.Context) error {
	sources := r.topo.UserSourceTopics()
	sinks := staticSinks(r.topo)
	var dlq []string
	if r.cfg.BadRecords.Kind == PolicyDeadLetter {
		dlq = []string{r.cfg.BadRecords.Topic}
	}
	details, err := r.describeUserTopics(ctx, slices.Concat(sources, sinks, dlq))
	if err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	counts := make(map[string]int32)
	for _, t := range sources {
		n, err := partitionCount(details, t)
		if err != nil {
			return fmt.Errorf("%w: source topic %q: %w", ErrMissingTopic, t, err)
		}
		counts[t] = n
	}
	for _, t := range sinks {
		if _, err := partitionCount(details, t); err != nil {
			return fmt.Errorf("%w: sink topic %q: %w", ErrMissingTopic, t, err)
		}
	}
	if err := r.topo.Resolve(counts); err != nil {
		return err
	}
	storeParts := make(map[string]int32)
	for _, s := range r.topo.Subtopologies {
		for _, name := range s.Stores {
			storeParts[name] = s.Partitions
		}
	}
	r.storePartitions.Store(&storeParts)

	var want []topicSpec
	repartition := r.topo.InternalTopics(counts)
	for _, name := range sortedKeys(repartition) {
		// Kafka Streams' repartition topic settings: never expire by
		// time; the runtime deletes consumed records instead.
		want = append(want, topicSpec{name: name, partitions: repartition[name], configs: map[string]*string{
			"cleanup.policy": kadm.StringPtr("delete"),
			"retention.ms":   kadm.StringPtr("-1"),
		}})
	}
	for _, s := range r.topo.Subtopologies {
		for _, name := range s.Stores {
			st := r.topo.Stores[name]
			if !st.Changelog {
				continue
			}
			cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
			if st.Kind == topology.StoreWindow {
				cfg["cleanup.policy"] = kadm.StringPtr("compact,delete")
				cfg["retention.ms"] = kadm.StringPtr(strconv.FormatInt((st.Retention + windowChangelogExtraRetention).Milliseconds(), 10))
			}
			want = append(want, topicSpec{name: st.ChangelogTopic(r.cfg.AppID), partitions: s.Partitions, configs: cfg})
		}
	}
	if len(dlq) > 0 {
		if _, err := partitionCount(details, dlq[0]); err != nil {
			// The dead-letter topic is created on demand with broker
			// defaults; an existing one is used as it is.
			want = append(want, topicSpec{name: dlq[0], partitions: -1})
		}
	}
	if err := r.createTopics(ctx, want); err != nil {
		return err
	}
	r.counts = counts
	return nil
}

// createTopics creates the topics that do not exist and checks the
// partition counts of those that do.
func (r *Runtime) createTopics(ctx context.Context, want []topicSpec) (rerr error) {
	if len(want) == 0 {
		return nil
	}
	names := make([]string, len(want))
	for i, s := range want {
		names[i] = s.name
	}
	details, err := r.describe(ctx, names)
	if err != nil {
		return fmt.Errorf("describe internal topics: %w", err)
	}
	var created []string
	defer func() {
		if len(created) > 0 && rerr == nil {
			rerr = r.waitReady(ctx, created)
		}
	}()
	for _, s := range want {
		n, err := partitionCount(details, s.name)
		if err == nil {
			if s.partitions > 0 && n != s.partitions {
				return fmt.Errorf("%w: internal topic %q has %d partitions but the topology needs %d; "+
					"delete it (and reset the application) or keep the source topics' partition counts",
					ErrTopicMismatch, s.name, n, s.partitions)
			}
			continue
		}
		resp, err := r.adm.CreateTopic(ctx, s.partitions, r.cfg.ReplicationFactor, s.configs, s.name)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another instance created it first; check it below.
		case err != nil:
			return fmt.Errorf("create topic %q: %w", s.name, err)
		default:
			r.log.Info("created topic", "topic", s.name, "partitions", resp.NumPartitions)
			created = append(created, s.name)
			continue
		}
		again, err := r.describe(ctx, []string{s.name})
		if err != nil {
			return fmt.Errorf("describe topic %q: %w", s.name, err)
		}
		if n, err := partitionCount(again, s.name); err != nil || s.partitions > 0 && n != s.partitions {
			return fmt.Errorf("%w: internal topic %q was created concurrently with %d partitions, want %d",
				ErrTopicMismatch, s.name, n, s.partitions)
		}
	}
	return nil
}

// topicInfo is what the runtime needs to know of a topic.
type topicInfo struct {
	partitions int32
	err        error // why the topic cannot be used
	ready      bool  // every partition has a leader
}

// describe asks the cluster about topics. It sends its own Metadata
// request rather than kadm's, which answers from the client's cache (up
// to MetadataMinAge old) and so would not see topics just created.
func (r *Runtime) describe(ctx context.Context, topics []string) (map[string]topicInfo, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, r.admin)
	if err != nil {
		return nil, err
	}
	out := make(map[string]topicInfo, len(topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		info := topicInfo{partitions: int32(len(t.Partitions)), err: kerr.ErrorForCode(t.ErrorCode), ready: true}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.Leader < 0 {
				info.ready = false
			}
		}
		out[*t.Topic] = info
	}
	return out, nil
}

// missingTopicGrace is how long setup keeps asking about user topics a
// broker says do not exist. In a cluster, brokers learn of a new topic a
// little after the one that created it answered: a topic created just
// before the application starts can be unknown to the broker it asks.
const missingTopicGrace = 5 * time.Second

// describeUserTopics is describe, asked again while any topic is unknown,
// up to missingTopicGrace.
func (r *Runtime) describeUserTopics(ctx context.Context, topics []string) (map[string]topicInfo, error) {
	deadline := time.Now().Add(missingTopicGrace)
	for {
		details, err := r.describe(ctx, topics)
		if err != nil || time.Now().After(deadline) || !slices.ContainsFunc(topics, func(t string) bool {
			_, err := partitionCount(details, t)
			return err != nil
		}) {
			return details, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// partitionCount is a described topic's partition count, or why it has none.
func partitionCount(details map[string]topicInfo, topic string) (int32, error) {
	d, ok := details[topic]
	switch {
	case !ok:
		return 0, kerr.UnknownTopicOrPartition
	case d.err != nil:
		return 0, d.err
	case d.partitions == 0:
		return 0, kerr.UnknownTopicOrPartition
	}
	return d.partitions, nil
}

// staticSinks lists the user topics written by sinks with a fixed topic.
func staticSinks(t *topology.Topology) []string {
	var out []string
	for _, s := range t.Subtopologies {
		for _, n := range s.Nodes {
			if n.Kind == topology.KindSink && !n.Internal && n.TopicFor == nil && !slices.Contains(out, n.Topic) {
				out = append(out, n.Topic)
			}
		}
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// waitReady waits until newly created topics have a leader for every
// partition, so the first fetches and offset listings find them.
func (r *Runtime) waitReady(ctx context.Context, topics []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		details, err := r.describe(ctx, topics)
		ready := err == nil
		for _, t := range topics {
			if d, ok := details[t]; !ok || d.err != nil || d.partitions == 0 || !d.ready {
				ready = false
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("created topics %v have no leaders after 30s (last error: %v)", topics, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
