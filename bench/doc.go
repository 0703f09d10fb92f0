// Package bench holds weir's reproducible benchmarks against its peers.
//
// The broker benchmarks run each broker — weir (fsync on, acks=all) and
// franz-go's in-memory kfake — in a child process (the test binary
// re-executed), so the broker's own CPU time and peak memory can be read
// from /proc apart from the client's. Run them with
//
//	make bench
//
// or `go test -run '^$' -bench Broker -benchtime 200000x -count 5 ./bench/`
// and compare the two with benchstat.
package bench
