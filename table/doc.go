// Package table holds the stateful semantics behind the stream DSL's
// tables: change records, aggregations (plain and windowed) and joins, as
// untyped processors for internal/topology.
//
// The DSL in package stream adapts typed user functions to the function
// shapes here (keys, values and aggregates travel as `any`), and supplies
// the codecs that turn them into store bytes. Processors here only read and
// write stores; the task's record cache decides when updates reach the
// changelog and, for tables, the downstream nodes (as Change records), so
// repeated updates to one key within a commit interval collapse.
package table
