package group

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// resolveTopic returns the topic a request names: by name, or by id from
// v10 of OffsetCommit and OffsetFetch.
func (c *Coordinator) resolveTopic(name string, id [16]byte, byID bool) (string, bool) {
	if !byID {
		return name, true
	}
	if ids, ok := c.topics.(TopicIDs); ok {
		return ids.TopicName(id)
	}
	return "", false
}

// partitionCheck resolves a commit's topic (by name, or by id when byID)
// and returns the check of its partitions: the partition to commit, or the
// code that answers it.
func (c *Coordinator) partitionCheck(topic string, id [16]byte, byID bool) func(p int32) (tp, int16) {
	name, known := c.resolveTopic(topic, id, byID)
	var n int32
	if known && c.topics != nil {
		n, known = c.topics.PartitionCount(name)
	}
	return func(p int32) (tp, int16) {
		switch {
		case !known && byID:
			return tp{}, kerr.UnknownTopicID.Code
		case !known || (c.topics != nil && (p < 0 || p >= n)):
			return tp{}, kerr.UnknownTopicOrPartition.Code
		}
		return tp{name, p}, 0
	}
}

// OffsetCommit handles OffsetCommit v0-v10. The commit is durable in
// __consumer_offsets before the response; the in-memory offsets change only
// once it is. A simple commit (generation -1, no member id) is accepted for
// an Empty group (creating the group if need be); a member's commit must
// carry its current generation.
func (c *Coordinator) OffsetCommit(ctx context.Context, r *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = r.Version
	type item struct {
		slot *int16
		tp   tp
		p    *kmsg.OffsetCommitRequestTopicPartition
	}
	var items []item
	byID := r.Version >= 10
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		resp.Topics = append(resp.Topics, rt)
	}
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := &resp.Topics[i]
		check := c.partitionCheck(t.Topic, t.TopicID, byID)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if k, code := check(p.Partition); code != 0 {
				rp.ErrorCode = code
			} else {
				items = append(items, item{slot: &rp.ErrorCode, tp: k, p: p})
			}
		}
	}
	fail := func(code int16) *kmsg.OffsetCommitResponse {
		for _, it := range items {
			*it.slot = code
		}
		return resp
	}
	if c.closed.Load() {
		return fail(kerr.NotCoordinator.Code)
	}
	c.activate()
	if len(items) == 0 {
		return resp
	}

	g := c.lockGroup(r.Group, r.Generation < 0)
	if g == nil {
		switch {
		case c.closed.Load():
			return fail(kerr.NotCoordinator.Code)
		case r.Version >= 9:
			return fail(kerr.GroupIDNotFound.Code)
		default:
			return fail(kerr.IllegalGeneration.Code)
		}
	}
	var instanceID *string
	if r.Version >= 7 {
		instanceID = r.InstanceID
	}
	if code := g.validateCommit(r.MemberID, instanceID, r.Generation, false); code != 0 {
		g.dropIfPristine()
		g.mu.Unlock()
		return fail(code)
	}
	if m := g.members[r.MemberID]; m != nil {
		g.armSession(m)
	}

	now := g.c.now().UnixMilli()
	type commit struct {
		tp tp
		o  offset
	}
	var (
		recs    []Record
		commits []commit
		slots   []*int16
	)
	for _, it := range items {
		md := ""
		if it.p.Metadata != nil {
			md = *it.p.Metadata
		}
		if len(md) > maxMetadataBytes {
			*it.slot = kerr.OffsetMetadataTooLarge.Code
			continue
		}
		o := offset{offset: it.p.Offset, leaderEpoch: -1, metadata: md, commitTs: now, expireTs: -1}
		if r.Version >= 6 {
			o.leaderEpoch = it.p.LeaderEpoch
		}
		if r.Version == 1 && it.p.Timestamp != -1 {
			o.commitTs = it.p.Timestamp
		}
		if r.Version >= 2 && r.Version <= 4 && r.RetentionTimeMillis != -1 {
			o.expireTs = now + r.RetentionTimeMillis
		}
		recs = append(recs, Record{Key: offsetKey(g.name, it.tp.topic, it.tp.partition), Value: offsetValue(o)})
		commits = append(commits, commit{it.tp, o})
		slots = append(slots, it.slot)
		g.inflight[it.tp]++
	}
	if len(recs) == 0 {
		g.dropIfPristine()
		g.mu.Unlock()
		return resp
	}
	seq := c.logSeq.Add(1)
	for i := range commits {
		commits[i].o.seq = seq
	}
	done := make(chan int16, 1)
	g.write(recs, func(err error) {
		for _, cm := range commits {
			if g.inflight[cm.tp]--; g.inflight[cm.tp] <= 0 {
				delete(g.inflight, cm.tp)
			}
			if err == nil && !g.removed {
				g.setOffset(cm.tp, cm.o)
			}
		}
		if err != nil {
			g.dropIfPristine()
		}
		done <- errCode(err)
	})
	g.mu.Unlock()

	var code int16
	select {
	case code = <-done:
	case <-c.done:
		code = kerr.NotCoordinator.Code
	case <-ctx.Done():
		code = kerr.RequestTimedOut.Code
	}
	for _, s := range slots {
		*s = code
	}
	return resp
}

// validateCommit is Kafka's ClassicGroup.validateOffsetCommit, of an
// OffsetCommit or (txn set) a TxnOffsetCommit: a transactional commit
// without member id and generation (v0-v2, or a producer outside the group)
// is accepted whatever the group's members.
func (g *group) validateCommit(memberID string, instanceID *string, generation int32, txn bool) int16 {
	if generation < 0 && g.state == stateEmpty {
		return 0 // a simple (standalone) consumer or the admin client
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if !txn && g.state != stateEmpty {
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// fetchTopic is one topic of an OffsetFetch, version independent.
type fetchTopic struct {
	name  string
	id    [16]byte
	parts []fetchPart
}

type fetchPart struct {
	partition int32
	offset    int64
	epoch     int32
	metadata  string
	code      int16
}

// fetchOffsets answers one group of an OffsetFetch. topics nil means all
// topics the group has committed. An unknown group is no error: its offsets
// are -1. With stable (OffsetFetch v7+ RequireStable), a partition with
// pending transactional offsets answers UNSTABLE_OFFSET_COMMIT, as in Kafka;
// without it, the last committed offset.
func (c *Coordinator) fetchOffsets(group string, topics []fetchTopic, all, byID, stable bool) (int16, []fetchTopic) {
	if c.closed.Load() {
		return kerr.NotCoordinator.Code, nil
	}
	c.activate()
	g := c.lockGroup(group, false)
	if g == nil {
		if c.closed.Load() {
			return kerr.NotCoordinator.Code, nil
		}
	} else {
		defer g.mu.Unlock()
	}
	if all {
		if g == nil {
			return 0, nil
		}
		keys := make([]tp, 0, len(g.offsets))
		for k := range g.offsets {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b tp) int {
			return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
		})
		var out []fetchTopic
		for _, k := range keys {
			if len(out) == 0 || out[len(out)-1].name != k.topic {
				ft := fetchTopic{name: k.topic}
				if ids, ok := c.topics.(TopicIDs); ok && byID {
					ft.id, _ = ids.TopicID(k.topic)
				}
				out = append(out, ft)
			}
			o := g.offsets[k]
			ft := &out[len(out)-1]
			if stable && g.hasTxnOffset(k) {
				ft.parts = append(ft.parts, fetchPart{partition: k.partition, offset: -1, epoch: -1, code: kerr.UnstableOffsetCommit.Code})
				continue
			}
			ft.parts = append(ft.parts, fetchPart{partition: k.partition, offset: o.offset, epoch: o.leaderEpoch, metadata: o.metadata})
		}
		return 0, out
	}
	for i := range topics {
		t := &topics[i]
		name, known := c.resolveTopic(t.name, t.id, byID)
		for j := range t.parts {
			p := &t.parts[j]
			p.offset, p.epoch = -1, -1
			if !known {
				p.code = kerr.UnknownTopicID.Code
				continue
			}
			if g == nil {
				continue
			}
			if stable && g.hasTxnOffset(tp{name, p.partition}) {
				p.code = kerr.UnstableOffsetCommit.Code
				continue
			}
			if o, ok := g.offsets[tp{name, p.partition}]; ok {
				p.offset, p.epoch, p.metadata = o.offset, o.leaderEpoch, o.metadata
			}
		}
	}
	return 0, topics
}

// OffsetFetch handles OffsetFetch v0-v10, including the v8+ multi-group
// form. Partitions without a committed offset, and unknown groups, answer
// offset -1 without error. Offsets of open transactions are not returned;
// with RequireStable (v7+) their partitions answer UNSTABLE_OFFSET_COMMIT.
func (c *Coordinator) OffsetFetch(_ context.Context, r *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = r.Version
	if r.Version >= 8 {
		byID := r.Version >= 10
		for _, rg := range r.Groups {
			var topics []fetchTopic
			for _, t := range rg.Topics {
				ft := fetchTopic{name: t.Topic, id: t.TopicID}
				for _, p := range t.Partitions {
					ft.parts = append(ft.parts, fetchPart{partition: p})
				}
				topics = append(topics, ft)
			}
			code, out := c.fetchOffsets(rg.Group, topics, rg.Topics == nil, byID, r.RequireStable)
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			sg.ErrorCode = code
			for _, ft := range out {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic, st.TopicID = ft.name, ft.id
				for _, fp := range ft.parts {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch = fp.partition, fp.offset, fp.epoch
					sp.Metadata = kmsg.StringPtr(fp.metadata)
					sp.ErrorCode = fp.code
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}

	var topics []fetchTopic
	for _, t := range r.Topics {
		ft := fetchTopic{name: t.Topic}
		for _, p := range t.Partitions {
			ft.parts = append(ft.parts, fetchPart{partition: p})
		}
		topics = append(topics, ft)
	}
	all := r.Topics == nil && r.Version >= 2
	code, out := c.fetchOffsets(r.Group, topics, all, false, r.Version >= 7 && r.RequireStable)
	if code != 0 && r.Version < 2 {
		// v0-v1 have no top-level error: report it per partition.
		out = topics
		for i := range out {
			for j := range out[i].parts {
				out[i].parts[j] = fetchPart{partition: out[i].parts[j].partition, offset: -1, epoch: -1, code: code}
			}
		}
	}
	resp.ErrorCode = code
	for _, ft := range out {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = ft.name
		for _, fp := range ft.parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch = fp.partition, fp.offset, fp.epoch
			sp.Metadata = kmsg.StringPtr(fp.metadata)
			sp.ErrorCode = fp.code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// OffsetDelete handles OffsetDelete v0 (KIP-496): committed offsets of an
// Empty group, or of topics a "consumer" group does not subscribe to, are
// deleted with tombstones.
func (c *Coordinator) OffsetDelete(ctx context.Context, r *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = r.Version
	if c.closed.Load() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	c.activate()
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		if c.closed.Load() {
			resp.ErrorCode = kerr.NotCoordinator.Code
		}
		return resp
	}
	if g.state != stateEmpty && g.protocolType != "consumer" {
		g.mu.Unlock()
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	var (
		recs    []Record
		deleted []tp
		slots   []*int16
	)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(t.Partitions))
		resp.Topics = append(resp.Topics, rt)
	}
	for i, t := range r.Topics {
		var n int32
		known := true
		if c.topics != nil {
			n, known = c.topics.PartitionCount(t.Topic)
		}
		subscribed := g.isSubscribedTo(t.Topic)
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			*rp = kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !known || (c.topics != nil && (p.Partition < 0 || p.Partition >= n)):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				k := tp{t.Topic, p.Partition}
				_, has := g.offsets[k]
				if has || g.inflight[k] > 0 || g.hasTxnOffset(k) {
					recs = append(recs, Record{Key: offsetKey(g.name, k.topic, k.partition)})
					deleted = append(deleted, k)
					slots = append(slots, &rp.ErrorCode)
				}
			}
		}
	}
	if len(recs) == 0 {
		g.mu.Unlock()
		return resp
	}
	done := make(chan int16, 1)
	g.write(recs, func(err error) {
		if err == nil {
			for _, k := range deleted {
				delete(g.offsets, k)
				g.dropTxnOffsets(k)
			}
		}
		done <- errCode(err)
	})
	g.mu.Unlock()
	var code int16
	select {
	case code = <-done:
	case <-c.done:
		code = kerr.NotCoordinator.Code
	case <-ctx.Done():
		code = kerr.RequestTimedOut.Code
	}
	for _, s := range slots {
		*s = code
	}
	return resp
}

func (c *Coordinator) scheduleExpiry(d time.Duration) {
	c.expireMu.Lock()
	defer c.expireMu.Unlock()
	if c.closed.Load() {
		return
	}
	c.expireTimer = time.AfterFunc(d, func() {
		c.expireOffsets(c.now())
		c.scheduleExpiry(d)
	})
}

// expireOffsets drops offsets past retention (Kafka's cleanupGroupMetadata):
// all offsets of a group Empty for the retention period, offsets of topics a
// Stable "consumer" group no longer subscribes to, and offsets of simple
// groups, each by commit time unless the commit carried an expire time.
// Groups left Empty without offsets are deleted. Partitions with pending
// transactional offsets keep their offsets, and a group with any is kept
// (Kafka's cleanupExpiredOffsets).
func (c *Coordinator) expireOffsets(now time.Time) {
	for _, g := range c.snapshotGroups() {
		g.mu.Lock()
		if !g.removed {
			g.expire(now)
		}
		g.mu.Unlock()
	}
}

func (g *group) expire(now time.Time) {
	nowMs := now.UnixMilli()
	retention := ms(g.c.cfg.OffsetsRetention)
	var (
		base         func(offset) int64
		onlyUnsubbed bool
	)
	byCommit := func(o offset) int64 { return o.commitTs }
	switch {
	case g.protocolType == "":
		base = byCommit
	case g.state == stateEmpty:
		since := g.stateSince.UnixMilli()
		base = func(offset) int64 { return since }
	case g.protocolType == "consumer" && g.subscribed != nil && g.state == stateStable:
		base, onlyUnsubbed = byCommit, true
	}
	var recs []Record
	if base != nil {
		for k, o := range g.offsets {
			if g.inflight[k] > 0 || g.hasTxnOffset(k) || (onlyUnsubbed && g.isSubscribedTo(k.topic)) {
				continue
			}
			expired := nowMs-base(o) >= retention
			if o.expireTs >= 0 {
				expired = nowMs >= o.expireTs
			}
			if expired {
				delete(g.offsets, k)
				recs = append(recs, Record{Key: offsetKey(g.name, k.topic, k.partition)})
			}
		}
	}
	if g.state == stateEmpty && len(g.offsets) == 0 && len(g.inflight) == 0 && len(g.pending) == 0 && !g.hasTxn() {
		if !g.isPristine() {
			recs = append(recs, Record{Key: groupKey(g.name)})
		}
		g.c.logger.Info("deleting expired group", "group", g.name)
		g.c.removeGroup(g)
	}
	if len(recs) > 0 {
		g.write(recs, nil)
	}
}
