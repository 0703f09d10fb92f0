// Package interop holds weir's client interoperability suite: tests that
// drive an embedded broker (broker/brokertest) with real, unmodified Kafka
// clients and assert exact results.
//
// The suite covers, each against its own in-process broker:
//
//   - github.com/IBM/sarama, at Version V2_0_0_0 (what goka pins) and at
//     sarama.MaxVersion (clamped per request to the broker's advertised
//     range): sync, async (every compression codec) and idempotent
//     producers, the partition consumer, consumer groups with two members,
//     and ClusterAdmin.
//   - github.com/segmentio/kafka-go: Writer, Reader with and without a
//     group, and the low-level Conn (Dial, CreateTopics, ReadPartitions).
//   - kcat (librdkafka): metadata, keyed and compressed produce with
//     headers, consume, group consume, offsets for times.
//   - Python confluent-kafka (librdkafka) and kafka-python, through the
//     scripts in testdata/ that print JSON for the Go tests to check.
//   - Transactions (txn_test.go): confluent-kafka's consume-transform-
//     produce loop with an abort and fencing, sarama's transactional
//     producer and read_committed consumer, kcat read_committed, and
//     kafka-python's transactions when its version has them (2.2.0+).
//
// Tests that need an external tool (kcat, /usr/bin/python3 with
// confluent_kafka or kafka) skip when it is missing, and fail instead when
// the CI environment variable is set, since CI installs them (.ci/run).
//
// Set INTEROP_DEBUG=1, or a subset such as INTEROP_DEBUG=sarama,kcat,python,
// for client-side protocol logs: sarama's Logger, kcat's -d
// broker,protocol,cgrp,fetch, librdkafka's debug and kafka-python's DEBUG
// logging, printed on failure (or always with -v).
package interop
