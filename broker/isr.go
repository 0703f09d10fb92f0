package broker

import (
	"bufio"
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-io/weir/internal/controller"
)

// In-sync replicas. Raft decides what is committed; the ISR answers
// Kafka's other question, which replicas hold (nearly) everything the
// leader has, for Metadata, `weir topic describe` and min.insync.replicas.
//
// hashicorp/raft does not expose a follower's match index, so every
// follower reports its applied Raft index to its partition's leader each
// progressInterval (one mux connection per peer carries the reports of all
// its partitions; the leader acknowledges each, so a connection that
// silently stops delivering is noticed and redialled). The leader keeps Kafka's lastCaughtUpTime per follower:
// a follower is caught up at a report that reaches the leader's applied
// index, or, under load, as of its previous report if it has since reached
// where the leader was then. A member leaves the ISR once it has not been
// caught up for ReplicaLagTimeMax; a replica joins only on fresh evidence.
// The leader writes its decisions into the metadata image
// (AlterPartition), whose FSM also takes fenced and restarted brokers out
// and refuses to put them back in an incarnation the leader has not heard
// from (KIP-903).

// progressInterval is how often followers report their progress.
const progressInterval = 250 * time.Millisecond

// joinWindow is how recently a replica must have been caught up to join
// the ISR: a caught-up time can be one report old, so allow a few.
const joinWindow = 3 * progressInterval

// progressGroup is the mux group carrying progress reports.
const progressGroup = "replica-progress"

// progressReport is one follower broker's progress on every partition
// led by the receiving broker.
type progressReport struct {
	From        int32             `msgpack:"from"`
	BrokerEpoch int64             `msgpack:"broker_epoch"`
	Replicas    []replicaProgress `msgpack:"replicas"`
}

type replicaProgress struct {
	TopicID   [16]byte `msgpack:"topic_id"`
	Partition int32    `msgpack:"partition"`
	Applied   uint64   `msgpack:"applied"`
}

// followerSet is a partition leader's view of its followers in one leader
// epoch; the zero value is ready to use.
type followerSet struct {
	mu    sync.Mutex
	epoch int32 // the leader epoch this view belongs to; 0 before any
	byID  map[int32]*follower
}

type follower struct {
	brokerEpoch int64
	reportedAt  time.Time
	leaderAt    uint64 // the leader's applied index when that report came
	caughtUpAt  time.Time
}

// begin starts the view of a new leader epoch unless it is already on it:
// members of the image's ISR are presumed caught up now, as a new Kafka
// leader presumes, so a failover alone does not shrink the ISR.
func (s *followerSet) begin(epoch int32, members map[int32]int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch == epoch && s.byID != nil {
		return
	}
	s.epoch = epoch
	s.byID = make(map[int32]*follower, len(members))
	for id, be := range members {
		s.byID[id] = &follower{brokerEpoch: be, caughtUpAt: now}
	}
}

// observe records a report that follower id (in broker epoch be) has
// applied up to applied while the leader, in leader epoch epoch, has
// applied up to leaderApplied.
func (s *followerSet) observe(epoch, id int32, be int64, applied, leaderApplied uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch || s.byID == nil {
		return // the leader has not begun this epoch's view yet
	}
	f := s.byID[id]
	if f == nil || f.brokerEpoch != be {
		f = &follower{brokerEpoch: be} // a new incarnation starts behind
		s.byID[id] = f
	}
	switch {
	case applied >= leaderApplied:
		f.caughtUpAt = now
	case !f.reportedAt.IsZero() && applied >= f.leaderAt && f.reportedAt.After(f.caughtUpAt):
		f.caughtUpAt = f.reportedAt
	}
	f.reportedAt, f.leaderAt = now, leaderApplied
}

// inSync says whether follower id in broker epoch be belongs in the ISR:
// a member until it has lagged for lagMax, a newcomer once it has just
// been caught up.
func (s *followerSet) inSync(id int32, be int64, member bool, now time.Time, lagMax time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.byID[id]
	switch {
	case f == nil || f.brokerEpoch != be || f.caughtUpAt.IsZero():
		return false
	case member:
		return now.Sub(f.caughtUpAt) <= lagMax
	}
	// Joining takes a report: being presumed caught up at the start of
	// the epoch is not evidence.
	return !f.reportedAt.IsZero() && now.Sub(f.caughtUpAt) <= joinWindow
}

// tendISR runs on a partition's leader once the image names it leader in
// its current epoch: it decides the ISR and writes a change to the image.
func (c *cluster) tendISR(ctx context.Context, img *controller.Image, id [16]byte, p *partition, ip controller.Partition) {
	now := time.Now()
	self := c.b.cfg.NodeID
	members := map[int32]int64{}
	for _, r := range ip.ISR {
		if br, ok := img.Broker(r); ok && r != self {
			members[r] = br.Epoch
		}
	}
	p.followers.begin(ip.LeaderEpoch, members, now)
	var isr []controller.ISRMember
	for _, r := range ip.Replicas {
		br, ok := img.Broker(r)
		switch {
		case r == self:
			isr = append(isr, controller.ISRMember{NodeID: r, BrokerEpoch: c.brokerEpoch})
		case ok && !br.Fenced && p.followers.inSync(r, br.Epoch, slices.Contains(ip.ISR, r), now, c.b.cfg.ReplicaLagTimeMax):
			isr = append(isr, controller.ISRMember{NodeID: r, BrokerEpoch: br.Epoch})
		}
	}
	if slices.EqualFunc(isr, ip.ISR, func(m controller.ISRMember, r int32) bool { return m.NodeID == r }) {
		return
	}
	err := c.remote.AlterPartition(ctx, controller.AlterPartition{
		TopicID: id, Partition: p.index, Leader: self, LeaderEpoch: ip.LeaderEpoch,
		PartitionEpoch: ip.PartitionEpoch, ISR: isr,
	})
	if err != nil {
		// Typically a stale view (the image moved on): the next tick
		// decides again from the newer image.
		c.b.log.Debug("ISR change refused", "topic", p.topic, "partition", p.index, "to", isrNodes(isr), "err", err)
		return
	}
	c.b.log.Info("ISR changed", "topic", p.topic, "partition", p.index, "from", ip.ISR, "to", isrNodes(isr))
}

// inSyncReplicas counts a partition's ISR members on brokers in service.
// Every acks=all produce asks, so it counts without allocating.
func (c *cluster) inSyncReplicas(id [16]byte, index int32) int {
	img := c.ctl.Image()
	ip, _ := imagePartition(img, id, index)
	n := 0
	for _, r := range ip.ISR {
		if inService(img, r) {
			n++
		}
	}
	return n
}

// liveISR is a partition's ISR less brokers out of service: the image
// removes a fenced broker from ISRs itself, but never an ISR's last member.
func liveISR(img *controller.Image, ip controller.Partition) []int32 {
	isr := []int32{}
	for _, r := range ip.ISR {
		if inService(img, r) {
			isr = append(isr, r)
		}
	}
	return isr
}

func isrNodes(ms []controller.ISRMember) []int32 {
	out := make([]int32, len(ms))
	for i, m := range ms {
		out[i] = m.NodeID
	}
	return out
}

// reportProgress sends this broker's follower progress to the partition
// leaders every progressInterval until the broker stops.
func (c *cluster) reportProgress() {
	defer c.wg.Done()
	peers := map[int32]*progressPeer{}
	defer func() {
		for _, pp := range peers {
			pp.drop()
		}
	}()
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case <-tick.C:
		}
		var wg sync.WaitGroup
		for leader, rs := range c.followerProgress() {
			pp := peers[leader]
			if pp == nil {
				pp = &progressPeer{addr: c.raftAddr(leader)}
				peers[leader] = pp
			}
			wg.Go(func() {
				if err := c.sendProgress(pp, rs); err != nil {
					c.b.log.Debug("reporting replica progress", "leader", leader, "err", err)
				}
			})
		}
		wg.Wait()
	}
}

// followerProgress groups this broker's follower replicas by leader.
func (c *cluster) followerProgress() map[int32][]replicaProgress {
	out := map[int32][]replicaProgress{}
	for _, t := range c.b.allTopics() {
		for _, p := range t.parts {
			if p == nil || p.repl == nil || p.deleted.Load() {
				continue
			}
			leader, ok := nodeID(p.repl.Leader())
			if !ok || leader == c.b.cfg.NodeID {
				continue
			}
			out[leader] = append(out[leader], replicaProgress{TopicID: t.id, Partition: p.index, Applied: p.repl.Raft().AppliedIndex()})
		}
	}
	return out
}

// progressPeer is the connection reports to one leader broker travel on.
type progressPeer struct {
	addr string
	conn net.Conn // nil until dialled, and after a failure
	enc  *msgpack.Encoder
}

func (pp *progressPeer) drop() {
	if pp.conn != nil {
		pp.conn.Close()
		pp.conn = nil
	}
}

// sendProgress sends one report and waits for its acknowledgement.
func (c *cluster) sendProgress(pp *progressPeer, rs []replicaProgress) error {
	if pp.conn == nil {
		conn, err := c.progress.Dial(raft.ServerAddress(pp.addr), progressInterval)
		if err != nil {
			return err
		}
		pp.conn, pp.enc = conn, msgpack.NewEncoder(conn)
	}
	pp.conn.SetDeadline(time.Now().Add(progressInterval))
	err := pp.enc.Encode(progressReport{From: c.b.cfg.NodeID, BrokerEpoch: c.brokerEpoch, Replicas: rs})
	if err == nil {
		var ack [1]byte
		_, err = io.ReadFull(pp.conn, ack[:])
	}
	if err != nil {
		pp.drop()
	}
	return err
}

// raftAddr is node id's Raft address: a voter's entry in Voters (what
// every node was configured with, even if the voter listens on a
// wildcard address), else what a broker-only node registered.
func (c *cluster) raftAddr(id int32) string {
	for _, v := range c.b.cfg.Voters {
		if v.ID == id {
			return v.RaftAddr
		}
	}
	if br, ok := c.ctl.Image().Broker(id); ok {
		return br.RaftAddr
	}
	return ""
}

// serveProgress reads the reports followers send this broker until the
// layer closes.
func (c *cluster) serveProgress(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go c.readProgress(conn)
	}
}

// progressIdle drops a report connection that has carried nothing for
// this long (its sender is gone or no longer follows this broker).
const progressIdle = 40 * progressInterval

func (c *cluster) readProgress(conn net.Conn) {
	defer conn.Close()
	dec := msgpack.NewDecoder(bufio.NewReader(conn))
	for {
		conn.SetDeadline(time.Now().Add(progressIdle))
		var r progressReport
		if err := dec.Decode(&r); err != nil {
			return
		}
		c.observeProgress(&r)
		if _, err := conn.Write([]byte{1}); err != nil {
			return
		}
	}
}

func (c *cluster) observeProgress(r *progressReport) {
	img, now := c.ctl.Image(), time.Now()
	for _, rp := range r.Replicas {
		it, ok := img.TopicByID(rp.TopicID)
		if !ok {
			continue
		}
		t := c.b.lookupTopic(it.Name)
		if t == nil || t.id != rp.TopicID || rp.Partition < 0 || int(rp.Partition) >= len(t.parts) {
			continue
		}
		p := t.parts[rp.Partition]
		if p == nil || p.repl == nil || !p.repl.IsLeader() {
			continue
		}
		p.followers.observe(p.repl.LeaderEpoch(), r.From, r.BrokerEpoch, rp.Applied, p.repl.Raft().AppliedIndex(), now)
	}
}

// nodeID parses a Raft server id back into a node id.
func nodeID(id raft.ServerID) (int32, bool) {
	n, err := strconv.ParseInt(string(id), 10, 32)
	return int32(n), err == nil
}
