package stream_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"strings"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
)

// Run word count against a Kafka-compatible cluster until interrupted.
// Every process started with the same ApplicationID shares the work.
func ExampleApp() {
	b := stream.NewBuilder()
	stream.From(b, "text-input", serde.String(), serde.String()).
		FlatMapValues(func(_ string, line string) ([]string, error) { return strings.Fields(line), nil }).
		GroupBy(func(_ string, word string) (string, error) { return word, nil }, serde.String(), serde.String()).
		Count(stream.Named("counts")).
		ToStream().
		To("word-counts", serde.String(), serde.Int64())

	app, err := stream.NewApp(b, stream.AppConfig{
		ApplicationID: "wordcount",
		Brokers:       []string{"localhost:9092"},
		StateDir:      "/var/lib/wordcount",
		BadRecords:    stream.DeadLetter("text-input-dlq"),
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Print(app.Describe())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := app.Run(ctx); err != nil { // nil after a clean shutdown
		log.Fatal(err)
	}
}
