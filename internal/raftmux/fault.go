package raftmux

import (
	"errors"
	"sync"
	"time"
)

// ErrPartitioned is returned by Dial when the attached Network blocks the
// link between the two nodes in either direction (a TCP handshake needs both).
var ErrPartitioned = errors.New("raftmux: link partitioned by fault network")

// Network is a fault controller for tests. Muxes created with WithNetwork(n)
// and WithNodeID(id) consult it for every connection they dial or accept; the
// node ids are carried in the preface so both ends know who is talking.
//
// Faults are applied where bytes are written, so every mux of a test must
// share one Network. The model is deliberately simple and deterministic:
//
//   - A blocked link (from, to) silently drops every byte the "from" node
//     writes to the "to" node, like a firewall dropping packets: the writer
//     sees success, the reader sees nothing and hashicorp/raft's I/O deadline
//     (NetworkTransportConfig.Timeout) eventually fails the RPC. Once a
//     connection has dropped a write in a direction it keeps dropping in that
//     direction even after Heal, so a reader never sees a stream with a hole
//     in it; raft replaces such connections after their RPC times out.
//   - New connections between two nodes fail at once with ErrPartitioned if
//     either direction is blocked, as a TCP handshake needs both; raft
//     retries with its own backoff.
//   - Blocks are directional, so asymmetric partitions are expressed with a
//     single Block(from, to). Isolate(x) blocks x from every other node both
//     ways, including nodes that join later.
//   - A delayed link delivers each write d later, in order, without slowing
//     the writer (latency, not bandwidth). Data still queued when a link
//     becomes blocked is dropped.
//   - Closing a connection is not subject to faults: the peer sees EOF. This
//     keeps goroutines from piling up in tests and does not affect Raft
//     safety.
//
// Changes apply to established connections at their next write. All methods
// are safe for concurrent use. The zero value is not usable; use NewNetwork.
type Network struct {
	mu       sync.Mutex
	blocked  map[link]struct{}
	isolated map[string]struct{}
	delays   map[link]time.Duration
	conns    map[*conn]struct{}
	dropped  map[link]int64
}

type link struct{ from, to string }

// NewNetwork returns a Network with every link healthy.
func NewNetwork() *Network {
	return &Network{
		blocked:  make(map[link]struct{}),
		isolated: make(map[string]struct{}),
		delays:   make(map[link]time.Duration),
		conns:    make(map[*conn]struct{}),
		dropped:  make(map[link]int64),
	}
}

// Block drops everything from writes to to (one direction only).
func (n *Network) Block(from, to string) {
	n.mu.Lock()
	n.blocked[link{from, to}] = struct{}{}
	n.mu.Unlock()
}

// Unblock removes a Block(from, to). It does not undo Isolate.
func (n *Network) Unblock(from, to string) {
	n.mu.Lock()
	delete(n.blocked, link{from, to})
	n.mu.Unlock()
}

// Partition blocks every link between a node in a and a node in b, both ways.
func (n *Network) Partition(a, b []string) {
	n.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			n.blocked[link{x, y}] = struct{}{}
			n.blocked[link{y, x}] = struct{}{}
		}
	}
	n.mu.Unlock()
}

// Isolate cuts node off from every other node, both ways, until Rejoin or
// Heal.
func (n *Network) Isolate(node string) {
	n.mu.Lock()
	n.isolated[node] = struct{}{}
	n.mu.Unlock()
}

// Rejoin undoes Isolate(node). Blocks set with Block or Partition stay.
func (n *Network) Rejoin(node string) {
	n.mu.Lock()
	delete(n.isolated, node)
	n.mu.Unlock()
}

// Delay delays every write from one node to another by d (one direction).
// d <= 0 removes the delay.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	if d <= 0 {
		delete(n.delays, link{from, to})
	} else {
		n.delays[link{from, to}] = d
	}
	n.mu.Unlock()
}

// Heal removes every block, isolation and delay.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.blocked)
	clear(n.isolated)
	clear(n.delays)
	n.mu.Unlock()
}

// Blocked reports whether bytes from one node to another are being dropped.
func (n *Network) Blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blockedLocked(from, to)
}

func (n *Network) blockedLocked(from, to string) bool {
	if from == to {
		return false
	}
	if _, ok := n.isolated[from]; ok {
		return true
	}
	if _, ok := n.isolated[to]; ok {
		return true
	}
	_, ok := n.blocked[link{from, to}]
	return ok
}

// Dropped returns how many bytes written from one node to another have been
// dropped so far.
func (n *Network) Dropped(from, to string) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped[link{from, to}]
}

// Reset closes every established connection between nodes a and b (in either
// dialing direction), like a TCP reset, without blocking new ones. It returns
// the number of connection ends closed.
func (n *Network) Reset(a, b string) int {
	n.mu.Lock()
	var victims []*conn
	for c := range n.conns {
		if (c.local == a && c.remote == b) || (c.local == b && c.remote == a) {
			victims = append(victims, c)
		}
	}
	n.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
	return len(victims)
}

// linkState returns what a write from one node to another should do now.
func (n *Network) linkState(from, to string) (blocked bool, delay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blockedLocked(from, to), n.delays[link{from, to}]
}

func (n *Network) noteDropped(from, to string, bytes int) {
	n.mu.Lock()
	n.dropped[link{from, to}] += int64(bytes)
	n.mu.Unlock()
}

func (n *Network) register(c *conn) {
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
}

func (n *Network) unregister(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// maxQueued bounds the bytes a faulty connection buffers before Write blocks.
const maxQueued = 8 << 20

// faultWriter sits between a conn's Write and the socket when a Network is
// attached. Every write goes through a FIFO drained by one goroutine so that
// delays add latency without reordering or serialising writers.
type faultWriter struct {
	c *conn

	mu       sync.Mutex
	cond     sync.Cond
	queue    []chunk
	queued   int
	poisoned bool  // a write was dropped; drop everything after it too
	err      error // first socket write error, returned to later writes
	closed   bool
	done     chan struct{}
}

type chunk struct {
	data []byte
	at   time.Time
}

func newFaultWriter(c *conn) *faultWriter {
	w := &faultWriter{c: c, done: make(chan struct{})}
	w.cond.L = &w.mu
	go w.pump()
	return w
}

func (w *faultWriter) write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.closed && w.err == nil && w.queued >= maxQueued {
		w.cond.Wait()
	}
	switch {
	case w.closed:
		return 0, errClosedConn
	case w.err != nil:
		return 0, w.err
	}
	blocked, delay := w.c.net.linkState(w.c.local, w.c.remote)
	if blocked || w.poisoned {
		w.poisoned = true
		w.c.net.noteDropped(w.c.local, w.c.remote, len(p))
		return len(p), nil
	}
	at := time.Now().Add(delay)
	if k := len(w.queue); k > 0 && w.queue[k-1].at.After(at) {
		at = w.queue[k-1].at // never reorder when a delay shrinks
	}
	w.queue = append(w.queue, chunk{data: append([]byte(nil), p...), at: at})
	w.queued += len(p)
	w.cond.Broadcast()
	return len(p), nil
}

func (w *faultWriter) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
		w.queue, w.queued = nil, 0
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

func (w *faultWriter) pump() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if w.closed {
			w.mu.Unlock()
			return
		}
		ch := w.queue[0]
		w.mu.Unlock()

		if wait := time.Until(ch.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-w.done:
				timer.Stop()
				return
			}
		}

		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return
		}
		w.queue[0] = chunk{}
		w.queue = w.queue[1:]
		w.queued -= len(ch.data)
		w.cond.Broadcast()
		blocked, _ := w.c.net.linkState(w.c.local, w.c.remote)
		drop := blocked || w.poisoned
		if drop {
			w.poisoned = true
		}
		w.mu.Unlock()

		if drop {
			w.c.net.noteDropped(w.c.local, w.c.remote, len(ch.data))
			continue
		}
		if _, err := w.c.Conn.Write(ch.data); err != nil {
			w.mu.Lock()
			w.err = err
			w.queue, w.queued = nil, 0
			w.cond.Broadcast()
			w.mu.Unlock()
			_ = w.c.Close()
			return
		}
	}
}
