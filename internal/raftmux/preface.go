package raftmux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Wire format of the connection preface, sent once by the dialing side
// before any Raft RPC:
//
//	offset  size  field
//	0       4     magic "wrmx"
//	4       1     version (currently 1)
//	5       2     group name length, big endian, 1..MaxGroupLen
//	7       2     node id length, big endian, 0..MaxNodeIDLen
//	9       g     group name
//	9+g     n     node id of the dialing mux (may be empty)
//
// The accepting side answers with an acknowledgement:
//
//	0       1     status (statusOK, statusUnknownGroup, ...)
//	1       1     highest version the acceptor speaks
//	2       2     node id length, big endian, 0..MaxNodeIDLen
//	4       n     node id of the accepting mux
//
// Only after a statusOK acknowledgement is the connection handed to
// hashicorp/raft, so neither side ever reads bytes that belong to the other
// protocol. Both messages are read with io.ReadFull on the raw connection
// (no read-ahead buffer), which keeps the hand-off exact.

const (
	// Version is the preface version this package writes and accepts.
	Version = 1
	// MaxGroupLen bounds the length of a group name in bytes.
	MaxGroupLen = 255
	// MaxNodeIDLen bounds the length of a node id in bytes.
	MaxNodeIDLen = 255

	prefaceHeaderLen = 9
	ackHeaderLen     = 4
	// maxPrefaceLen is the largest preface a peer may send.
	maxPrefaceLen = prefaceHeaderLen + MaxGroupLen + MaxNodeIDLen
)

var prefaceMagic = [4]byte{'w', 'r', 'm', 'x'}

// Acknowledgement status codes.
const (
	statusOK           byte = 0
	statusUnknownGroup byte = 1 // no open layer for the group on the acceptor
	statusBadVersion   byte = 2 // acceptor does not speak the dialer's version
	statusUnavailable  byte = 3 // layer registered but not accepting in time, or closing
	statusPartitioned  byte = 4 // fault injection: the Network blocks this pair
)

// Errors returned by the preface decoder; all of them close the connection.
var (
	errBadMagic    = errors.New("raftmux: bad preface magic")
	errBadLength   = errors.New("raftmux: preface length out of range")
	errBadName     = errors.New("raftmux: group name or node id is not valid UTF-8")
	errBadAck      = errors.New("raftmux: malformed acknowledgement")
	errVersionSkew = errors.New("raftmux: unsupported preface version")
)

// preface is the decoded connection preface.
type preface struct {
	version byte
	group   string
	node    string
}

// validName reports whether s is usable as a group name (nonEmpty) or a node
// id: bounded length and valid UTF-8, so it can be logged and compared safely.
func validName(s string, nonEmpty bool, max int) bool {
	if len(s) > max || (nonEmpty && len(s) == 0) {
		return false
	}
	return utf8.ValidString(s)
}

// appendPreface appends the encoded preface for group and node to dst.
// The caller has validated both names.
func appendPreface(dst []byte, group, node string) []byte {
	dst = append(dst, prefaceMagic[:]...)
	dst = append(dst, Version)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(group)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(node)))
	dst = append(dst, group...)
	return append(dst, node...)
}

// readPreface reads exactly one preface from r. It never reads more than
// maxPrefaceLen bytes and never allocates more than that, whatever the peer
// sends. A version other than Version is returned with errVersionSkew (and
// the names decoded) so the acceptor can answer statusBadVersion.
func readPreface(r io.Reader) (preface, error) {
	var hdr [prefaceHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return preface{}, err
	}
	if [4]byte(hdr[:4]) != prefaceMagic {
		return preface{}, errBadMagic
	}
	p := preface{version: hdr[4]}
	gl := int(binary.BigEndian.Uint16(hdr[5:7]))
	nl := int(binary.BigEndian.Uint16(hdr[7:9]))
	if gl == 0 || gl > MaxGroupLen || nl > MaxNodeIDLen {
		return preface{}, fmt.Errorf("%w: group %d, node %d bytes", errBadLength, gl, nl)
	}
	body := make([]byte, gl+nl)
	if _, err := io.ReadFull(r, body); err != nil {
		return preface{}, err
	}
	p.group, p.node = string(body[:gl]), string(body[gl:])
	if !utf8.ValidString(p.group) || !utf8.ValidString(p.node) {
		return preface{}, errBadName
	}
	if p.version != Version {
		return p, errVersionSkew
	}
	return p, nil
}

// ack is the decoded acknowledgement.
type ack struct {
	status  byte
	version byte
	node    string
}

func appendAck(dst []byte, status byte, node string) []byte {
	dst = append(dst, status, Version)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(node)))
	return append(dst, node...)
}

func readAck(r io.Reader) (ack, error) {
	var hdr [ackHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return ack{}, err
	}
	a := ack{status: hdr[0], version: hdr[1]}
	nl := int(binary.BigEndian.Uint16(hdr[2:4]))
	if nl > MaxNodeIDLen {
		return ack{}, errBadAck
	}
	node := make([]byte, nl)
	if _, err := io.ReadFull(r, node); err != nil {
		return ack{}, err
	}
	a.node = string(node)
	if !utf8.ValidString(a.node) {
		return ack{}, errBadAck
	}
	return a, nil
}
