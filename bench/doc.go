// Package bench holds weir's reproducible benchmarks against its peers.
//
// The comparisons run from bench/compare (`make bench`): each is two
// sides — weir and a peer — run alternately, each run a fresh `weir bench`
// process (cmd/weir) with a fresh broker in a child process, so that CPU
// and peak memory are the broker's and the client's own. The peers are
// franz-go's in-memory kfake broker, goka processors (bench/streams) on
// weir's broker, the sarama client, and NATS JetStream when nats-server is
// installed. Results go to bench/results/: runs.jsonl, README.md (medians,
// ratios, the command behind every figure) and plots.
//
// The Go benchmarks in this package measure the broker alone, for
// benchstat: `go test -run '^$' -bench Broker -benchtime 200000x -count 5 ./bench/`.
package bench
