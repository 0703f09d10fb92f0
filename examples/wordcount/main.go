// Command wordcount counts words: lines from an input topic, counts per
// word to an output topic (key = word, value = the count as a decimal
// string). The topology is package wordcount (wordcount/wordcount.go).
// With --brokers it runs against any Kafka-compatible cluster; without, it
// starts an embedded weir broker and a sample-data generator, prints counts
// as they change, and stops once they match a plain Go map (check.go).
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/weir-io/weir/examples/internal/demo"
	"github.com/weir-io/weir/examples/wordcount/wordcount"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := demo.Run(ctx, demo.Example{
		Name: "word count", Input: wordcount.Input, Output: wordcount.Output, AppID: "wordcount", Partitions: 3,
		Topology: wordcount.Topology,
		Demo:     check,
	})
	if err != nil {
		log.Fatal(err)
	}
	os.Exit(0)
}
