// Package raftmux runs many hashicorp/raft groups of one broker over a single
// TCP listener.
//
// # What
//
// A broker hosts the controller group plus one Raft group per partition
// replica it holds (DESIGN.md, "Replication"). hashicorp/raft has no notion
// of multi-raft: each raft.Raft wants its own raft.Transport. The
// raft.NetworkTransport is built on a pluggable raft.StreamLayer (a
// net.Listener plus Dial), so this package provides one StreamLayer per group
// on top of one shared listener, the Mux:
//
//	mux, _ := raftmux.Listen("10.0.0.1:9094", raftmux.WithNodeID("1"))
//	trans, _ := mux.Transport("p-orders-0", nil) // *raft.NetworkTransport
//	r, _ := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
//
// Every group of a broker has the same raft.ServerAddress, mux.Addr().
//
// # How connections find their group
//
// Dial opens a TCP connection to the peer's mux and writes a small preface:
// magic "wrmx", a version byte, then the group name and the dialer's node id,
// each length-prefixed and bounded (see preface.go for the layout). The
// peer's acceptor reads it under a deadline, routes the connection to that
// group's Accept queue and answers with a one-byte status plus its own node
// id; only then does Dial return and the connection belongs to raft. A bad
// magic, an out-of-range length, invalid UTF-8 or a peer that stays silent
// past the handshake timeout closes that one connection and nothing else.
//
// A preface for a group with no open layer (not registered yet, or already
// closed) is rejected at once with a status that makes Dial fail with
// ErrUnknownGroup; it is not queued. hashicorp/raft already retries failed
// RPCs (replication backs off exponentially from 10 ms, heartbeats are capped
// at HeartbeatTimeout/2, elections repeat every election timeout), so a group
// registered later on the peer starts working on the next retry. Queueing
// instead would hold sockets and goroutines for groups that may never appear
// and would hide the condition from the dialer. The price is the backoff: a
// leader that has failed for a long time may wait up to about 10 s before
// its next replication attempt to the new replica.
//
// The acknowledgement costs one round trip per new connection; the transport
// pools connections (DefaultMaxPool per peer), so it is paid rarely.
//
// # Why not a port per group
//
// Partitions come and go at runtime; a port per group would need a port
// allocator, a way to publish the port of every (broker, partition) pair in
// metadata, firewall rules per range, and thousands of listeners on a big
// broker. One port per broker keeps raft.ServerAddress equal to the broker's
// replication address, which the controller already knows.
//
// # Known limits (see research/broker_anchors.md §5)
//
//   - Sockets are not shared between groups: each group's NetworkTransport
//     keeps its own pool, so a broker holds about groups × peers × (1 to
//     MaxPool + 1) connections. Stream multiplexing over one connection per
//     peer (yamux-like) or a custom raft.Transport would remove that, at the
//     cost of owning flow control.
//   - hashicorp/raft heartbeats every group separately (about 20 heartbeats a
//     second per leader group at RF=3 and default timeouts, plus ~7
//     goroutines), and there is no hook to share a ticker or coalesce
//     heartbeats across groups (hashicorp/raft#674, #290). Nothing here batches
//     messages of different groups either. Thousands of partitions per
//     broker will be bounded by this, not by the transport.
//   - NetworkTransport pipelines at most MaxRPCsInFlight (default 2) append
//     requests per follower; throughput comes from many concurrent Applies
//     being batched into one AppendEntries (up to MaxAppendEntries).
//
// # Fault injection
//
// A Network, attached with WithNetwork and WithNodeID, lets tests drop or
// delay bytes between chosen pairs of nodes, asymmetrically if wanted,
// isolate a node, reset connections and heal. It acts on the connections the
// mux hands to raft, so it exercises raft's real timeouts and retries. See
// Network for the exact model.
package raftmux
