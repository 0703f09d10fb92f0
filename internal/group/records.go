package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record key versions of __consumer_offsets: the key's leading int16 says
// what the record is.
const (
	keyOffsetCommitV0  = 0
	keyOffsetCommitV1  = 1
	keyGroupMetadataV2 = 2
)

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = keyOffsetCommitV1
	k.Group = group
	k.Topic = topic
	k.Partition = partition
	return k.AppendTo(nil)
}

// offsetValue encodes o as Kafka 3.x/4.x does: value version 1 when the commit
// carries an expire timestamp (OffsetCommit v2-v4 with a retention time),
// version 3 otherwise.
func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	if o.expireTs >= 0 {
		v.Version = 1
		v.ExpireTimestamp = o.expireTs
	} else {
		v.Version = 3
		v.LeaderEpoch = o.leaderEpoch
	}
	v.Offset = o.offset
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTs
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = keyGroupMetadataV2
	k.Group = group
	return k.AppendTo(nil)
}

// metaRecord encodes the group as a GroupMetadataValue v3 (what Kafka 2.3+
// writes). assign overrides the members' current assignments when non-nil.
func (g *group) metaRecord(assign map[string][]byte) Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(ms(m.rebalance))
		vm.SessionTimeoutMillis = int32(ms(m.session))
		vm.Subscription = m.metadata(g.protocol)
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		a := m.assignment
		if assign != nil {
			a = assign[m.id]
		}
		if a == nil {
			a = []byte{}
		}
		vm.Assignment = a
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(g.name), Value: v.AppendTo(nil)}
}

// persistMeta writes the group's metadata; done (may be nil) runs under g.mu
// once it is durable or failed.
func (g *group) persistMeta(assign map[string][]byte, done func(error)) {
	g.write([]Record{g.metaRecord(assign)}, done)
}

// Load replays one record of __consumer_offsets; the broker replays every
// partition this coordinator serves, in log order, before serving requests.
// Records of transactional batches go to LoadTxn instead, and COMMIT and
// ABORT markers to LoadMarker.
// Offset commits and group metadata are restored (a group with members comes
// back Stable, and its members' session timers start at the first request
// after loading); tombstones delete. Records of other types (KIP-848 key
// versions 3 and up) are ignored. Malformed records return an error and
// change nothing.
func (c *Coordinator) Load(key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("group: __consumer_offsets key of %d bytes is too short", len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case keyOffsetCommitV0, keyOffsetCommitV1:
		k, o, err := decodeOffset(key, value)
		if err != nil {
			return err
		}
		if value == nil {
			g := c.lockGroup(k.Group, false)
			if g == nil {
				return nil
			}
			delete(g.offsets, tp{k.Topic, k.Partition})
			g.dropTxnOffsets(tp{k.Topic, k.Partition}) // as Kafka's replay does
			g.dropIfPristine()
			g.mu.Unlock()
			return nil
		}
		g := c.lockGroup(k.Group, true)
		if g == nil {
			return nil
		}
		o.seq = c.logSeq.Add(1)
		g.offsets[tp{k.Topic, k.Partition}] = o
		g.mu.Unlock()
		return nil

	case keyGroupMetadataV2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: decoding group metadata key: %w", err)
		}
		if value == nil {
			g := c.lockGroup(k.Group, false)
			if g == nil {
				return nil
			}
			g.resetMembership()
			g.generation, g.protocolType = 0, ""
			g.subscribed = nil
			g.dropIfPristine()
			g.mu.Unlock()
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("group: decoding group metadata value: %w", err)
		}
		if v.Version < 0 || v.Version > 4 {
			return fmt.Errorf("group: unknown group metadata value version %d", v.Version)
		}
		g := c.lockGroup(k.Group, true)
		if g == nil {
			return nil
		}
		g.loadMeta(&v)
		g.mu.Unlock()
		return nil

	default:
		return nil
	}
}

// isOffsetKey reports whether key is an OffsetCommitKey (v0 or v1).
func isOffsetKey(key []byte) bool {
	if len(key) < 2 {
		return false
	}
	v := int16(binary.BigEndian.Uint16(key))
	return v == keyOffsetCommitV0 || v == keyOffsetCommitV1
}

// decodeOffset decodes an offset commit record; value nil (a tombstone)
// decodes the key only.
func decodeOffset(key, value []byte) (kmsg.OffsetCommitKey, offset, error) {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return k, offset{}, fmt.Errorf("group: decoding offset commit key: %w", err)
	}
	if value == nil {
		return k, offset{}, nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return k, offset{}, fmt.Errorf("group: decoding offset commit value: %w", err)
	}
	if v.Version < 0 || v.Version > 4 {
		return k, offset{}, fmt.Errorf("group: unknown offset commit value version %d", v.Version)
	}
	o := offset{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTs: v.CommitTimestamp, expireTs: -1}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		o.expireTs = v.ExpireTimestamp
	}
	return k, o, nil
}

// resetMembership forgets every member and phase, leaving an Empty group.
func (g *group) resetMembership() {
	g.shutdown(kerr.NotCoordinator.Code)
	g.members = make(map[string]*member)
	g.pending = make(map[string]*pendingMember)
	g.static = make(map[string]string)
	g.supported = make(map[string]int)
	g.pendingSync = nil
	g.assigning = false
	g.initialDelay, g.newMemberAdded = false, false
	g.protocol, g.leader = "", ""
	g.setState(stateEmpty)
}

func (g *group) loadMeta(v *kmsg.GroupMetadataValue) {
	g.resetMembership()
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	proto := ""
	if v.Protocol != nil {
		proto = *v.Protocol
	}
	leader := ""
	if v.Leader != nil {
		leader = *v.Leader
	}
	if proto != "" {
		for _, vm := range v.Members {
			if vm.MemberID == "" || g.members[vm.MemberID] != nil {
				continue
			}
			session := time.Duration(vm.SessionTimeoutMillis) * time.Millisecond
			if session <= 0 {
				session = g.c.cfg.MinSessionTimeout
			}
			rebalance := time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond
			if rebalance <= 0 {
				rebalance = session
			}
			m := &member{
				id:           vm.MemberID,
				clientID:     vm.ClientID,
				clientHost:   vm.ClientHost,
				session:      session,
				rebalance:    rebalance,
				protocolType: v.ProtocolType,
				protocols:    []protocol{{name: proto, meta: clone(vm.Subscription)}},
				assignment:   clone(vm.Assignment),
			}
			if vm.InstanceID != nil {
				id := *vm.InstanceID
				if _, dup := g.static[id]; dup {
					continue
				}
				m.instanceID = &id
			}
			g.add(m)
		}
	}
	if len(g.members) > 0 {
		g.protocol = proto
		if g.members[leader] != nil {
			g.leader = leader
		}
		g.state = stateStable
		for _, m := range g.members {
			g.armSession(m)
		}
	} else {
		g.state = stateEmpty
	}
	g.stateSince = g.c.now()
	if v.CurrentStateTimestamp >= 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	g.computeSubscribed()
}
