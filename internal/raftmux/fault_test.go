package raftmux

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// faultNodes is a few muxes on one Network, each with a layer "g".
type faultNodes struct {
	net    *Network
	muxes  map[string]*Mux
	layers map[string]*Layer
}

func newFaultNodes(t *testing.T, ids ...string) *faultNodes {
	t.Helper()
	f := &faultNodes{net: NewNetwork(), muxes: map[string]*Mux{}, layers: map[string]*Layer{}}
	for _, id := range ids {
		m := listen(t, WithNodeID(id), WithNetwork(f.net))
		f.muxes[id] = m
		f.layers[id] = register(t, m, "g")
	}
	return f
}

// connect dials from -> to and returns both ends.
func (f *faultNodes) connect(t *testing.T, from, to string) (dialed, accepted net.Conn) {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := f.layers[to].Accept()
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	dialed = dial(t, f.layers[from], f.muxes[to])
	accepted = <-ch
	if accepted == nil {
		t.FailNow()
	}
	t.Cleanup(func() { _ = accepted.Close() })
	return dialed, accepted
}

func (f *faultNodes) dialErr(from, to string) error {
	c, err := f.layers[from].Dial(raft.ServerAddress(f.muxes[to].Addr().String()), 5*time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if n, err := io.WriteString(c, s); err != nil || n != len(s) {
		t.Fatalf("write %q: %d, %v", s, n, err)
	}
}

func read(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return string(buf)
}

// expectNothing asserts no byte arrives on c within d. Used only to show
// dropped data stays dropped; d is short because the bytes were already
// counted as dropped, so they cannot arrive later.
func expectNothing(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v; want nothing", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func TestNetworkBlockIsAsymmetric(t *testing.T) {
	f := newFaultNodes(t, "a", "b")
	ca, cb := f.connect(t, "a", "b")

	f.net.Block("a", "b")
	if !f.net.Blocked("a", "b") || f.net.Blocked("b", "a") {
		t.Fatal("Blocked does not reflect a one-way block")
	}
	write(t, ca, "lost") // the writer sees success, like a dropped packet
	if d := f.net.Dropped("a", "b"); d != 4 {
		t.Fatalf("dropped %d bytes, want 4", d)
	}
	write(t, cb, "back") // the other direction still flows
	if got := read(t, ca, 4); got != "back" {
		t.Fatalf("got %q", got)
	}
	if d := f.net.Dropped("b", "a"); d != 0 {
		t.Fatalf("dropped %d bytes b->a", d)
	}

	// New connections need both directions.
	if err := f.dialErr("a", "b"); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial a->b: %v", err)
	}
	if err := f.dialErr("b", "a"); !errors.Is(err, ErrPartitioned) {
		t.Fatalf("dial b->a: %v", err)
	}

	// After healing, the connection that lost bytes keeps dropping in that
	// direction (no stream with a hole), new connections work.
	f.net.Unblock("a", "b")
	write(t, ca, "more")
	if d := f.net.Dropped("a", "b"); d != 8 {
		t.Fatalf("dropped %d bytes, want 8", d)
	}
	expectNothing(t, cb, 50*time.Millisecond)
	ca2, cb2 := f.connect(t, "a", "b")
	write(t, ca2, "fresh")
	if got := read(t, cb2, 5); got != "fresh" {
		t.Fatalf("got %q", got)
	}
}

func TestNetworkIsolateAndPartition(t *testing.T) {
	f := newFaultNodes(t, "a", "b", "c")
	f.net.Isolate("a")
	for _, p := range [][2]string{{"a", "b"}, {"b", "a"}, {"a", "c"}, {"c", "a"}} {
		if err := f.dialErr(p[0], p[1]); !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial %s->%s with a isolated: %v", p[0], p[1], err)
		}
	}
	cb, cc := f.connect(t, "b", "c")
	write(t, cb, "bc")
	if got := read(t, cc, 2); got != "bc" {
		t.Fatalf("got %q", got)
	}
	f.net.Rejoin("a")
	f.connect(t, "a", "b")

	f.net.Partition([]string{"a"}, []string{"b", "c"})
	for _, p := range [][2]string{{"a", "b"}, {"c", "a"}} {
		if err := f.dialErr(p[0], p[1]); !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial %s->%s across partition: %v", p[0], p[1], err)
		}
	}
	f.connect(t, "c", "b")
	f.net.Heal()
	f.connect(t, "c", "a")
	f.connect(t, "a", "b")
}

func TestNetworkDelay(t *testing.T) {
	f := newFaultNodes(t, "a", "b")
	ca, cb := f.connect(t, "a", "b")

	const d = 150 * time.Millisecond
	f.net.Delay("a", "b", d)
	start := time.Now()
	write(t, ca, "1")
	write(t, ca, "2")
	write(t, ca, "3")
	if got := read(t, cb, 3); got != "123" {
		t.Fatalf("got %q", got)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("delayed data arrived after %s, want >= %s", el, d)
	}

	// Removing the delay never lets later writes overtake queued ones.
	f.net.Delay("a", "b", d)
	write(t, ca, "x")
	f.net.Delay("a", "b", 0)
	write(t, ca, "y")
	if got := read(t, cb, 2); got != "xy" {
		t.Fatalf("got %q, want xy", got)
	}

	// Data still queued when the link is blocked is dropped, not delivered.
	f.net.Delay("a", "b", d)
	write(t, ca, "zz")
	f.net.Block("a", "b")
	waitFor(t, pollLimit, "queued bytes to be dropped", func() error {
		if f.net.Dropped("a", "b") != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	expectNothing(t, cb, 20*time.Millisecond)
}

func TestNetworkReset(t *testing.T) {
	f := newFaultNodes(t, "a", "b")
	ca, cb := f.connect(t, "a", "b")
	cb2, ca2 := f.connect(t, "b", "a")
	if n := f.net.Reset("b", "a"); n != 4 {
		t.Fatalf("reset %d connection ends, want 4", n)
	}
	for _, c := range []net.Conn{ca, cb, ca2, cb2} {
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after reset: %v", err)
		}
	}
	// Reset does not block: reconnecting works.
	f.connect(t, "a", "b")
}
