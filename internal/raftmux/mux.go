package raftmux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Defaults.
const (
	// DefaultHandshakeTimeout bounds how long an accepted connection may take
	// to send its preface, and how long a dialer waits for the answer.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxPool is the NetworkTransport connection pool size per peer
	// used by Mux.Transport. A follower needs one conn for heartbeats and one
	// for replication (the pipeline takes its own); 2 idle conns cover that
	// without multiplying sockets by the number of groups.
	DefaultMaxPool = 2
	// DefaultTimeout is the NetworkTransport I/O deadline used by
	// Mux.Transport. InstallSnapshot scales it with the snapshot size.
	DefaultTimeout = 10 * time.Second
)

// Errors.
var (
	// ErrUnknownGroup is returned by Dial when the peer mux has no open layer
	// for the group. hashicorp/raft treats it like any failed RPC and retries
	// with backoff, so a group registered later on the peer starts working on
	// the next retry.
	ErrUnknownGroup = errors.New("raftmux: group not registered on peer")
	// ErrGroupUnavailable is returned by Dial when the peer has the group
	// registered but nobody accepted the connection within the handshake
	// timeout (no transport built on the layer yet), or it was closing.
	ErrGroupUnavailable = errors.New("raftmux: group not accepting on peer")
	// ErrVersion is returned by Dial when the peer does not speak Version.
	ErrVersion = errors.New("raftmux: peer speaks another preface version")
	// ErrGroupRegistered is returned by Register for a group that already has
	// an open layer on this mux.
	ErrGroupRegistered = errors.New("raftmux: group already registered")
	// ErrInvalidName is returned for an empty, overlong or non-UTF-8 group
	// name or node id.
	ErrInvalidName = errors.New("raftmux: invalid group name or node id")
)

// Option configures a Mux.
type Option func(*options)

type options struct {
	nodeID           string
	network          *Network
	logger           hclog.Logger
	handshakeTimeout time.Duration
	advertise        string
}

// WithNodeID sets the id this mux announces in its prefaces and
// acknowledgements (typically the broker id). Required with WithNetwork.
func WithNodeID(id string) Option { return func(o *options) { o.nodeID = id } }

// WithNetwork routes every connection of the mux through a fault Network.
// For tests only.
func WithNetwork(n *Network) Option { return func(o *options) { o.network = n } }

// WithLogger sets the logger of the mux; Transport names a sub-logger per
// group from it. The default discards everything.
func WithLogger(l hclog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHandshakeTimeout overrides DefaultHandshakeTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) { o.handshakeTimeout = d }
}

// WithAdvertiseAddr sets the host:port peers should dial, when the listen
// address is not reachable as is (for example 0.0.0.0:9093).
func WithAdvertiseAddr(addr string) Option { return func(o *options) { o.advertise = addr } }

// Mux is one TCP listener shared by many Raft groups. Each group gets a
// raft.StreamLayer from Register (or StreamLayer); connections are routed to
// the group named in their preface. Its raft.ServerAddress is Addr().String(),
// the same for every group.
type Mux struct {
	ln     net.Listener
	addr   net.Addr
	opts   options
	logger hclog.Logger

	mu      sync.Mutex
	groups  map[string]*Layer
	pending map[net.Conn]struct{} // accepted, preface not yet routed
	closed  bool

	done chan struct{}
	wg   sync.WaitGroup
}

// Listen opens the TCP listener at addr (host:port; port 0 picks one) and
// starts the acceptor.
func Listen(addr string, opts ...Option) (*Mux, error) {
	o := options{handshakeTimeout: DefaultHandshakeTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = hclog.NewNullLogger()
	}
	if o.handshakeTimeout <= 0 {
		o.handshakeTimeout = DefaultHandshakeTimeout
	}
	if !validName(o.nodeID, false, MaxNodeIDLen) {
		return nil, fmt.Errorf("%w: node id %q", ErrInvalidName, o.nodeID)
	}
	if o.network != nil && o.nodeID == "" {
		return nil, errors.New("raftmux: WithNetwork needs WithNodeID")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	adv := ln.Addr()
	if o.advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", o.advertise)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("raftmux: advertise address: %w", err)
		}
		adv = a
	}
	if ta, ok := adv.(*net.TCPAddr); !ok || ta.IP == nil || ta.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("raftmux: %s is not an address peers can dial; use WithAdvertiseAddr", adv)
	}
	m := &Mux{
		ln:      ln,
		addr:    adv,
		opts:    o,
		logger:  o.logger,
		groups:  make(map[string]*Layer),
		pending: make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// Addr is the address peers dial, i.e. this broker's raft.ServerAddress for
// every group.
func (m *Mux) Addr() net.Addr { return m.addr }

// NodeID returns the id given with WithNodeID.
func (m *Mux) NodeID() string { return m.opts.nodeID }

// Register opens the layer of a group. A group can be registered again after
// its previous layer was closed, but not while it is open.
func (m *Mux) Register(group string) (*Layer, error) {
	if !validName(group, true, MaxGroupLen) {
		return nil, fmt.Errorf("%w: group %q", ErrInvalidName, group)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, net.ErrClosed
	}
	if _, ok := m.groups[group]; ok {
		return nil, fmt.Errorf("%w: %q", ErrGroupRegistered, group)
	}
	l := newLayer(m, group)
	m.groups[group] = l
	return l, nil
}

// StreamLayer is Register for callers that want the raft interface directly.
// It panics on an invalid or already registered group name (both are
// programming errors: two Raft instances of one group on one broker must
// never share a listener). On a closed mux it returns a closed layer, whose
// Accept and Dial fail with net.ErrClosed.
func (m *Mux) StreamLayer(group string) raft.StreamLayer {
	l, err := m.Register(group)
	if errors.Is(err, net.ErrClosed) {
		l = newLayer(m, group)
		l.closeLocal()
		return l
	}
	if err != nil {
		panic(err)
	}
	return l
}

// Transport registers group and builds a raft.NetworkTransport on its layer.
// cfg may be nil; its Stream field is ignored. Zero MaxPool, Timeout and
// Logger are replaced by DefaultMaxPool, DefaultTimeout and a logger named
// after the group derived from the mux logger (which discards by default).
// Closing the transport closes the layer.
func (m *Mux) Transport(group string, cfg *raft.NetworkTransportConfig) (*raft.NetworkTransport, error) {
	l, err := m.Register(group)
	if err != nil {
		return nil, err
	}
	var c raft.NetworkTransportConfig
	if cfg != nil {
		c = *cfg
	}
	c.Stream = l
	if c.MaxPool <= 0 {
		c.MaxPool = DefaultMaxPool
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = m.logger.Named(group)
	}
	return raft.NewNetworkTransportWithConfig(&c), nil
}

// Close stops the listener, closes every layer and every connection, and
// waits for the mux's goroutines. It is idempotent.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	layers := make([]*Layer, 0, len(m.groups))
	for _, l := range m.groups {
		layers = append(layers, l)
	}
	pending := make([]net.Conn, 0, len(m.pending))
	for c := range m.pending {
		pending = append(pending, c)
	}
	m.mu.Unlock()

	err := m.ln.Close()
	for _, l := range layers {
		_ = l.Close()
	}
	for _, c := range pending {
		_ = c.Close()
	}
	m.wg.Wait()
	return err
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Resource exhaustion (EMFILE and the like): back off and retry.
			delay = min(max(2*delay, baseDelay), maxDelay)
			m.logger.Warn("accept failed", "error", err, "retry-in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-m.done:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		if !m.trackPending(c) {
			_ = c.Close()
			return
		}
		m.wg.Add(1)
		go m.handshake(c)
	}
}

func (m *Mux) trackPending(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.pending[c] = struct{}{}
	return true
}

func (m *Mux) untrackPending(c net.Conn) {
	m.mu.Lock()
	delete(m.pending, c)
	m.mu.Unlock()
}

// reject answers a preface with a failure status (best effort) and closes.
func (m *Mux) reject(c net.Conn, status byte) {
	_ = c.SetWriteDeadline(time.Now().Add(m.opts.handshakeTimeout))
	_, _ = c.Write(appendAck(nil, status, m.opts.nodeID))
	_ = c.Close()
}

// handshake reads the preface of an accepted connection and hands it to the
// group's Accept, or closes it. Malformed input only ever costs this one
// connection: the read is bounded in time (handshake timeout) and size
// (maxPrefaceLen).
func (m *Mux) handshake(c net.Conn) {
	defer m.wg.Done()
	defer m.untrackPending(c)
	_ = c.SetReadDeadline(time.Now().Add(m.opts.handshakeTimeout))
	p, err := readPreface(c)
	if err != nil {
		if errors.Is(err, errVersionSkew) {
			m.logger.Debug("rejecting preface version", "remote", c.RemoteAddr(), "version", p.version)
			m.reject(c, statusBadVersion)
			return
		}
		if !errors.Is(err, io.EOF) {
			m.logger.Debug("bad preface", "remote", c.RemoteAddr(), "error", err)
		}
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})

	if n := m.opts.network; n != nil && (n.Blocked(p.node, m.opts.nodeID) || n.Blocked(m.opts.nodeID, p.node)) {
		m.reject(c, statusPartitioned)
		return
	}

	m.mu.Lock()
	l := m.groups[p.group]
	m.mu.Unlock()
	if l == nil {
		m.logger.Debug("preface for unknown group", "remote", c.RemoteAddr(), "group", p.group)
		m.reject(c, statusUnknownGroup)
		return
	}

	// Hand over to Layer.Accept, which writes the OK acknowledgement. Wait at
	// most the handshake timeout for someone to call Accept.
	pc := &pendingConn{raw: c, node: p.node}
	t := time.NewTimer(m.opts.handshakeTimeout)
	defer t.Stop()
	select {
	case l.acceptCh <- pc:
	case <-l.done:
		m.reject(c, statusUnknownGroup)
	case <-t.C:
		m.logger.Warn("group not accepting", "group", p.group)
		m.reject(c, statusUnavailable)
	case <-m.done:
		_ = c.Close()
	}
}
