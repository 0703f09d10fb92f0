package topology

import (
	"fmt"
	"time"
)

// Kind says what a node does at the graph's edges.
type Kind int

const (
	KindSource    Kind = iota // reads topics
	KindProcessor             // runs a Processor
	KindSink                  // writes a topic
)

func (k Kind) String() string {
	return [...]string{"source", "processor", "sink"}[k]
}

// Node is one vertex of the graph.
type Node struct {
	Name     string
	Kind     Kind
	Parents  []*Node
	Children []*Node

	// New makes the node's processor for one task (processors only).
	New func() Processor
	// Stores names the stores the processor uses.
	Stores []string

	// Source: the topics read and how to decode them.
	Topics    []string
	KeyCodec  Codec
	ValCodec  Codec
	Timestamp TimestampExtractor // nil: the record's timestamp

	// Sink: the topic written (or TopicFor per record) and how to encode.
	Topic    string
	TopicFor func(Record) (string, error)

	// Internal marks a repartition topic's sink and source: the runtime
	// creates the topic, and the graph splits into sub-topologies there.
	Internal bool
	// Partitions of an internal topic; 0 means "as many as the upstream
	// sub-topology's source topics".
	Partitions int32
}

// StoreKind is the shape of a store.
type StoreKind int

const (
	StoreKeyValue StoreKind = iota
	StoreWindow
)

// Store describes one state store.
type Store struct {
	Name string
	Kind StoreKind
	// Owner is the node whose updates the store's cache forwards on flush
	// (aggregations); "" if nothing is forwarded.
	Owner string
	// KeyCodec and ValCodec decode stored bytes, for forwarding on flush
	// and for tooling.
	KeyCodec Codec
	ValCodec Codec
	// Changelog backs the store with a compacted topic
	// <application id>-<name>-changelog. Default true.
	Changelog bool
	// Window stores: the window size and how long windows are kept.
	WindowSize time.Duration
	Retention  time.Duration
}

// ChangelogTopic is the store's changelog topic for an application.
func (s *Store) ChangelogTopic(appID string) string {
	return fmt.Sprintf("%s-%s-changelog", appID, s.Name)
}
