// Command wordcount counts words: lines from an input topic, counts per
// word to an output topic (key = word, value = the count as a decimal
// string). With --brokers it runs against any Kafka-compatible cluster;
// without, it starts an embedded weir broker and a sample-data generator,
// prints counts as they change, and stops once they match a plain Go map.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
)

// topology: lines → words → counts per word.
func topology(input, output string) *stream.Builder {
	b := stream.NewBuilder()
	stream.From(b, input, serde.String(), serde.String()).
		FlatMapValues(func(_, line string) ([]string, error) { return words(line), nil }).
		GroupBy(func(_, word string) (string, error) { return word, nil }, serde.String(), serde.String()).
		Count(stream.Named("counts")).
		ToStream().
		MapValues(func(_ string, n int64) (string, error) { return strconv.FormatInt(n, 10), nil }).
		To(output, serde.String(), serde.String())
	return b
}

// words lower-cases a line and splits it on anything not a letter or digit.
func words(line string) []string {
	return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
	os.Exit(0)
}
