package raftmux

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPrefaceRoundTrip(t *testing.T) {
	for _, tc := range []struct{ group, node string }{
		{"controller", "1"},
		{"p0", ""},
		{"__consumer_offsets-49", "broker-7"},
		{"topic.ünïcode-3", "nœud"},
		{strings.Repeat("g", MaxGroupLen), strings.Repeat("n", MaxNodeIDLen)},
	} {
		enc := appendPreface(nil, tc.group, tc.node)
		r := bytes.NewReader(append(enc, "trailing raft bytes"...))
		p, err := readPreface(r)
		if err != nil {
			t.Fatalf("%q/%q: %v", tc.group, tc.node, err)
		}
		if p.group != tc.group || p.node != tc.node || p.version != Version {
			t.Fatalf("decoded %+v", p)
		}
		if r.Len() != len("trailing raft bytes") {
			t.Fatalf("decoder consumed %d bytes past the preface", len("trailing raft bytes")-r.Len())
		}
	}

	enc := appendAck(nil, statusUnknownGroup, "n9")
	a, err := readAck(bytes.NewReader(enc))
	if err != nil || a != (ack{status: statusUnknownGroup, version: Version, node: "n9"}) {
		t.Fatalf("ack %+v, %v", a, err)
	}
}

func TestPrefaceRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":      {nil, io.EOF},
		"short":      {[]byte("wrmx\x01\x00"), io.ErrUnexpectedEOF},
		"magic":      {rawPreface("xrmx", Version, 1, 0, "g"), errBadMagic},
		"zero group": {rawPreface("wrmx", Version, 0, 0, ""), errBadLength},
		"long group": {rawPreface("wrmx", Version, MaxGroupLen+1, 0, ""), errBadLength},
		"long node":  {rawPreface("wrmx", Version, 1, MaxNodeIDLen+1, "g"), errBadLength},
		"body short": {rawPreface("wrmx", Version, 3, 3, "abc"), io.ErrUnexpectedEOF},
		"utf8":       {rawPreface("wrmx", Version, 1, 1, "g\xff"), errBadName},
		"version":    {rawPreface("wrmx", 2, 1, 0, "g"), errVersionSkew},
	} {
		if _, err := readPreface(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

// FuzzReadPreface: the decoder never panics, never reads past the preface or
// beyond maxPrefaceLen, and whatever it accepts re-encodes to the bytes it
// consumed.
func FuzzReadPreface(f *testing.F) {
	f.Add(appendPreface(nil, "controller", "1"))
	f.Add(appendPreface(nil, "p0", ""))
	f.Add(rawPreface("wrmx", Version, 0xffff, 0xffff, "x"))
	f.Add(rawPreface("wrmx", 7, 1, 1, "ab"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		p, err := readPreface(r)
		consumed := len(data) - r.Len()
		if consumed > maxPrefaceLen {
			t.Fatalf("consumed %d bytes, limit %d", consumed, maxPrefaceLen)
		}
		if err != nil && !errors.Is(err, errVersionSkew) {
			return
		}
		if !validName(p.group, true, MaxGroupLen) || !validName(p.node, false, MaxNodeIDLen) {
			t.Fatalf("accepted invalid names %q/%q", p.group, p.node)
		}
		enc := appendPreface(nil, p.group, p.node)
		enc[4] = p.version
		if !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoded %x, consumed %x", enc, data[:consumed])
		}
	})
}

// FuzzReadAck: same properties for the acknowledgement.
func FuzzReadAck(f *testing.F) {
	f.Add(appendAck(nil, statusOK, "n1"))
	f.Add([]byte{0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		a, err := readAck(r)
		if err != nil {
			return
		}
		consumed := len(data) - r.Len()
		enc := appendAck(nil, a.status, a.node)
		enc[1] = a.version
		if !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoded %x, consumed %x", enc, data[:consumed])
		}
	})
}
