package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxInFlight bounds how many requests of one connection may be decoded
// ahead of their responses. Clients pipeline up to 5 produce requests; a
// little more lets fetches and metadata overlap them.
const maxInFlight = 16

// response is a reply that may not be ready yet. Handlers that wait on a
// fsync, a long poll or a rebalance return one that blocks in await, so the
// connection can read and apply the next request meanwhile. The writer
// awaits replies in request order, so deferred work runs in order too:
// every group request is deferred, which keeps a connection's commits,
// fetches of offsets, heartbeats and leaves in the order they were sent.
// A nil kmsg.Response means "send nothing" (acks=0 produce).
type response interface{ await() kmsg.Response }

type ready struct{ kmsg.Response }

func (r ready) await() kmsg.Response { return r.Response }

type later func() kmsg.Response

func (f later) await() kmsg.Response { return f() }

// hangUp closes the connection, after flushing earlier replies, instead of
// replying: Kafka's answer to an acks=0 produce that failed, which makes
// the client refresh its metadata.
type hangUp struct{}

func (hangUp) await() kmsg.Response { return nil }

// conn serves one client connection. Requests are read and applied in order
// on the read goroutine; responses are written in the same order by the
// write goroutine, which awaits each one.
type conn struct {
	b        *Broker
	nc       net.Conn
	ctx      context.Context
	cancel   context.CancelFunc
	log      *slog.Logger
	clientID string
	pending  chan pendingReply
}

type pendingReply struct {
	correlationID int32
	key           int16
	flexible      bool
	resp          response
}

func (b *Broker) serveConn(nc net.Conn) {
	ctx, cancel := context.WithCancel(b.ctx)
	c := &conn{
		b: b, nc: nc, ctx: ctx, cancel: cancel,
		log:     b.log.With("remote", nc.RemoteAddr().String()),
		pending: make(chan pendingReply, maxInFlight),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	err := c.readLoop()
	// Cancel first: replies still pending (a long poll, a join) give up
	// now rather than hold the connection until they would have finished.
	cancel()
	close(c.pending)
	<-done
	nc.Close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && b.ctx.Err() == nil {
		c.log.Info("closing connection", "client", c.clientID, "err", err)
	}
}

func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		frame, err := readFrame(br, c.b.cfg.MaxRequestBytes, c.frameDone)
		if err != nil {
			return err
		}
		p, err := c.decode(frame)
		if err != nil {
			return err
		}
		if c.frameDone(p.key) {
			putFrame(frame)
		}
		select {
		case c.pending <- p:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
}

// errFrameTooLarge closes a connection whose frame exceeds MaxRequestBytes.
var errFrameTooLarge = errors.New("broker: request frame exceeds max request bytes")

// frameDone reports whether a request of this key is done with its frame
// once decoded and handled, so that another request may be read into it.
// Produce is: a partition without Raft copies the batch into its log
// before the handler returns, and one with Raft proposes a copy (Raft
// keeps what it is given). Every other request may hold on to the frame's
// bytes.
// Reusing produce frames spares the garbage collector a frame's worth of
// allocation per request at high produce rates.
func (c *conn) frameDone(key int16) bool {
	return key == kmsg.Produce.Int16()
}

// frames holds produce frames for reuse (*[]byte). A pool rather than a
// buffer per connection: idle connections keep nothing, and the garbage
// collector empties the pool when produce traffic stops.
var frames sync.Pool

// maxPooledFrame bounds the frames kept for reuse.
const maxPooledFrame = 4 << 20

func putFrame(frame []byte) {
	if cap(frame) <= maxPooledFrame {
		frames.Put(&frame)
	}
}

// pooledCap is the capacity of a new frame of n bytes meant for the pool:
// the power of two at or above n, at least 64 KiB.
func pooledCap(n int32) int {
	return 1 << max(16, bits.Len32(uint32(n-1)))
}

// readFrame reads one size-prefixed frame. A request whose api key
// (the frame's first two bytes) reusable says is done with its frame once
// handled is read into a pooled buffer, which its caller puts back.
func readFrame(r *bufio.Reader, max int32, reusable func(key int16) bool) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > max {
		return nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	pool := false
	if n >= 2 && n <= maxPooledFrame {
		if key, err := r.Peek(2); err == nil {
			pool = reusable(int16(binary.BigEndian.Uint16(key)))
		}
	}
	var frame []byte
	if pool {
		if pooled, _ := frames.Get().(*[]byte); pooled != nil && int(n) <= cap(*pooled) {
			frame = (*pooled)[:n]
		} else {
			// A pooled frame too small is dropped. Capacities are powers
			// of two, so a frame fits the requests of similar size after it.
			frame = make([]byte, n, pooledCap(n))
		}
	} else {
		frame = make([]byte, n)
	}
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, fmt.Errorf("broker: truncated frame: %w", err)
	}
	return frame, nil
}

// errBadRequest closes a connection that sent something undecodable, as
// Kafka does: there is no way to answer a request we could not parse.
var errBadRequest = errors.New("broker: malformed request")

// decode parses the request header and body and runs the handler.
func (c *conn) decode(frame []byte) (pendingReply, error) {
	r := kbin.Reader{Src: frame}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	clientID := r.NullableString()
	if err := r.Complete(); err != nil {
		return pendingReply{}, fmt.Errorf("%w: short header", errBadRequest)
	}
	if clientID != nil {
		c.clientID = *clientID
	}
	p := pendingReply{correlationID: corr, key: key}
	a, ok := lookupAPI(key)
	if !ok {
		return p, fmt.Errorf("%w: unknown api key %d", errBadRequest, key)
	}
	if version < a.min || version > a.max {
		if key == kmsg.ApiVersions.Int16() {
			// KIP-511: answer in v0 with our range so the client retries.
			p.resp = ready{unsupportedAPIVersions()}
			return p, nil
		}
		return p, fmt.Errorf("%w: %s v%d not supported (supported %d-%d)",
			errBadRequest, kmsg.NameForKey(key), version, a.min, a.max)
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
		if r.Complete() != nil {
			return p, fmt.Errorf("%w: bad header tags", errBadRequest)
		}
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return p, fmt.Errorf("%w: %s v%d: %v", errBadRequest, kmsg.NameForKey(key), version, err)
	}
	p.flexible = req.IsFlexible()
	p.resp = c.run(a, req)
	return p, nil
}

// run calls the handler, turning a panic into a closed connection rather
// than a dead broker.
func (c *conn) run(a api, req kmsg.Request) (resp response) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("handler panic", "api", kmsg.NameForKey(req.Key()), "panic", v)
			resp = nil
		}
	}()
	return a.handle(c, req)
}

func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	buf := make([]byte, 0, 4<<10)
	broken := false
	for p := range c.pending {
		if broken {
			continue // drain so the reader never blocks
		}
		if p.resp == nil { // the handler panicked
			broken = true
			c.nc.Close()
			continue
		}
		if _, ok := p.resp.(hangUp); ok {
			bw.Flush()
			broken = true
			c.nc.Close()
			continue
		}
		resp, ok := c.await(p)
		if !ok {
			broken = true
			c.nc.Close()
			continue
		}
		if resp != nil {
			buf = appendResponse(buf[:0], p, resp)
			if _, err := bw.Write(buf); err != nil {
				broken = true
				continue
			}
		}
		// Flush whenever nothing else is queued, even after a reply-less
		// acks=0 produce: an earlier reply may be waiting in the buffer.
		if len(c.pending) == 0 {
			if err := bw.Flush(); err != nil {
				broken = true
			}
		}
	}
	bw.Flush()
}

// await waits for a reply, turning a panic into a closed connection.
func (c *conn) await(p pendingReply) (resp kmsg.Response, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("handler panic", "api", kmsg.NameForKey(p.key), "panic", v)
			ok = false
		}
	}()
	return p.resp.await(), true
}

// appendResponse frames a response: size, correlation id, the flexible
// header's empty tag buffer (never for ApiVersions, whose response header
// is always v0), then the body.
func appendResponse(dst []byte, p pendingReply, resp kmsg.Response) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, p.correlationID)
	if p.flexible && p.key != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

// errCode is a shorthand for a kerr error's wire code; nil is 0.
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
