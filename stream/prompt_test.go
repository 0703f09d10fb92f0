package stream

import (
	"testing"
	"time"

	"github.com/weir-io/weir/broker/brokertest"
)

// TestResultsLeaveBeforeTheCommit: with a ten-minute commit interval, a
// word count's results still reach the output topic as soon as the task
// goes idle (an idle flush of its caches), not at the commit.
func TestResultsLeaveBeforeTheCommit(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 2, "text", "counts-out")
	out := readTopic(t, addr, "counts-out")
	cfg := testConfig(t, addr, "prompt", t.TempDir())
	cfg.CommitInterval = 10 * time.Minute
	start(t, wordCount("text", "counts-out"), cfg)
	produce(t, addr, "text", "hello prompt world", "hello again")
	want := countWords("hello prompt world", "hello again")
	waitFor(t, "the counts before the first commit", func() bool {
		got := out.counts()
		for w, n := range want {
			if got[w] != n {
				return false
			}
		}
		return true
	})
}
