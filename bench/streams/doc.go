// Package streams holds the stream-processing workloads of `weir bench`
// written twice: as weir topologies (the same DSL chains as
// examples/wordcount and examples/windowed-revenue, which are main packages
// and so cannot be imported) and as goka processors, the peer they are
// measured against. Both versions read the same input records and write
// the same output records, so one generator and one result follower serve
// both.
package streams
