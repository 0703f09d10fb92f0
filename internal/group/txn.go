package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactional offset commits (TxnOffsetCommit, KIP-98, KIP-447).
//
// A transactional producer's offsets are written to the group's
// __consumer_offsets partition as ordinary offset commit records, but in a
// transactional batch of that producer (Log.AppendTxn), and are kept
// pending, per group and producer id, until the transaction coordinator's
// COMMIT or ABORT marker on that partition settles them (CompleteTxn live,
// LoadMarker on replay): a commit makes them the group's committed offsets
// unless a plain commit of the same partition was written after them (log
// order decides, as in Kafka, see offset.seq), an abort drops them.
// Pending offsets are invisible to OffsetFetch; with RequireStable their
// partitions answer UNSTABLE_OFFSET_COMMIT. A group with pending offsets is
// not deleted (DeleteGroups answers NON_EMPTY_GROUP, expiry keeps it); an
// offset tombstone (OffsetDelete) drops the pending offsets of its
// partition too, as Kafka's replay does.

// TxnOffsetCommit handles TxnOffsetCommit v0-v6. The offsets are durable
// in __consumer_offsets, as part of the producer's transaction, before the
// response; they become visible when the transaction commits. As Kafka's
// group coordinator does, a v3+ request (KIP-447) naming a member must
// carry its generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID otherwise), one without member and generation is
// accepted whatever the group, and a group completing a rebalance answers
// REBALANCE_IN_PROGRESS. The producer's epoch is checked by the partition
// (Log.AppendTxn): a fenced producer gets INVALID_PRODUCER_EPOCH. Whether
// the transaction includes this group (AddOffsetsToTxn) is the caller's to
// check.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, r *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = r.Version
	type item struct {
		slot *int16
		tp   tp
		p    *kmsg.TxnOffsetCommitRequestTopicPartition
	}
	var items []item
	byID := r.Version >= 6
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(t.Partitions))
		resp.Topics = append(resp.Topics, rt)
	}
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := &resp.Topics[i]
		check := c.partitionCheck(t.Topic, t.TopicID, byID)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if k, code := check(p.Partition); code != 0 {
				rp.ErrorCode = code
			} else {
				items = append(items, item{slot: &rp.ErrorCode, tp: k, p: p})
			}
		}
	}
	fail := func(code int16) *kmsg.TxnOffsetCommitResponse {
		for _, it := range items {
			*it.slot = code
		}
		return resp
	}
	if c.closed.Load() {
		return fail(kerr.NotCoordinator.Code)
	}
	c.activate()
	switch {
	case len(items) == 0:
		return resp
	case r.Group == "":
		return fail(kerr.InvalidGroupID.Code)
	case r.ProducerID < 0:
		return fail(kerr.InvalidProducerIDMapping.Code)
	case r.ProducerEpoch < 0:
		return fail(kerr.InvalidProducerEpoch.Code)
	}

	generation, memberID, instanceID := int32(-1), "", (*string)(nil)
	if r.Version >= 3 {
		generation, memberID, instanceID = r.Generation, r.MemberID, r.InstanceID
	}
	g := c.lockGroup(r.Group, generation < 0)
	if g == nil {
		switch {
		case c.closed.Load():
			return fail(kerr.NotCoordinator.Code)
		case r.Version >= 6:
			return fail(kerr.GroupIDNotFound.Code)
		default:
			return fail(kerr.IllegalGeneration.Code)
		}
	}
	if code := g.validateCommit(memberID, instanceID, generation, true); code != 0 {
		g.dropIfPristine()
		g.mu.Unlock()
		return fail(code)
	}

	now := c.now().UnixMilli()
	seq := c.logSeq.Add(1)
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
		o := offset{offset: it.p.Offset, leaderEpoch: -1, metadata: md, commitTs: now, expireTs: -1, seq: seq}
		if r.Version >= 2 {
			o.leaderEpoch = it.p.LeaderEpoch
		}
		recs = append(recs, Record{Key: offsetKey(g.name, it.tp.topic, it.tp.partition), Value: offsetValue(o)})
		commits = append(commits, commit{it.tp, o})
		slots = append(slots, it.slot)
		g.txnInflight[it.tp]++
	}
	if len(recs) == 0 {
		g.dropIfPristine()
		g.mu.Unlock()
		return resp
	}
	pid := r.ProducerID
	done := make(chan int16, 1)
	g.writeTxn(producer{id: pid, epoch: r.ProducerEpoch}, recs, func(err error) {
		for _, cm := range commits {
			if g.txnInflight[cm.tp]--; g.txnInflight[cm.tp] <= 0 {
				delete(g.txnInflight, cm.tp)
			}
			if err == nil && !g.removed {
				g.addTxnOffset(pid, cm.tp, cm.o)
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

// CompleteTxn settles the pending transactional offsets of producerID in
// the groups of __consumer_offsets partition p, once the producer's COMMIT
// (commit set) or ABORT marker is durable there: committed, they become the
// groups' offsets (unless a plain commit was written after them); aborted,
// they are dropped. A TxnOffsetCommit still being written when the marker
// arrives (which clients do not do: they await its response before EndTxn)
// stays pending for the producer's next transaction, as it would on replay
// if its record followed the marker.
func (c *Coordinator) CompleteTxn(p int32, producerID int64, commit bool) {
	c.settleTxn(p, producerID, commit)
}

// LoadTxn replays one record of a transactional batch of producerID: an
// offset commit becomes pending until LoadMarker settles it. Anything else
// (a tombstone, group metadata) replays as through Load, as Kafka's replay
// does.
func (c *Coordinator) LoadTxn(producerID int64, key, value []byte) error {
	if producerID < 0 || value == nil || !isOffsetKey(key) {
		return c.Load(key, value)
	}
	k, o, err := decodeOffset(key, value)
	if err != nil {
		return err
	}
	g := c.lockGroup(k.Group, true)
	if g == nil {
		return nil
	}
	o.seq = c.logSeq.Add(1)
	g.addTxnOffset(producerID, tp{k.Topic, k.Partition}, o)
	g.mu.Unlock()
	return nil
}

// LoadMarker replays a COMMIT (commit set) or ABORT marker of producerID on
// __consumer_offsets partition p: it settles the producer's pending offsets
// there as CompleteTxn does.
func (c *Coordinator) LoadMarker(p int32, producerID int64, commit bool) {
	c.settleTxn(p, producerID, commit)
}

func (c *Coordinator) settleTxn(p int32, producerID int64, commit bool) {
	if c.closed.Load() {
		return
	}
	c.mu.Lock()
	var gs []*group
	for g := range c.txnGroups[producerID] {
		if g.partition == p {
			gs = append(gs, g)
		}
	}
	c.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		if !g.removed {
			g.settleTxn(producerID, commit)
		}
		g.mu.Unlock()
	}
}

// settleTxn commits or aborts the pending offsets of producerID. g.mu must
// be held.
func (g *group) settleTxn(producerID int64, commit bool) {
	pend, ok := g.txnOffsets[producerID]
	if !ok {
		return
	}
	delete(g.txnOffsets, producerID)
	g.c.mu.Lock()
	g.c.unindexTxn(producerID, g)
	g.c.mu.Unlock()
	if commit {
		for k, o := range pend {
			g.setOffset(k, o)
		}
	}
	g.dropIfPristine()
}

// setOffset makes o the committed offset of k unless the one there was
// written later. g.mu must be held.
func (g *group) setOffset(k tp, o offset) {
	if cur, ok := g.offsets[k]; ok && cur.seq > o.seq {
		return
	}
	g.offsets[k] = o
}

// addTxnOffset records o as producerID's pending offset of k. g.mu must be
// held.
func (g *group) addTxnOffset(producerID int64, k tp, o offset) {
	m := g.txnOffsets[producerID]
	if m == nil {
		m = make(map[tp]offset)
		g.txnOffsets[producerID] = m
		g.c.mu.Lock()
		set := g.c.txnGroups[producerID]
		if set == nil {
			set = make(map[*group]struct{})
			g.c.txnGroups[producerID] = set
		}
		set[g] = struct{}{}
		g.c.mu.Unlock()
	}
	m[k] = o
}

// dropTxnOffsets forgets every producer's pending offset of k (an offset
// tombstone). g.mu must be held.
func (g *group) dropTxnOffsets(k tp) {
	for pid, m := range g.txnOffsets {
		delete(m, k)
		if len(m) == 0 {
			delete(g.txnOffsets, pid)
			g.c.mu.Lock()
			g.c.unindexTxn(pid, g)
			g.c.mu.Unlock()
		}
	}
}

// hasTxnOffset reports pending (or in-flight) transactional offsets of k.
// g.mu must be held.
func (g *group) hasTxnOffset(k tp) bool {
	if g.txnInflight[k] > 0 {
		return true
	}
	for _, m := range g.txnOffsets {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// hasTxn reports any pending or in-flight transactional offsets. g.mu must
// be held.
func (g *group) hasTxn() bool { return len(g.txnOffsets) > 0 || len(g.txnInflight) > 0 }

// unindexTxn drops g from the groups of producerID. c.mu must be held.
func (c *Coordinator) unindexTxn(producerID int64, g *group) {
	if set := c.txnGroups[producerID]; set != nil {
		delete(set, g)
		if len(set) == 0 {
			delete(c.txnGroups, producerID)
		}
	}
}
