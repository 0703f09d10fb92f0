package runtime

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/internal/task"
)

func tasksOf(subs, partitions int) []task.ID {
	var out []task.ID
	for s := range subs {
		for p := range partitions {
			out = append(out, task.ID{Subtopology: s, Partition: int32(p)})
		}
	}
	return out
}

func newMember(id string, gen int32, owned []task.ID, local ...task.ID) member {
	m := member{id: id, generation: gen, owned: owned, local: make(map[task.ID]bool), subs: map[int]bool{0: true, 1: true}}
	for _, l := range local {
		m.local[l] = true
	}
	return m
}

func checkBalanced(t *testing.T, tasks []task.ID, got map[string][]task.ID, members int) {
	t.Helper()
	seen := make(map[task.ID]string)
	lo, hi := len(tasks)/members, (len(tasks)+members-1)/members
	for m, ts := range got {
		if len(ts) < lo || len(ts) > hi {
			t.Errorf("member %s has %d tasks, want %d..%d: %v", m, len(ts), lo, hi, got)
		}
		for _, id := range ts {
			if other, dup := seen[id]; dup {
				t.Errorf("task %s assigned to %s and %s", id, other, m)
			}
			seen[id] = m
		}
	}
	if len(seen) != len(tasks) {
		t.Errorf("%d of %d tasks assigned: %v", len(seen), len(tasks), got)
	}
}

func TestAssignTasksBalanced(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8} {
		for _, parts := range []int{1, 3, 4, 7} {
			t.Run(fmt.Sprintf("%dmembers-%dpartitions", n, parts), func(t *testing.T) {
				tasks := tasksOf(2, parts)
				var ms []member
				for i := range n {
					ms = append(ms, newMember(fmt.Sprintf("m%d", i), 1, nil))
				}
				checkBalanced(t, tasks, assignTasks(tasks, ms), n)
			})
		}
	}
}

func TestAssignTasksSticky(t *testing.T) {
	tasks := tasksOf(2, 4) // 8 tasks
	// m0 owned everything; m1 joins: m0 keeps 4 of its own, m1 gets 4.
	got := assignTasks(tasks, []member{newMember("m0", 3, tasks), newMember("m1", -1, nil)})
	checkBalanced(t, tasks, got, 2)
	for _, id := range got["m0"] {
		if !slices.Contains(tasks, id) {
			t.Errorf("m0 got unknown task %s", id)
		}
	}
	// Rebalancing a balanced assignment changes nothing.
	again := assignTasks(tasks, []member{newMember("m0", 4, got["m0"]), newMember("m1", 4, got["m1"])})
	if !slices.Equal(again["m0"], got["m0"]) || !slices.Equal(again["m1"], got["m1"]) {
		t.Errorf("stable assignment moved: %v → %v", got, again)
	}
	// A third member takes tasks from both, and the others keep theirs.
	third := assignTasks(tasks, []member{newMember("m0", 5, got["m0"]), newMember("m1", 5, got["m1"]), newMember("m2", -1, nil)})
	checkBalanced(t, tasks, third, 3)
	for _, m := range []string{"m0", "m1"} {
		for _, id := range third[m] {
			if !slices.Contains(got[m], id) {
				t.Errorf("%s was given %s, which it did not own, while m2 needed tasks: %v", m, id, third)
			}
		}
	}
}

func TestAssignTasksPrefersLocalState(t *testing.T) {
	tasks := tasksOf(1, 4)
	// Nobody owns anything (a restart), but m1 has state for 0_2 and 0_3.
	got := assignTasks(tasks, []member{
		newMember("m0", -1, nil),
		newMember("m1", -1, nil, task.ID{Partition: 2}, task.ID{Partition: 3}),
	})
	checkBalanced(t, tasks, got, 2)
	if !slices.Equal(got["m1"], []task.ID{{Partition: 2}, {Partition: 3}}) {
		t.Errorf("m1 got %v, want the tasks whose state it has", got["m1"])
	}
}

func TestAssignTasksNewestClaimWins(t *testing.T) {
	tasks := tasksOf(1, 2)
	// m0 rejoins with a stale claim on 0_0, which m1 owns now.
	got := assignTasks(tasks, []member{
		newMember("m0", 1, []task.ID{{Partition: 0}}),
		newMember("m1", 2, []task.ID{{Partition: 0}, {Partition: 1}}),
	})
	checkBalanced(t, tasks, got, 2)
	if !slices.Contains(got["m1"], task.ID{Partition: 0}) {
		t.Errorf("the stale claim won: %v", got)
	}
}

func TestAssignTasksEligibility(t *testing.T) {
	tasks := tasksOf(2, 2)
	m0 := newMember("m0", -1, nil)
	m1 := newMember("m1", -1, nil)
	m1.subs = map[int]bool{1: true} // reads only sub-topology 1's topics
	got := assignTasks(tasks, []member{m0, m1})
	for _, id := range got["m1"] {
		if id.Subtopology != 1 {
			t.Errorf("m1 got %s of a sub-topology it does not read", id)
		}
	}
	if n := len(got["m0"]) + len(got["m1"]); n != 4 {
		t.Errorf("%d tasks assigned, want 4: %v", n, got)
	}
}

func TestUserData(t *testing.T) {
	in := []task.ID{{Subtopology: 0, Partition: 3}, {Subtopology: 12, Partition: 1 << 20}}
	out, err := decodeUserData(encodeUserData(in))
	if err != nil || !slices.Equal(in, out) {
		t.Fatalf("round trip: %v, %v", out, err)
	}
	if out, err := decodeUserData(nil); err != nil || out != nil {
		t.Fatalf("empty: %v, %v", out, err)
	}
	for _, bad := range [][]byte{{9}, {1, 5}, {1, 1, 0x80}} {
		if _, err := decodeUserData(bad); err == nil {
			t.Errorf("decodeUserData(%v) accepted", bad)
		}
	}
}

func FuzzUserData(f *testing.F) {
	f.Add(encodeUserData([]task.ID{{Subtopology: 1, Partition: 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeUserData(b)
		if err != nil {
			return
		}
		again, err := decodeUserData(encodeUserData(ids))
		if err != nil || !slices.Equal(ids, again) {
			t.Fatalf("re-encoding %v: %v, %v", ids, again, err)
		}
	})
}

// Kafka's Utils.murmur2 test vectors (clients UtilsTest): the partitioner
// must place keys exactly as the Java producer does.
func TestPartitionerMatchesKafka(t *testing.T) {
	vectors := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	tp := newPartitioner().ForTopic("t")
	for key, hash := range vectors {
		for _, n := range []int{1, 3, 7, 100, 1000} {
			want := int(uint32(hash)&0x7fffffff) % n
			if got := tp.Partition(&kgo.Record{Key: []byte(key), Partition: -1}, n); got != want {
				t.Errorf("key %q over %d partitions: %d, want %d", key, n, got, want)
			}
			if got := partitionForKey([]byte(key), int32(n)); int(got) != want {
				t.Errorf("partitionForKey(%q, %d) = %d, want %d", key, n, got, want)
			}
		}
	}
	// An explicit partition wins over the key.
	if got := tp.Partition(&kgo.Record{Key: []byte("21"), Partition: 5}, 7); got != 5 {
		t.Errorf("explicit partition: %d", got)
	}
	if !tp.RequiresConsistency(&kgo.Record{Partition: 2}) || !tp.RequiresConsistency(&kgo.Record{Key: []byte("k"), Partition: -1}) {
		t.Error("explicit and keyed records must keep their partition")
	}
}

func TestAssignTasksSpreadsSubtopologies(t *testing.T) {
	tasks := tasksOf(2, 4)
	got := assignTasks(tasks, []member{newMember("m0", 3, tasks), newMember("m1", -1, nil)})
	for m, ts := range got {
		per := make(map[int]int)
		for _, id := range ts {
			per[id.Subtopology]++
		}
		if per[0] != 2 || per[1] != 2 {
			t.Errorf("%s got %v: want 2 tasks of each sub-topology", m, ts)
		}
	}
}
