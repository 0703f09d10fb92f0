package group

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic group's state, named as Kafka names it.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

type protocol struct {
	name string
	meta []byte
}

type member struct {
	id                   string
	instanceID           *string
	clientID, clientHost string
	session, rebalance   time.Duration
	protocolType         string
	protocols            []protocol
	assignment           []byte
	seq                  uint64 // join order: deterministic leader choice and listings

	awaitingJoin bool        // has sent JoinGroup for the coming generation
	join         *joinWaiter // the blocked JoinGroup call, if still connected
	awaitingSync bool        // has sent SyncGroup and waits for the assignment
	sync         *syncWaiter

	timer    *time.Timer // session (heartbeat) expiry
	timerTok uint64
}

type joinWaiter struct {
	version int16
	ch      chan *kmsg.JoinGroupResponse // buffered, sent to at most once
}

type syncWaiter struct {
	version int16
	ch      chan *kmsg.SyncGroupResponse // buffered, sent to at most once
}

func (m *member) metadata(proto string) []byte {
	for _, p := range m.protocols {
		if p.name == proto {
			return p.meta
		}
	}
	return nil
}

// matches reports whether a rejoin carries the same protocols, in the same
// order, with the same metadata (Kafka's MemberMetadata.matches).
func (m *member) matches(ps []protocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b protocol) bool {
		return a.name == b.name && bytes.Equal(a.meta, b.meta)
	})
}

type tp struct {
	topic     string
	partition int32
}

type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTs    int64 // ms
	expireTs    int64 // ms; -1 = none (only OffsetCommit v2-v4 set it)
	// seq orders the group's offset records as the log does (Kafka
	// compares their log offsets): taken from Coordinator.logSeq when the
	// record is queued (under the group's lock, so in log order) or
	// loaded. A committed transaction's offset replaces a committed one
	// only if it was written later.
	seq uint64
}

type pendingMember struct {
	timer *time.Timer
}

// group is one classic group. Every field below mu is guarded by mu. Requests
// lock the group, act, and unlock; JoinGroup and SyncGroup then wait on a
// channel the state machine answers when the phase completes. Timers
// (time.AfterFunc) lock the group too and check a token so that a timer
// stopped too late does nothing.
type group struct {
	c         *Coordinator
	name      string
	partition int32

	mu           sync.Mutex
	removed      bool // dropped from the coordinator map (Dead)
	state        state
	stateSince   time.Time // Kafka's currentStateTimestamp
	generation   int32
	protocolType string
	protocol     string // selected protocol; "" when Empty
	leader       string
	members      map[string]*member
	pending      map[string]*pendingMember // v4+ joins answered MEMBER_ID_REQUIRED
	static       map[string]string         // group.instance.id -> member id
	supported    map[string]int            // protocol name -> members supporting it
	subscribed   map[string]struct{}       // topics of a "consumer" group; nil = unknown
	seq          uint64

	// Join phase.
	rebTimer       *time.Timer
	rebTok         uint64
	initialDelay   bool // the join phase started from Empty: wait group.initial.rebalance.delay.ms
	newMemberAdded bool
	delayRemaining time.Duration

	// Sync phase.
	pendingSync map[string]struct{} // members that have not sent SyncGroup this generation
	syncTimer   *time.Timer
	syncTok     uint64
	assigning   bool // the leader's assignment is being written

	offsets  map[tp]offset
	inflight map[tp]int // commit records queued but not yet durable

	// Transactional offset commits (TxnOffsetCommit): durable, by
	// producer id, but invisible until the producer's COMMIT marker (see
	// txn.go). txnInflight counts those queued but not yet durable.
	txnOffsets  map[int64]map[tp]offset
	txnInflight map[tp]int
}

func newGroup(c *Coordinator, name string) *group {
	return &group{
		c:           c,
		name:        name,
		partition:   c.PartitionFor(name),
		state:       stateEmpty,
		stateSince:  c.now(),
		members:     make(map[string]*member),
		pending:     make(map[string]*pendingMember),
		static:      make(map[string]string),
		supported:   make(map[string]int),
		offsets:     make(map[tp]offset),
		inflight:    make(map[tp]int),
		txnOffsets:  make(map[int64]map[tp]offset),
		txnInflight: make(map[tp]int),
	}
}

func (g *group) setState(s state) {
	g.state = s
	g.stateSince = g.c.now()
}

// after runs fn under g.mu after d, unless the group is gone or the
// coordinator closed by then.
func (g *group) after(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.removed || g.c.closed.Load() {
			return
		}
		fn()
	})
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

// isPristine reports whether the group holds nothing worth keeping, so that a
// group created by a failed request can be dropped again.
func (g *group) isPristine() bool {
	return g.state == stateEmpty && g.generation == 0 && g.protocolType == "" &&
		len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && len(g.inflight) == 0 &&
		!g.hasTxn()
}

func (g *group) dropIfPristine() {
	if g.isPristine() {
		g.c.removeGroup(g)
	}
}

// supportsProtocols is Kafka's ClassicGroup.supportsProtocols: an Empty group
// takes any non-empty protocol type and list; otherwise the type must match
// and one of the protocols must be supported by every current member.
func (g *group) supportsProtocols(protocolType string, ps []protocol) bool {
	if g.state == stateEmpty || len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supported[p.name] == len(g.members) {
			return true
		}
	}
	return false
}

func (g *group) addProtocols(m *member, delta int) {
	for _, p := range m.protocols {
		g.supported[p.name] += delta
		if g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
}

// add puts a new member in the group (Kafka's ClassicGroup.add).
func (g *group) add(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.seq++
	m.seq = g.seq
	g.members[m.id] = m
	g.addProtocols(m, 1)
	if g.leader == "" {
		g.leader = m.id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
}

// removeMember takes m out of the group without triggering anything (Kafka's
// ClassicGroup.remove). A JoinGroup or SyncGroup still waiting for m is
// answered UNKNOWN_MEMBER_ID so that a live client rejoins.
func (g *group) removeMember(m *member) {
	if g.members[m.id] != m {
		return
	}
	delete(g.members, m.id)
	g.addProtocols(m, -1)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	g.stopSession(m)
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
	if w := m.join; w != nil {
		resp := newJoinResponse(w.version)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		w.ch <- resp
		m.join = nil
	}
	if w := m.sync; w != nil {
		resp := newSyncResponse(w.version)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		w.ch <- resp
		m.sync = nil
	}
	m.awaitingJoin, m.awaitingSync = false, false
}

// removeMemberAndUpdate removes m and moves the group on: a rebalance from
// Stable or CompletingRebalance, possibly the end of the join phase from
// PreparingRebalance.
func (g *group) removeMemberAndUpdate(m *member, reason string) {
	g.c.logger.Info("removing member from group", "group", g.name, "member", m.id, "reason", reason)
	g.removeMember(m)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.maybePrepareRebalanceOrCompleteJoin(reason)
	case statePreparingRebalance:
		g.maybeCompleteJoin()
	}
}

// armSession (re)starts m's session timeout. A member waiting in JoinGroup or
// SyncGroup is kept alive, as Kafka does; its timer restarts when the phase
// completes. Before the coordinator's first request (members restored by
// Load), timers wait for activate.
func (g *group) armSession(m *member) {
	if !g.c.activated.Load() {
		return
	}
	g.stopSession(m)
	tok := m.timerTok
	m.timer = g.after(m.session, func() {
		if g.members[m.id] != m || m.timerTok != tok {
			return
		}
		if m.awaitingJoin || m.awaitingSync {
			g.armSession(m)
			return
		}
		g.removeMemberAndUpdate(m, "session timeout expired")
	})
}

func (g *group) stopSession(m *member) {
	m.timerTok++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

func (g *group) addPending(id string, session time.Duration) {
	p := &pendingMember{}
	g.pending[id] = p
	p.timer = g.after(session, func() {
		if g.pending[id] != p {
			return
		}
		delete(g.pending, id)
		g.maybeCompleteJoin()
	})
}

func (g *group) removePending(id string) bool {
	p, ok := g.pending[id]
	if !ok {
		return false
	}
	p.timer.Stop()
	delete(g.pending, id)
	return true
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

func (g *group) canRebalance() bool {
	return g.state == stateStable || g.state == stateCompletingRebalance || g.state == stateEmpty
}

func (g *group) maybePrepareRebalanceOrCompleteJoin(reason string) {
	if g.canRebalance() {
		g.prepareRebalance(reason)
	} else if g.state == statePreparingRebalance {
		g.maybeCompleteJoin()
	}
}

// prepareRebalance moves the group to PreparingRebalance. From Empty it waits
// the initial rebalance delay (extended while new members keep arriving);
// otherwise it completes as soon as every member has rejoined, or at the
// rebalance timeout.
func (g *group) prepareRebalance(reason string) {
	if g.state == stateCompletingRebalance {
		g.resetAssignments(kerr.RebalanceInProgress.Code)
	}
	g.clearPendingSync()
	initial := g.state == stateEmpty
	g.setState(statePreparingRebalance)
	g.c.logger.Info("preparing to rebalance group", "group", g.name, "generation", g.generation, "reason", reason)
	rt := g.maxRebalanceTimeout()
	if d := g.c.cfg.InitialRebalanceDelay; initial && d > 0 {
		g.initialDelay = true
		g.newMemberAdded = false
		g.delayRemaining = max(rt-d, 0)
		g.armRebalance(d)
		return
	}
	g.initialDelay = false
	g.armRebalance(rt)
	g.maybeCompleteJoin()
}

func (g *group) armRebalance(d time.Duration) {
	g.stopRebalance()
	tok := g.rebTok
	g.rebTimer = g.after(d, func() {
		if g.rebTok != tok || g.state != statePreparingRebalance {
			return
		}
		if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
			g.newMemberAdded = false
			d := min(g.c.cfg.InitialRebalanceDelay, g.delayRemaining)
			g.delayRemaining -= d
			g.armRebalance(d)
			return
		}
		g.completeJoin()
	})
}

func (g *group) stopRebalance() {
	g.rebTok++
	if g.rebTimer != nil {
		g.rebTimer.Stop()
		g.rebTimer = nil
	}
}

func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if !m.awaitingJoin {
			return false
		}
	}
	return true
}

func (g *group) maybeCompleteJoin() {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin()
	}
}

// completeJoin ends the join phase (Kafka's onCompleteJoin): dynamic members
// that did not rejoin are dropped, the generation advances, a protocol is
// chosen and every waiting member gets its JoinGroup response, the leader
// with everyone's metadata.
func (g *group) completeJoin() {
	if g.state != statePreparingRebalance {
		return
	}
	g.stopRebalance()
	g.initialDelay = false
	for _, m := range g.sortedMembers() {
		if !m.awaitingJoin && m.instanceID == nil {
			g.c.logger.Info("removing member that did not rejoin", "group", g.name, "member", m.id)
			g.removeMember(m)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that have not rejoined remain: give them
		// another rebalance timeout to rejoin or expire.
		g.c.logger.Warn("group could not complete rebalance because no members rejoined", "group", g.name)
		g.armRebalance(g.maxRebalanceTimeout())
		return
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.computeSubscribed()
		g.setState(stateEmpty)
		g.c.logger.Info("group is empty", "group", g.name, "generation", g.generation)
		g.persistMeta(nil, nil)
		return
	}
	g.protocol = g.selectProtocol()
	g.computeSubscribed()
	g.setState(stateCompletingRebalance)
	g.c.logger.Info("group completed join phase", "group", g.name, "generation", g.generation,
		"protocol", g.protocol, "leader", g.leader, "members", len(g.members))

	leaderMembers := g.joinMembers()
	g.pendingSync = make(map[string]struct{}, len(g.members))
	for _, m := range g.sortedMembers() {
		g.pendingSync[m.id] = struct{}{}
		if w := m.join; w != nil {
			resp := newJoinResponse(w.version)
			g.fillJoin(resp, m.id)
			if m.id == g.leader {
				resp.Members = leaderMembers
			}
			w.ch <- resp
			m.join = nil
		}
		m.awaitingJoin = false
		g.armSession(m)
	}
	g.armSync(g.maxRebalanceTimeout())
}

// electJoinedLeader keeps the leader if it rejoined, else picks a member that
// did; false if none did.
func (g *group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.awaitingJoin {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.awaitingJoin {
			g.leader = m.id
			return true
		}
	}
	return false
}

// selectProtocol picks, among the protocols every member supports, the one
// most members prefer (each votes for its first supported candidate). Ties
// go to the leader's preference.
func (g *group) selectProtocol() string {
	n := len(g.members)
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supported[p.name] == n {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	var order []protocol
	if l := g.members[g.leader]; l != nil {
		order = l.protocols
	}
	for _, p := range order {
		if v, ok := votes[p.name]; ok && v > bestVotes {
			best, bestVotes = p.name, v
		}
	}
	if best == "" && len(order) > 0 { // unreachable: supportsProtocols keeps a common protocol
		best = order[0].name
	}
	return best
}

// computeSubscribed records the topics a "consumer" group subscribes to,
// parsed from its members' subscriptions; nil when unknown.
func (g *group) computeSubscribed() {
	g.subscribed = nil
	if g.protocolType != "consumer" {
		return
	}
	set := make(map[string]struct{})
	if len(g.members) > 0 {
		if g.protocol == "" {
			return
		}
		for _, m := range g.members {
			var meta kmsg.ConsumerMemberMetadata
			if err := meta.ReadFrom(m.metadata(g.protocol)); err != nil {
				return
			}
			for _, t := range meta.Topics {
				set[t] = struct{}{}
			}
		}
	}
	g.subscribed = set
}

func (g *group) isSubscribedTo(topic string) bool {
	_, ok := g.subscribed[topic]
	return ok
}

func (g *group) fillJoin(resp *kmsg.JoinGroupResponse, memberID string) {
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = memberID
}

func (g *group) joinMembers() []kmsg.JoinGroupResponseMember {
	ms := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.sortedMembers() {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(g.protocol)
		ms = append(ms, jm)
	}
	return ms
}

// resetAssignments is Kafka's resetAndPropagateAssignmentError: assignments
// are cleared and every member waiting in SyncGroup gets code.
func (g *group) resetAssignments(code int16) {
	for _, m := range g.members {
		m.assignment = nil
		if w := m.sync; w != nil {
			resp := newSyncResponse(w.version)
			resp.ErrorCode = code
			w.ch <- resp
			m.sync = nil
		}
		m.awaitingSync = false
	}
}

// armSync starts the pending-sync timeout: members that have not sent
// SyncGroup within the rebalance timeout after the join phase are removed and
// the group rebalances.
func (g *group) armSync(d time.Duration) {
	g.stopSync()
	tok := g.syncTok
	g.syncTimer = g.after(d, func() {
		if g.syncTok != tok || len(g.pendingSync) == 0 {
			return
		}
		if g.state != stateCompletingRebalance && g.state != stateStable {
			return
		}
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				g.c.logger.Info("removing member that did not sync", "group", g.name, "member", id)
				g.removeMember(m)
			}
		}
		g.prepareRebalance("members failed to sync within the rebalance timeout")
	})
}

func (g *group) stopSync() {
	g.syncTok++
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}

func (g *group) clearPendingSync() {
	g.pendingSync = nil
	g.assigning = false
	g.stopSync()
}

func (g *group) synced(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.stopSync()
	}
}

// shutdown stops every timer and answers every waiter with code (Close).
func (g *group) shutdown(code int16) {
	g.stopRebalance()
	g.stopSync()
	for _, p := range g.pending {
		p.timer.Stop()
	}
	for _, m := range g.members {
		g.stopSession(m)
		if w := m.join; w != nil {
			resp := newJoinResponse(w.version)
			resp.ErrorCode = code
			w.ch <- resp
			m.join = nil
		}
		if w := m.sync; w != nil {
			resp := newSyncResponse(w.version)
			resp.ErrorCode = code
			w.ch <- resp
			m.sync = nil
		}
	}
}

func newJoinResponse(version int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	return resp
}

func newSyncResponse(version int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	return resp
}
