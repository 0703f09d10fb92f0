package raftmux

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Layer is the raft.StreamLayer of one group on a Mux: Accept yields the
// connections whose preface names the group, Dial connects to a peer mux
// and announces the group. Closing it stops Accept and closes the group's
// connections without touching the mux or other groups.
type Layer struct {
	m     *Mux
	group string

	acceptCh chan *pendingConn
	done     chan struct{}
	ctx      context.Context // cancelled on Close; aborts dials in flight
	cancel   context.CancelFunc

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

var _ raft.StreamLayer = (*Layer)(nil)

// pendingConn is an accepted connection whose preface named this group,
// waiting for Accept to acknowledge it.
type pendingConn struct {
	raw  net.Conn
	node string
}

func newLayer(m *Mux, group string) *Layer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Layer{
		m:        m,
		group:    group,
		acceptCh: make(chan *pendingConn),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		conns:    make(map[*conn]struct{}),
	}
}

// Group returns the group name.
func (l *Layer) Group() string { return l.group }

// Addr is the mux's advertised address (net.Listener).
func (l *Layer) Addr() net.Addr { return l.m.addr }

// Accept returns the next connection for this group, after acknowledging its
// preface (net.Listener). It fails with net.ErrClosed once the layer or the
// mux is closed.
func (l *Layer) Accept() (net.Conn, error) {
	for {
		select {
		case pc := <-l.acceptCh:
			c, err := l.adopt(pc.raw, pc.node)
			if err != nil {
				l.m.reject(pc.raw, statusUnknownGroup)
				continue
			}
			_ = pc.raw.SetWriteDeadline(time.Now().Add(l.m.opts.handshakeTimeout))
			if _, err := pc.raw.Write(appendAck(nil, statusOK, l.m.opts.nodeID)); err != nil {
				_ = c.Close()
				continue
			}
			_ = pc.raw.SetWriteDeadline(time.Time{})
			return c, nil
		case <-l.done:
			return nil, l.closedErr("accept")
		}
	}
}

func (l *Layer) closedErr(op string) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: l.m.addr, Err: net.ErrClosed}
}

// Dial connects to the mux at address, sends the preface for this group and
// waits for the peer's acknowledgement (raft.StreamLayer). timeout bounds the
// whole exchange. Failures are typed: ErrUnknownGroup, ErrGroupUnavailable,
// ErrVersion, ErrPartitioned, or the network error.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	select {
	case <-l.done:
		return nil, l.closedErr("dial")
	default:
	}
	hs := l.m.opts.handshakeTimeout
	if timeout > 0 && timeout < hs {
		hs = timeout
	}
	ctx, cancel := context.WithTimeout(l.ctx, hs)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Conn, error) {
		_ = raw.Close()
		return nil, fmt.Errorf("raftmux: dial %s group %q: %w", address, l.group, err)
	}
	// Close the socket if the layer closes or the deadline passes mid-exchange.
	dl, _ := ctx.Deadline()
	_ = raw.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := raw.Write(appendPreface(nil, l.group, l.m.opts.nodeID)); err != nil {
		return fail(err)
	}
	a, err := readAck(raw)
	if err != nil {
		return fail(err)
	}
	switch a.status {
	case statusOK:
	case statusUnknownGroup:
		return fail(ErrUnknownGroup)
	case statusUnavailable:
		return fail(ErrGroupUnavailable)
	case statusPartitioned:
		return fail(ErrPartitioned)
	case statusBadVersion:
		return fail(fmt.Errorf("%w: we speak %d, peer %d", ErrVersion, Version, a.version))
	default:
		return fail(fmt.Errorf("%w: status %d", errBadAck, a.status))
	}
	if !stop() {
		return fail(context.Cause(ctx))
	}
	_ = raw.SetDeadline(time.Time{})
	if n := l.m.opts.network; n != nil {
		self := l.m.opts.nodeID
		if n.Blocked(self, a.node) || n.Blocked(a.node, self) {
			return fail(ErrPartitioned)
		}
	}
	c, err := l.adopt(raw, a.node)
	if err != nil {
		return fail(err)
	}
	return c, nil
}

// adopt wraps a handshaken socket and tracks it until it is closed.
func (l *Layer) adopt(raw net.Conn, remote string) (*conn, error) {
	c := &conn{Conn: raw, layer: l, local: l.m.opts.nodeID, remote: remote, net: l.m.opts.network}
	if c.net != nil {
		// Fully build c before it is published: Close may run from another
		// goroutine (Layer.Close, Network.Reset) as soon as it is tracked,
		// and must then undo both registrations.
		c.fw = newFaultWriter(c)
		c.net.register(c)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if c.fw != nil {
			c.fw.close()
			c.net.unregister(c)
		}
		return nil, net.ErrClosed
	}
	if !c.closed.Load() { // Network.Reset may already have closed it
		l.conns[c] = struct{}{}
	}
	l.mu.Unlock()
	return c, nil
}

func (l *Layer) forget(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// closeLocal marks the layer closed and returns its connections.
func (l *Layer) closeLocal() []*conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.done)
	l.cancel()
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	return conns
}

// Close unregisters the group from the mux, stops Accept and closes every
// connection of the group, inbound and outbound (net.Listener). Peers that
// dial the group afterwards get ErrUnknownGroup until it is registered again.
// It is idempotent and never closes the mux.
func (l *Layer) Close() error {
	l.m.mu.Lock()
	if l.m.groups[l.group] == l {
		delete(l.m.groups, l.group)
	}
	l.m.mu.Unlock()
	for _, c := range l.closeLocal() {
		_ = c.Close()
	}
	return nil
}
