package raftmux

import (
	"net"
	"sync"
	"sync/atomic"
)

// errClosedConn is returned by writes on a closed conn; it matches
// errors.Is(err, net.ErrClosed) like a closed *net.TCPConn.
var errClosedConn = net.ErrClosed

// conn is what the mux hands to hashicorp/raft: a connection whose preface
// exchange is complete, tracked by its layer so that closing the layer (or the
// mux) closes it, and optionally routed through a fault Network.
type conn struct {
	net.Conn
	layer  *Layer
	local  string // node id of this mux
	remote string // node id of the peer mux, from the preface or the ack
	net    *Network
	fw     *faultWriter // nil without a Network

	closeOnce sync.Once
	closed    atomic.Bool // set before forget, see Layer.adopt
	closeErr  error
}

func (c *conn) Write(p []byte) (int, error) {
	if c.fw != nil {
		return c.fw.write(p)
	}
	return c.Conn.Write(p)
}

// Close closes the socket and forgets the conn. It is idempotent.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.fw != nil {
			c.fw.close()
		}
		if c.net != nil {
			c.net.unregister(c)
		}
		c.layer.forget(c)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// LocalNode and RemoteNode expose the node ids at both ends (empty when the
// muxes were not given ids). Useful in tests and logs via a type assertion
// on the net.Conn returned by Dial or Accept.
func (c *conn) LocalNode() string  { return c.local }
func (c *conn) RemoteNode() string { return c.remote }
