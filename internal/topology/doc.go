// Package topology is the untyped processor graph behind the stream DSL.
//
// The typed, fluent surface in package stream adapts user functions into
// Processors that pass keys and values as `any`; this package records the
// graph they form, names every node and store deterministically, splits it
// into sub-topologies at repartition topics, checks co-partitioning, and
// describes the result as text, Mermaid or DOT. Package internal/task runs
// one sub-topology for one partition.
//
// Keeping the graph untyped means the runtime, the test driver and the
// tooling are written once, not once per type; serialization happens only
// at the edges (sources, sinks, repartition and changelog topics), through
// the serde functions each edge node carries.
package topology
