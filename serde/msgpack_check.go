package serde

import (
	"encoding/binary"
	"fmt"
)

// maxMsgpackDepth bounds container nesting. The msgpack decoder recurses once
// per level, and Go aborts the whole process (it does not panic) when a
// goroutine's stack passes its limit, so a record of a million nested
// one-element arrays must be refused before decoding. Real values nest a few
// levels deep; encoding/json stops at 10000 for the same reason.
const maxMsgpackDepth = 1000

// checkMsgpack verifies that b holds exactly one well-formed MessagePack value
// whose declared lengths fit in b, without allocating per element.
//
// It exists because github.com/vmihailenco/msgpack/v5 sizes maps and slices from
// the length prefix before reading them: five bytes declaring a map of 2³²-1
// entries make it allocate gigabytes. Each element takes at least one byte, so
// once every declared count fits in the remaining input, the decoder's
// allocations are bounded by the input size.
func checkMsgpack(b []byte) error {
	// remaining[i] counts the items still expected at nesting level i; level 0
	// is the single top-level value. pending is their sum.
	remaining := make([]int, 1, 8)
	remaining[0] = 1
	pending := 1
	pos := 0
	for len(remaining) > 0 {
		top := len(remaining) - 1
		if remaining[top] == 0 {
			remaining = remaining[:top]
			continue
		}
		remaining[top]--
		pending--

		size, children, err := msgpackItem(b[pos:])
		if err != nil {
			return fmt.Errorf("at byte %d: %w", pos, err)
		}
		pos += size
		if children == 0 {
			continue
		}
		if len(remaining) > maxMsgpackDepth {
			return fmt.Errorf("at byte %d: nested deeper than %d levels", pos, maxMsgpackDepth)
		}
		pending += children
		if pending > len(b)-pos {
			return fmt.Errorf("at byte %d: declares %d more elements but only %d bytes remain", pos, pending, len(b)-pos)
		}
		remaining = append(remaining, children)
	}
	if pos != len(b) {
		return fmt.Errorf("%d trailing bytes", len(b)-pos)
	}
	return nil
}

// msgpackItem reads the item that starts at b[0]: the bytes it occupies itself
// (code, length fields, payload) and how many items nested in it follow it.
func msgpackItem(b []byte) (size, children int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("truncated: value expected")
	}
	c := b[0]
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return 1, 0, nil
	case c <= 0x8f: // fixmap
		return 1, 2 * int(c&0x0f), nil
	case c <= 0x9f: // fixarray
		return 1, int(c & 0x0f), nil
	case c <= 0xbf: // fixstr
		return sized(b, 1, int(c&0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 1, 0, nil
	case 0xc1:
		return 0, 0, fmt.Errorf("reserved code 0xc1")
	case 0xcc, 0xd0: // uint8, int8
		return sized(b, 1, 1)
	case 0xcd, 0xd1: // uint16, int16
		return sized(b, 1, 2)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return sized(b, 1, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return sized(b, 1, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
		return sized(b, 1, 1+1<<(c-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		return lengthPrefixed(b, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return lengthPrefixed(b, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return lengthPrefixed(b, 4, 0)
	case 0xc7: // ext8: length, type byte, data
		return lengthPrefixed(b, 1, 1)
	case 0xc8:
		return lengthPrefixed(b, 2, 1)
	case 0xc9:
		return lengthPrefixed(b, 4, 1)
	case 0xdc, 0xdd: // array16, array32
		n, err := count(b, 2<<(c-0xdc))
		return 1 + 2<<(c-0xdc), n, err
	default: // 0xde, 0xdf: map16, map32
		n, err := count(b, 2<<(c-0xde))
		return 1 + 2<<(c-0xde), 2 * n, err
	}
}

// sized accounts for an item of header bytes followed by n payload bytes.
func sized(b []byte, header, n int) (int, int, error) {
	if len(b) < header+n {
		return 0, 0, fmt.Errorf("truncated: code 0x%02x needs %d bytes, %d remain", b[0], header+n, len(b))
	}
	return header + n, 0, nil
}

// lengthPrefixed accounts for code, a width-byte big-endian length, extra fixed
// bytes (the ext type) and the payload of that length.
func lengthPrefixed(b []byte, width, extra int) (int, int, error) {
	n, err := count(b, width)
	if err != nil {
		return 0, 0, err
	}
	return sized(b, 1+width+extra, n)
}

// count reads the width-byte big-endian count that follows the code byte.
func count(b []byte, width int) (int, error) {
	if len(b) < 1+width {
		return 0, fmt.Errorf("truncated: code 0x%02x needs a %d-byte length", b[0], width)
	}
	switch width {
	case 1:
		return int(b[1]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b[1:])), nil
	default:
		return int(binary.BigEndian.Uint32(b[1:])), nil
	}
}
