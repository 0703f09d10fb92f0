package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/bench/harness"
)

// wordsPerLine is the length of a generated line.
const wordsPerLine = 10

// wordCountTracker generates lines of words "w<n>" drawn uniformly from a
// vocabulary and follows the counts. A line is done once, for each of its
// words, a count at least as large as that word's occurrences up to and
// including the line has appeared. Occurrences are matched to counts in
// the order they were produced; the processor may count them in another
// order across input partitions, which moves delay between lines of one
// word but not the total.
type wordCountTracker struct {
	lines [][]byte
	sent  sendTimes

	mu        sync.Mutex
	occ       [][]int32 // per word, the lines it occurs in, in order (with repeats)
	seen      []int32   // per word, the largest count seen
	remaining []uint8   // per line, its words not counted yet
	done      int64     // lines done
	warm      map[string]bool
}

func newWordCountTracker(lines int64, vocabulary int) *wordCountTracker {
	t := &wordCountTracker{
		lines:     make([][]byte, lines),
		sent:      make(sendTimes, lines),
		occ:       make([][]int32, vocabulary),
		seen:      make([]int32, vocabulary),
		remaining: make([]uint8, lines),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for i := range t.lines {
		b = b[:0]
		for j := range wordsPerLine {
			w := rng.IntN(vocabulary)
			if j > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendInt(append(b, 'w'), int64(w), 10)
			t.occ[w] = append(t.occ[w], int32(i))
		}
		t.lines[i] = append([]byte(nil), b...)
		t.remaining[i] = wordsPerLine
	}
	return t
}

func (t *wordCountTracker) record(i int64) *kgo.Record { return &kgo.Record{Value: t.lines[i]} }
func (t *wordCountTracker) times() sendTimes           { return t.sent }

// warmup is a line of 16 words "warmup<p>x<j>" on every input partition:
// their counts cross every partition of the repartition topic with high
// probability.
func (t *wordCountTracker) warmup(partitions int) []*kgo.Record {
	t.warm = make(map[string]bool)
	var recs []*kgo.Record
	for p := range partitions {
		var words []string
		for j := range 16 {
			w := fmt.Sprintf("warmup%dx%d", p, j)
			words = append(words, w)
			t.warm[w] = true
		}
		recs = append(recs, &kgo.Record{Partition: int32(p), Value: []byte(strings.Join(words, " "))})
	}
	return recs
}

func (t *wordCountTracker) sentinels() []*kgo.Record { return nil }

func (t *wordCountTracker) warmedUp() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.warm) == 0
}

func (t *wordCountTracker) stats() streamStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return streamStats{unitName: "words", units: t.done * wordsPerLine}
}

func (t *wordCountTracker) observe(key, value []byte, now time.Duration, hist *harness.Histogram) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	word := string(key)
	if t.warm[word] {
		delete(t.warm, word)
		return 0, nil
	}
	w, err := strconv.Atoi(strings.TrimPrefix(word, "w"))
	if err != nil || !strings.HasPrefix(word, "w") || w >= len(t.occ) {
		return 0, nil // a warm-up word counted again
	}
	count, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("word %q has count %q: %v", word, value, err)
	}
	if count > int64(len(t.occ[w])) {
		return 0, fmt.Errorf("word %q counted %d times, but it occurs only %d times", word, count, len(t.occ[w]))
	}
	var done int64
	for ; int64(t.seen[w]) < count; t.seen[w]++ {
		line := t.occ[w][t.seen[w]]
		if t.remaining[line]--; t.remaining[line] > 0 {
			continue
		}
		d, err := t.sent.delay(int64(line), now)
		if err != nil {
			return done, err
		}
		hist.Record(d)
		done++
	}
	t.done += done
	return done, nil
}
