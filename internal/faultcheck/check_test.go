package faultcheck

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// cleanHistory is a correct run: two producers each send four records over
// two partitions; consumer 0 reads everything in one session and commits
// each partition halfway, then fully; the monitor then reads the end.
func cleanHistory() *History {
	h := &History{Topic: "q", Partitions: 2, Group: "g", Produced: []int64{4, 4}, GroupCaughtUp: true}
	ends := make([]int64, 2)
	for seq := range int64(4) {
		for prod := range 2 {
			p := int32(seq % 2)
			r := Record{Partition: p, Offset: ends[p], Value: Value(prod, seq)}
			ends[p]++
			h.Acks = append(h.Acks, Ack{Record: r, Producer: prod, At: ms(10 * len(h.Acks))})
			h.Drain = append(h.Drain, r)
			h.Consumed = append(h.Consumed, Consumed{Record: r, Consumer: 0, Session: 1})
		}
	}
	h.DrainEnd = ends
	for p, end := range ends {
		h.Commits = append(h.Commits,
			Commit{Partition: int32(p), Offset: end / 2, Source: "consumer 0", Sent: ms(100), Acked: ms(105)},
			Commit{Partition: int32(p), Offset: end, Source: "consumer 0", Sent: ms(110), Acked: ms(115)},
			Commit{Partition: int32(p), Offset: end, Source: monitorSource, Sent: ms(120), Acked: ms(125)})
	}
	return h
}

// swapValues exchanges the values at two positions in every observation, as
// if the cluster had written the two records the other way round.
func swapValues(h *History, a, b Record) {
	swap := func(r *Record) {
		switch {
		case r.Partition == a.Partition && r.Offset == a.Offset:
			r.Value = b.Value
		case r.Partition == b.Partition && r.Offset == b.Offset:
			r.Value = a.Value
		}
	}
	for i := range h.Acks {
		swap(&h.Acks[i].Record)
	}
	for i := range h.Consumed {
		swap(&h.Consumed[i].Record)
	}
	for i := range h.Drain {
		swap(&h.Drain[i])
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(h *History)
		want   []Kind
	}{
		{"clean", func(*History) {}, nil},
		{"failed produces, written or not", func(h *History) {
			h.Produced[0] = 6
			h.Drain = append(h.Drain, Record{0, 4, "p0-4"})
			h.DrainEnd[0] = 5
			h.Failures = []Failure{{0, 0, "p0-4", "timeout"}, {0, 1, "p0-5", "timeout"}}
		}, nil},
		{"consumer rereads in a new session", func(h *History) {
			h.Consumed = append(h.Consumed, Consumed{Record: h.Drain[0], Consumer: 1, Session: 1})
		}, nil},
		{"overlapping commits may land in either order", func(h *History) {
			// Sent after the commit of 2 and overlapping the commit of 4.
			h.Commits = append(h.Commits, Commit{Partition: 0, Offset: 3, Source: "consumer 1", Sent: ms(107), Acked: ms(130)})
		}, nil},
		{"acked record missing", func(h *History) {
			h.Produced[0] = 5
			h.Acks = append(h.Acks, Ack{Record: Record{0, 4, "p0-4"}, At: ms(200)})
		}, []Kind{Lost}},
		{"acked record elsewhere", func(h *History) {
			h.Acks[3].Offset = 50
		}, []Kind{Moved}},
		{"record written twice", func(h *History) {
			h.Drain = append(h.Drain, Record{0, 4, h.Drain[0].Value})
			h.DrainEnd[0] = 5
		}, []Kind{Duplicate, ProducerOrder}},
		{"offset assigned twice", func(h *History) {
			h.Consumed = append(h.Consumed, Consumed{Record: Record{0, 1, "p1-2"}, Consumer: 1, Session: 1})
		}, []Kind{Conflict}},
		{"two acks for one offset", func(h *History) {
			h.Acks[2].Partition = 0 // "p0-1" claims offset 0 of partition 0, which holds "p0-0"
			h.Drain = slices.DeleteFunc(h.Drain, func(r Record) bool { return r.Value == h.Acks[2].Value })
			h.Consumed = slices.DeleteFunc(h.Consumed, func(r Consumed) bool { return r.Value == h.Acks[2].Value })
		}, []Kind{Lost, Conflict}},
		{"drain out of order", func(h *History) {
			h.Drain[0], h.Drain[2] = h.Drain[2], h.Drain[0] // both partition 0
		}, []Kind{DrainOrder}},
		{"drain reads a record twice", func(h *History) {
			h.Drain = append(h.Drain, h.Drain[len(h.Drain)-1])
		}, []Kind{DrainOrder}},
		{"producer's records reordered", func(h *History) {
			swapValues(h, Record{0, 0, "p0-0"}, Record{0, 2, "p0-2"})
		}, []Kind{ProducerOrder}},
		{"consumer goes back within a session", func(h *History) {
			h.Consumed = append(h.Consumed, Consumed{Record: h.Drain[0], Consumer: 0, Session: 1})
		}, []Kind{ConsumerOrder}},
		{"consumer reads a record later lost", func(h *History) {
			h.Produced[0] = 5
			h.Consumed = append(h.Consumed, Consumed{Record: Record{0, 4, "p0-4"}, Consumer: 0, Session: 1})
		}, []Kind{DirtyRead}},
		{"group commits past a record it never read", func(h *History) {
			h.Consumed = h.Consumed[1:]
		}, []Kind{GroupMissed}},
		{"records nobody sent", func(h *History) {
			h.Drain = append(h.Drain, Record{0, 4, "garbage"}, Record{0, 5, "p0-4"}, Record{0, 6, "p9-0"})
			h.DrainEnd[0] = 7
			h.Consumed = append(h.Consumed, Consumed{Record: Record{0, 4, "garbage"}, Consumer: 0, Session: 1})
		}, []Kind{Phantom}},
		{"commit after a higher commit", func(h *History) {
			h.Commits = append(h.Commits, Commit{Partition: 1, Offset: 2, Source: "consumer 1", Sent: ms(116), Acked: ms(118)})
		}, []Kind{CommitBackwards}},
		{"monitor reads a lower offset", func(h *History) {
			h.Commits = append(h.Commits, Commit{Partition: 0, Offset: 1, Source: monitorSource, Sent: ms(130), Acked: ms(135)})
		}, []Kind{CommitBackwards}},
		{"commit beyond the end", func(h *History) {
			h.Commits = append(h.Commits, Commit{Partition: 1, Offset: 5, Source: "consumer 0", Sent: ms(140), Acked: ms(145)})
		}, []Kind{CommitBeyondEnd}},
		{"drain cut short", func(h *History) {
			h.DrainErr = "context deadline exceeded"
		}, []Kind{DrainIncomplete}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := cleanHistory()
			tc.mutate(h)
			rep := Check(h)
			var got []Kind
			for _, v := range rep.Violations {
				got = append(got, v.Kind)
				if v.Count < 1 || len(v.Examples) == 0 {
					t.Errorf("%s: count %d with examples %q", v.Kind, v.Count, v.Examples)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations %v, want %v\n%v", got, tc.want, rep)
			}
			if rep.OK() != (len(tc.want) == 0) {
				t.Errorf("OK() = %v with violations %v", rep.OK(), got)
			}
		})
	}
}

func TestCheckSummary(t *testing.T) {
	h := cleanHistory()
	h.Acks[7].At = h.Acks[6].At.Add(time.Second) // the longest gap
	h.Failures = []Failure{{Producer: 1, Partition: 1, Value: h.Drain[1].Value, Err: "timeout"}}
	h.Consumed = append(h.Consumed, Consumed{Record: h.Drain[0], Consumer: 1, Session: 1})
	s := Check(h).Summary
	want := Summary{Attempted: 8, Acked: 8, Failed: 1, FailedWritten: 1, Drained: 8, Consumed: 9,
		Redelivered: 1, Commits: 4, CommitReads: 2, MaxAckGap: time.Second,
		MaxAckGapFrom: h.Acks[6].At, GroupCaughtUp: true}
	gaps := s.PartitionGaps
	s.PartitionGaps = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("summary %+v\nwant    %+v", s, want)
	}
	if len(gaps) != int(h.Partitions) || slices.Max(gaps) != time.Second {
		t.Errorf("partition gaps %v: want %d partitions, the longest 1s", gaps, h.Partitions)
	}
}

// TestCheckExamplesBounded: a run that loses everything reports every loss
// in the count but only the first few as examples.
func TestCheckExamplesBounded(t *testing.T) {
	h := &History{Topic: "q", Partitions: 1, Produced: []int64{100}, DrainEnd: []int64{0}}
	for seq := range int64(100) {
		h.Acks = append(h.Acks, Ack{Record: Record{0, seq, Value(0, seq)}})
	}
	rep := Check(h)
	v := rep.Violations[0]
	if v.Kind != Lost || v.Count != 100 || len(v.Examples) != maxExamples {
		t.Errorf("got %s count %d with %d examples, want lost count 100 with %d", v.Kind, v.Count, len(v.Examples), maxExamples)
	}
	if s := rep.String(); !strings.Contains(s, "FAIL") || !strings.Contains(s, "lost: 100") {
		t.Errorf("report does not show the losses:\n%s", s)
	}
}
