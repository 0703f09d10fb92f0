// Package streams holds the goka side of `weir bench`'s stream workloads:
// the word count and the windowed revenue written as goka processors, the
// peer weir is measured against. The weir side is the example topologies
// themselves, imported from examples/wordcount/wordcount and
// examples/windowed-revenue/revenue. Both versions read the same input
// records and write the same output records, so one generator and one
// result follower serve both.
package streams
