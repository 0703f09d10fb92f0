// Package stream is weir's typed, fluent stream-processing DSL: Kafka
// Streams' KStream and KTable for Go.
//
//	b := stream.NewBuilder()
//	stream.From(b, "text-input", serde.String(), serde.String()).
//		FlatMapValues(splitWords).
//		GroupBy(word, serde.String(), serde.String()).
//		Count(stream.Named("counts")).
//		ToStream().
//		To("word-counts", serde.String(), serde.Int64())
//
// Every operation is a method, including those that change the key or
// value type (Map, MapValues, GroupBy, Aggregate, Join): Go 1.27's generic
// methods make the chain typed end to end. User functions return errors
// instead of panicking; what happens to a record whose function fails is
// the App's bad-record policy. An App processes different partitions in
// parallel (AppConfig.Workers), so user functions and serdes may run
// concurrently, each partition's records still one at a time and in
// order.
//
// The chain records an untyped graph (internal/topology); an App runs it
// against any Kafka-compatible broker, and streamtest runs it without one.
package stream
