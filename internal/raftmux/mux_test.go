package raftmux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func listen(t *testing.T, opts ...Option) *Mux {
	t.Helper()
	m, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func register(t *testing.T, m *Mux, group string) *Layer {
	t.Helper()
	l, err := m.Register(group)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// echo accepts on l until it is closed and echoes every connection.
func echo(l *Layer) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
}

func dial(t *testing.T, l *Layer, to *Mux) net.Conn {
	t.Helper()
	c, err := l.Dial(raft.ServerAddress(to.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg on c and expects it echoed back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
	_ = c.SetDeadline(time.Time{})
}

// expectClosed asserts the peer closes c: a read ends with EOF or a reset,
// well before the (long) read deadline.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return // io.Copy reports EOF as nil
	}
	t.Fatalf("connection not closed by peer: %v", err)
}

func TestDialAccept(t *testing.T) {
	a := listen(t, WithNodeID("a"))
	b := listen(t, WithNodeID("b"))
	la := register(t, a, "g")
	lb := register(t, b, "g")

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := lb.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ca := dial(t, la, b)
	cb := <-accepted
	if cb == nil {
		t.FailNow()
	}
	defer cb.Close()

	if _, err := io.WriteString(ca, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(cb, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := io.WriteString(cb, "pong"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ca, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}

	type nodes interface {
		LocalNode() string
		RemoteNode() string
	}
	if n := ca.(nodes); n.LocalNode() != "a" || n.RemoteNode() != "b" {
		t.Fatalf("dialer sees %s -> %s", n.LocalNode(), n.RemoteNode())
	}
	if n := cb.(nodes); n.LocalNode() != "b" || n.RemoteNode() != "a" {
		t.Fatalf("acceptor sees %s -> %s", n.LocalNode(), n.RemoteNode())
	}
	if la.Addr().String() != a.Addr().String() || lb.Addr().String() != b.Addr().String() {
		t.Fatal("layer address differs from mux address")
	}
}

func TestUnknownGroupThenRegistered(t *testing.T) {
	a := listen(t)
	b := listen(t)
	la := register(t, a, "late")

	_, err := la.Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second)
	if !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("got %v, want ErrUnknownGroup", err)
	}
	waitFor(t, pollLimit, "rejected conn to be released", func() error {
		if n := b.pendingCount(); n != 0 {
			return errors.New("still pending")
		}
		return nil
	})

	echo(register(t, b, "late"))
	roundTrip(t, dial(t, la, b), "hello")
}

func TestLayerCloseLeavesOtherGroups(t *testing.T) {
	a := listen(t)
	b := listen(t)
	a1, a2 := register(t, a, "g1"), register(t, a, "g2")
	b1, b2 := register(t, b, "g1"), register(t, b, "g2")
	echo(b1)
	echo(b2)
	c1, c2 := dial(t, a1, b), dial(t, a2, b)
	roundTrip(t, c1, "one")
	roundTrip(t, c2, "two")

	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	expectClosed(t, c1)       // the group's inbound connections are closed
	roundTrip(t, c2, "still") // other groups are untouched
	if _, err := a1.Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("dial to closed group: %v", err)
	}

	// The name can be registered again and works.
	echo(register(t, b, "g1"))
	roundTrip(t, dial(t, a1, b), "again")

	// Closing the dialing side's layer closes its outbound connections and
	// makes Dial fail, without affecting the mux.
	c3 := dial(t, a1, b)
	_ = a1.Close()
	if _, err := c3.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on conn of closed layer: %v", err)
	}
	if _, err := a1.Dial(raft.ServerAddress(b.Addr().String()), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("dial on closed layer: %v", err)
	}
	roundTrip(t, c2, "fine")
	if a1.connCount() != 0 {
		t.Fatalf("closed layer still tracks %d conns", a1.connCount())
	}
}

func TestRegisterErrors(t *testing.T) {
	m := listen(t)
	register(t, m, "g")
	if _, err := m.Register("g"); !errors.Is(err, ErrGroupRegistered) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxGroupLen+1), "\xff\xfe"} {
		if _, err := m.Register(bad); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("Register(%q): %v", bad, err)
		}
	}
	if _, err := m.Transport("g", nil); !errors.Is(err, ErrGroupRegistered) {
		t.Fatalf("Transport on duplicate: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("StreamLayer on a duplicate group did not panic")
			}
		}()
		m.StreamLayer("g")
	}()

	if _, err := Listen("127.0.0.1:0", WithNetwork(NewNetwork())); err == nil {
		t.Fatal("WithNetwork without node id accepted")
	}
	if _, err := Listen("127.0.0.1:0", WithNodeID(strings.Repeat("n", MaxNodeIDLen+1))); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("long node id: %v", err)
	}
	if _, err := Listen("0.0.0.0:0"); err == nil {
		t.Fatal("unspecified listen address without advertise accepted")
	}
	m2, err := Listen("0.0.0.0:0", WithAdvertiseAddr("127.0.0.1:7777"))
	if err != nil {
		t.Fatal(err)
	}
	if m2.Addr().String() != "127.0.0.1:7777" {
		t.Fatalf("advertised %s", m2.Addr())
	}
	_ = m2.Close()

	_ = m.Close()
	if _, err := m.Register("h"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Register on closed mux: %v", err)
	}
	sl := m.StreamLayer("h")
	if _, err := sl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on layer of closed mux: %v", err)
	}
}

func TestMuxCloseClosesEverything(t *testing.T) {
	a := listen(t)
	b := listen(t, WithHandshakeTimeout(time.Hour))
	la := register(t, a, "g")
	lb := register(t, b, "g")
	echo(lb)
	c := dial(t, la, b)
	roundTrip(t, c, "x")

	// A connection stuck before its preface must not hold Close up.
	silent, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, pollLimit, "silent conn to be accepted", func() error {
		if b.pendingCount() != 1 {
			return errors.New("not yet")
		}
		return nil
	})

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	expectClosed(t, silent)
	expectClosed(t, c)
	if _, err := lb.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after mux Close: %v", err)
	}
	if _, err := lb.Dial(raft.ServerAddress(a.Addr().String()), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after mux Close: %v", err)
	}
	if _, err := la.Dial(raft.ServerAddress(b.Addr().String()), time.Second); err == nil {
		t.Fatal("dial to a closed mux succeeded")
	}
}

func TestGroupNotAccepting(t *testing.T) {
	a := listen(t)
	b := listen(t, WithHandshakeTimeout(100*time.Millisecond))
	la := register(t, a, "g")
	register(t, b, "g") // nobody calls Accept
	if _, err := la.Dial(raft.ServerAddress(b.Addr().String()), 10*time.Second); !errors.Is(err, ErrGroupUnavailable) {
		t.Fatalf("got %v, want ErrGroupUnavailable", err)
	}
}

func rawPreface(magic string, version byte, groupLen, nodeLen uint16, body string) []byte {
	b := []byte(magic)
	b = append(b, version)
	b = binary.BigEndian.AppendUint16(b, groupLen)
	b = binary.BigEndian.AppendUint16(b, nodeLen)
	return append(b, body...)
}

// Malformed prefaces close only their own connection; the mux keeps serving
// established and new connections.
func TestMalformedPrefaces(t *testing.T) {
	a := listen(t, WithNodeID("a"))
	b := listen(t, WithNodeID("b"), WithHandshakeTimeout(time.Second))
	la := register(t, a, "g")
	echo(register(t, b, "g"))
	good := dial(t, la, b)
	roundTrip(t, good, "before")

	cases := map[string][]byte{
		"http":            []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"kafka request":   {0, 0, 0, 20, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0},
		"wrong magic":     rawPreface("WRMX", Version, 1, 0, "g"),
		"oversized group": append(rawPreface("wrmx", Version, 0xffff, 0, ""), bytes.Repeat([]byte{'g'}, 4096)...),
		"group 256":       rawPreface("wrmx", Version, MaxGroupLen+1, 0, strings.Repeat("g", MaxGroupLen+1)),
		"oversized node":  rawPreface("wrmx", Version, 1, 0x8000, "g"),
		"empty group":     rawPreface("wrmx", Version, 0, 0, ""),
		"bad utf8":        rawPreface("wrmx", Version, 2, 0, "\xff\xfe"),
		"truncated":       rawPreface("wrmx", Version, 5, 0, "gr"),
		"header only":     []byte("wrm"),
		"silent":          nil,
		"zeros":           make([]byte, 64),
	}
	// Cases run in parallel inside one group, so the slow ones (waiting for
	// the handshake timeout) overlap; the group returns when all are done.
	t.Run("cases", func(t *testing.T) {
		for name, payload := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c, err := net.Dial("tcp", b.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write(payload); err != nil {
					t.Fatal(err)
				}
				expectClosed(t, c)
			})
		}

		t.Run("unsupported version", func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", b.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(rawPreface("wrmx", 9, 1, 1, "gx")); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			ak, err := readAck(c)
			if err != nil {
				t.Fatal(err)
			}
			if ak.status != statusBadVersion || ak.version != Version || ak.node != "b" {
				t.Fatalf("ack %+v", ak)
			}
			expectClosed(t, c)
		})
	})

	roundTrip(t, good, "after")
	roundTrip(t, dial(t, la, b), "new")
	waitFor(t, pollLimit, "no connection left in preface state", func() error {
		if n := b.pendingCount(); n != 0 {
			return errors.New("pending connections remain")
		}
		return nil
	})
}

// The same garbage thrown at the muxes of a live Raft cluster does not
// disturb replication.
func TestRaftSurvivesGarbage(t *testing.T) {
	c := newCluster(t, 3)
	c.startGroup("p0")
	want := c.applyN("p0", "before", 10)
	for _, n := range c.nodes {
		for _, payload := range [][]byte{
			[]byte("garbage garbage garbage"),
			rawPreface("wrmx", Version, 0xffff, 0, "p0"),
			rawPreface("wrmx", Version, 2, 0, "p0"[:1]),
			rawPreface("wrmx", Version, 2, 0, "zz"), // unknown group
		} {
			conn, err := net.Dial("tcp", n.mux.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(payload); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
		}
	}
	want = append(want, c.applyN("p0", "after", 10)...)
	c.converged("p0", want)
}
