package runtime

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-io/weir/internal/task"
	"github.com/weir-io/weir/internal/topology"
)

// protocolName is the group protocol every instance of a weir application
// joins with. All members must run the same balancer, so the name carries
// a version for incompatible changes of the user data.
const protocolName = "weir-tasks-v1"

// balancer is a kgo.GroupBalancer that assigns tasks, not partitions: a
// task is (sub-topology, partition), and all of its source topics'
// partitions go to the same member, which is what makes co-partitioned
// joins see every key in one place.
//
// It is cooperative (KIP-429): a member keeps processing the tasks it keeps
// through a rebalance, and a task that moves is first revoked from its old
// owner (which commits it) and only assigned in the following round.
//
// The assignment is balanced by task count and sticky: members report the
// tasks they own (OwnedPartitions, as every cooperative consumer does) and
// the tasks whose state they have on disk (user data); a member keeps its
// tasks while it is within its quota, and a free task goes preferably to a
// member that has its state, so only a changelog tail is restored.
type balancer struct {
	topo *topology.Topology
	// local lists the tasks with state in this instance's state dir.
	local func() []task.ID
	log   *slog.Logger
}

var _ kgo.GroupBalancer = (*balancer)(nil)

func (b *balancer) ProtocolName() string { return protocolName }
func (b *balancer) IsCooperative() bool  { return true }

func (b *balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = t
		owned.Partitions = slices.Sorted(slices.Values(current[t]))
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	meta.UserData = encodeUserData(b.local())
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	subs := b.topo.Subtopologies
	var tasks []task.ID
	for _, s := range subs {
		for p := range taskCount(s, topics) {
			tasks = append(tasks, task.ID{Subtopology: s.ID, Partition: p})
		}
	}

	var members []member
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		mi := member{id: m.MemberID, generation: meta.Generation, local: make(map[task.ID]bool)}
		local, err := decodeUserData(meta.UserData)
		if err != nil {
			b.log.Warn("ignoring a group member's unreadable task list", "member", m.MemberID, "err", err)
		}
		for _, id := range local {
			mi.local[id] = true
		}
		mi.subs = make(map[int]bool)
		for _, s := range subs {
			if containsAll(meta.Topics, s.SourceTopics()) {
				mi.subs[s.ID] = true
			}
		}
		owned := make(map[task.ID]bool)
		for _, op := range meta.OwnedPartitions {
			s, ok := b.topo.SubtopologyFor(op.Topic)
			if !ok {
				continue
			}
			for _, p := range op.Partitions {
				owned[task.ID{Subtopology: s.ID, Partition: p}] = true
			}
		}
		mi.owned = slices.SortedFunc(maps.Keys(owned), compareTasks)
		members = append(members, mi)
	})

	assigned := assignTasks(tasks, members)

	plan := cb.NewPlan()
	for i := range cb.Members() {
		m := &cb.Members()[i]
		for _, id := range assigned[m.MemberID] {
			for _, topic := range subs[id.Subtopology].SourceTopics() {
				if id.Partition < topics[topic] {
					plan.AddPartition(m, topic, id.Partition)
				}
			}
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}

// taskCount is a sub-topology's task count given the topics' partition
// counts: the largest count among its source topics.
func taskCount(s *topology.Subtopology, topics map[string]int32) int32 {
	var n int32
	for _, t := range s.SourceTopics() {
		n = max(n, topics[t])
	}
	return n
}

// member is what the assignment knows of one group member.
type member struct {
	id         string
	generation int32
	owned      []task.ID        // tasks it owned in its last generation
	local      map[task.ID]bool // tasks with state on its disk
	subs       map[int]bool     // sub-topologies it subscribes to
}

// assignTasks distributes tasks over members: every eligible member gets
// ⌊n/m⌋ or ⌈n/m⌉ tasks. Members keep owned tasks up to that quota (a task
// claimed twice stays with the claim of the newest generation); the other
// tasks go to a member with room that has the task's state on disk, else
// to the least loaded member with room. The result is deterministic for a
// given input.
func assignTasks(tasks []task.ID, members []member) map[string][]task.ID {
	out := make(map[string][]task.ID, len(members))
	slices.SortFunc(members, func(a, b member) int { return cmp.Compare(a.id, b.id) })
	// Eligibility: a member takes only tasks of sub-topologies it reads
	// (members of one application normally all read everything).
	eligible := func(m *member, id task.ID) bool { return m.subs[id.Subtopology] }
	if len(members) == 0 {
		return out
	}
	nm := len(members)
	minLoad, extras := len(tasks)/nm, len(tasks)%nm
	load := make([]int, nm)
	owner := make(map[task.ID]int, len(tasks))
	exists := make(map[task.ID]bool, len(tasks))
	for _, id := range tasks {
		exists[id] = true
	}

	// The newest claim of each task wins.
	claim := make(map[task.ID]int)
	for i := range members {
		for _, id := range members[i].owned {
			if j, ok := claim[id]; !ok || members[i].generation > members[j].generation {
				claim[id] = i
			}
		}
	}
	// Sticky pass: keep up to the quota. Owned tasks are kept partition
	// by partition, interleaving sub-topologies, so a member that must give
	// up half of its tasks keeps half of each sub-topology's rather than
	// all of the stateless ones.
	for i := range members {
		m := &members[i]
		owned := slices.SortedFunc(slices.Values(m.owned), func(a, b task.ID) int {
			if c := cmp.Compare(a.Partition, b.Partition); c != 0 {
				return c
			}
			return cmp.Compare(a.Subtopology, b.Subtopology)
		})
		for _, id := range owned {
			if claim[id] != i || !exists[id] || !eligible(m, id) {
				continue
			}
			switch {
			case load[i] < minLoad:
			case load[i] == minLoad && extras > 0:
				extras--
			default:
				continue
			}
			owner[id] = i
			load[i]++
		}
	}
	hasRoom := func(i int) bool { return load[i] < minLoad || load[i] == minLoad && extras > 0 }
	place := func(id task.ID, i int) {
		if load[i] == minLoad {
			extras--
		}
		owner[id] = i
		load[i]++
	}
	// Free tasks, first to members that have their state on disk.
	for _, id := range tasks {
		if _, ok := owner[id]; ok {
			continue
		}
		best := -1
		for i := range members {
			if members[i].local[id] && eligible(&members[i], id) && hasRoom(i) && (best < 0 || load[i] < load[best]) {
				best = i
			}
		}
		if best >= 0 {
			place(id, best)
		}
	}
	// Then to members below the lower quota first, the least loaded.
	for _, id := range tasks {
		if _, ok := owner[id]; ok {
			continue
		}
		best := -1
		for i := range members {
			if eligible(&members[i], id) && hasRoom(i) && (best < 0 || load[i] < load[best]) {
				best = i
			}
		}
		if best >= 0 {
			place(id, best)
			continue
		}
		// Only when eligibility is uneven: the least loaded eligible
		// member, beyond the quota.
		for i := range members {
			if eligible(&members[i], id) && (best < 0 || load[i] < load[best]) {
				best = i
			}
		}
		if best >= 0 {
			owner[id] = best
			load[best]++
		}
	}
	for _, id := range tasks {
		if i, ok := owner[id]; ok {
			out[members[i].id] = append(out[members[i].id], id)
		}
	}
	return out
}

func compareTasks(a, b task.ID) int {
	if c := cmp.Compare(a.Subtopology, b.Subtopology); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// User data: a version byte, then the tasks with local state as a count
// and (sub-topology, partition) pairs, all uvarints.
const userDataVersion = 1

func encodeUserData(local []task.ID) []byte {
	out := []byte{userDataVersion}
	out = binary.AppendUvarint(out, uint64(len(local)))
	for _, id := range local {
		out = binary.AppendUvarint(out, uint64(id.Subtopology))
		out = binary.AppendUvarint(out, uint64(id.Partition))
	}
	return out
}

var errUserData = errors.New("malformed task list")

func decodeUserData(b []byte) ([]task.ID, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != userDataVersion {
		return nil, fmt.Errorf("%w: version %d", errUserData, b[0])
	}
	b = b[1:]
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errUserData
		}
		b = b[n:]
		return v, nil
	}
	n, err := next()
	if err != nil || n > uint64(len(b)) {
		return nil, errUserData
	}
	out := make([]task.ID, 0, n)
	for range n {
		s, err := next()
		if err != nil {
			return nil, err
		}
		p, err := next()
		if err != nil {
			return nil, err
		}
		if s > 1<<20 || p > 1<<31-1 {
			return nil, errUserData
		}
		out = append(out, task.ID{Subtopology: int(s), Partition: int32(p)})
	}
	return out, nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
