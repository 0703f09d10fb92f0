// Package wordcount is the topology of examples/wordcount: lines of text
// in, a running count per word out. It is a package of its own so that
// other programs can import it: the example runs it, and `weir bench
// wordcount` measures it (cmd/weir, against bench/streams' goka version).
package wordcount

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
)

// The example's default topics.
const (
	Input  = "text-input"  // lines of text, as string values
	Output = "word-counts" // key = word, value = its count as a decimal string
)

// Store names the count store; its changelog topic is
// <application id>-counts-changelog.
const Store = "counts"

// Topology: lines → words → counts per word, written to output as (word,
// decimal count).
func Topology(input, output string) *stream.Builder {
	b := stream.NewBuilder()
	stream.From(b, input, serde.String(), serde.String()).
		FlatMapValues(func(_, line string) ([]string, error) { return Words(line), nil }).
		GroupBy(func(_, word string) (string, error) { return word, nil }, serde.String(), serde.String()).
		Count(stream.Named(Store)).
		ToStream().
		MapValues(func(_ string, n int64) (string, error) { return strconv.FormatInt(n, 10), nil }).
		To(output, serde.String(), serde.String())
	return b
}

// Words lower-cases a line and splits it on anything not a letter or digit.
func Words(line string) []string {
	return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
