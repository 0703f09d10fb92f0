package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// t0 is the start of the test windows.
var t0 = time.Date(2025, 1, 2, 15, 4, 0, 0, time.UTC)

// fakeStateDir builds the state directory of a stopped application "wc":
//
//	wc/0_0/                         a task without stores
//	wc/1_0/counts (+ meta)          a→3, b→2           checkpoint 5
//	wc/1_1/counts (+ meta)          c→1, "two words"→7 checkpoint 2
//	wc/2_0/per-minute (+ meta)      windows of u1 and u2, 1 minute
//	wc/2_0/legacy                   int64 → msgpack, no metadata file
//	other/0_0/x.meta.json           a store without data yet
func fakeStateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mkdir := func(p string) string {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := func(p string) state.Store {
		s, err := state.OpenLevelDB(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	put := func(s state.Store, k, v []byte) {
		if err := s.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	closeStore := func(s state.Store) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	i64 := func(n int64) []byte { b, _ := serde.Int64().Serialize(n); return b }
	meta := func(task string, m state.Meta) {
		if err := state.WriteMeta(state.MetaPath(task, m.Name), m); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint := func(task string, cp state.Checkpoint) {
		if err := state.WriteCheckpoint(filepath.Join(task, ".checkpoint"), cp); err != nil {
			t.Fatal(err)
		}
	}

	checkpoint(mkdir("wc/0_0"), state.Checkpoint{})
	counts := state.Meta{Name: "counts", Kind: state.KindKeyValue, KeySerde: "string", ValueSerde: "int64", Changelog: "wc-counts-changelog"}
	for task, kvs := range map[string]map[string]int64{"1_0": {"a": 3, "b": 2}, "1_1": {"c": 1, "two words": 7}} {
		td := mkdir("wc/" + task)
		s := open(filepath.Join(td, "counts"))
		for k, v := range kvs {
			put(s, []byte(k), i64(v))
		}
		closeStore(s)
		meta(td, counts)
		off := map[string]int64{"1_0": 5, "1_1": 2}[task]
		checkpoint(td, state.Checkpoint{state.CheckpointKey("wc-counts-changelog", int32(task[2]-'0')): off})
	}

	td := mkdir("wc/2_0")
	wdb := open(filepath.Join(td, "per-minute"))
	ws := window.NewStore(wdb, 0)
	for _, w := range []struct {
		key   string
		start time.Duration
		n     int64
	}{{"u1", 0, 2}, {"u1", time.Minute, 1}, {"u2", time.Minute, 1}, {"u2", 2 * time.Minute, 4}} {
		if err := ws.Put([]byte(w.key), t0.Add(w.start), i64(w.n)); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(wdb)
	meta(td, state.Meta{Name: "per-minute", Kind: state.KindWindow, KeySerde: "string", ValueSerde: "int64",
		WindowSizeMs: 60000, Changelog: "wc-per-minute-changelog"})
	legacy := open(filepath.Join(td, "legacy"))
	doc, _ := serde.Msgpack[map[string]any]().Serialize(map[string]any{"n": 1, "tags": []string{"x", "<y>"}})
	put(legacy, i64(42), doc)
	put(legacy, i64(7), []byte{0xc1}) // not msgpack
	closeStore(legacy)
	checkpoint(td, state.Checkpoint{state.CheckpointKey("wc-per-minute-changelog", 0): 9})

	meta(mkdir("other/0_0"), state.Meta{Name: "x", Kind: state.KindKeyValue, KeySerde: "bytes", ValueSerde: "bytes"})
	if err := os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir("not-an-app/data")
	return dir
}

func TestStateCommands(t *testing.T) {
	dir := fakeStateDir(t)
	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	base := []string{"state"}
	run := func(args ...string) result {
		return weirCtx(context.Background(), "", "", append(base, args...)...)
	}
	for _, c := range []struct {
		args   []string
		stdout string
		stderr string
	}{
		{[]string{"list", "--state-dir", dir},
			"APP    TASK  STORE       KIND          KEY     VALUE  ENTRIES  CHECKPOINT\n" +
				"other  0_0   x           kv            bytes   bytes  -        -\n" +
				"wc     1_0   counts      kv            string  int64  2        5\n" +
				"wc     1_1   counts      kv            string  int64  2        2\n" +
				"wc     2_0   legacy      ?             ?       ?      2        -\n" +
				"wc     2_0   per-minute  window(1m0s)  string  int64  4        9\n", ""},
		{[]string{"list", "--state-dir", dir, "--app-id", "other"},
			"APP    TASK  STORE  KIND  KEY    VALUE  ENTRIES  CHECKPOINT\n" +
				"other  0_0   x      kv    bytes  bytes  -        -\n", ""},

		{[]string{"get", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "b"},
			"TASK  KEY  VALUE\n1_0   b    2\n", ""},
		{[]string{"get", "two words", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--format", "json"},
			`{"task":"1_1","key":"two words","value":7}` + "\n", ""},
		{[]string{"get", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--key-hex", "61", "--task", "1_0"},
			"TASK  KEY  VALUE\n1_0   a    3\n", ""},

		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "counts"},
			"TASK  KEY        VALUE\n1_0   a          3\n1_0   b          2\n1_1   c          1\n1_1   two words  7\n", ""},
		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--from", "b", "--to", "t", "--format", "json"},
			`{"task":"1_0","key":"b","value":2}` + "\n" + `{"task":"1_1","key":"c","value":1}` + "\n", ""},
		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--limit", "3", "--task", "1_1"},
			"TASK  KEY        VALUE\n1_1   c          1\n1_1   two words  7\n", ""},
		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--limit", "1"},
			"TASK  KEY  VALUE\n1_0   a    3\n", ""},
		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--from", "zzz"}, "", ""},

		{[]string{"windows", "--state-dir", dir, "--app-id", "wc", "--store", "per-minute"},
			"TASK  WINDOW                                          VALUE\n" +
				"2_0   u1@[" + ts(0) + "," + ts(time.Minute) + ")  2\n" +
				"2_0   u1@[" + ts(time.Minute) + "," + ts(2*time.Minute) + ")  1\n" +
				"2_0   u2@[" + ts(time.Minute) + "," + ts(2*time.Minute) + ")  1\n" +
				"2_0   u2@[" + ts(2*time.Minute) + "," + ts(3*time.Minute) + ")  4\n", ""},
		{[]string{"windows", "--state-dir", dir, "--app-id", "wc", "--store", "per-minute", "--key", "u2", "--format", "json"},
			`{"task":"2_0","key":"u2","start":"` + ts(time.Minute) + `","end":"` + ts(2*time.Minute) + `","value":1}` + "\n" +
				`{"task":"2_0","key":"u2","start":"` + ts(2*time.Minute) + `","end":"` + ts(3*time.Minute) + `","value":4}` + "\n", ""},
		{[]string{"windows", "--state-dir", dir, "--app-id", "wc", "--store", "per-minute", "--from", ts(time.Minute), "--to", ts(2 * time.Minute), "--limit", "1"},
			"TASK  WINDOW                                          VALUE\n" +
				"2_0   u1@[" + ts(time.Minute) + "," + ts(2*time.Minute) + ")  1\n", ""},

		// A store without metadata file, decoded as the flags say; the
		// value that is not msgpack is shown as hex, with a warning.
		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "legacy", "--key-serde", "int64", "--value-serde", "msgpack"},
			"TASK  KEY  VALUE\n2_0   7    c1\n2_0   42   {\"n\":1,\"tags\":[\"x\",\"<y>\"]}\n",
			"weir: warning: 1 key or value did not decode with the store's serdes (key int64, value msgpack) and is shown as hex\n"},
		{[]string{"get", "42", "--state-dir", dir, "--app-id", "wc", "--store", "legacy", "--key-serde", "int64", "--value-serde", "msgpack", "--format", "json"},
			`{"task":"2_0","key":42,"value":{"n":1,"tags":["x","<y>"]}}` + "\n", ""},
		// Flags override the metadata file.
		{[]string{"scan", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "--key-serde", "bytes", "--value-serde", "bytes", "--limit", "1"},
			"TASK  KEY  VALUE\n1_0   61   0000000000000003\n", ""},
	} {
		r := run(c.args...)
		if r.code != 0 || r.stdout != c.stdout || r.stderr != c.stderr {
			t.Errorf("weir state %q: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stdout:\n%s\nwant stderr:\n%s",
				c.args, r.code, r.stdout, r.stderr, c.stdout, c.stderr)
		}
	}
}

func TestStateCommandErrors(t *testing.T) {
	dir := fakeStateDir(t)
	run := func(args ...string) result {
		return weirCtx(context.Background(), "", "", append([]string{"state"}, args...)...)
	}
	wc := []string{"--state-dir", dir, "--app-id", "wc"}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"list", "--state-dir", filepath.Join(dir, "nope")}, 1, "weir: state directory " + filepath.Join(dir, "nope") + " does not exist\n"},
		{[]string{"list", "--state-dir", dir, "--app-id", "nope"}, 1, "weir: no application nope under " + dir + " (applications: other, wc)\n"},
		{[]string{"get", "--state-dir", filepath.Join(dir, "nope"), "--app-id", "wc", "--store", "counts", "a"}, 1, "does not exist"},
		{append([]string{"get", "--store", "nope", "a"}, wc...), 1, "weir: no store nope under " + filepath.Join(dir, "wc") + " (stores: counts, legacy, per-minute)\n"},
		{append([]string{"get", "--store", "counts", "--task", "2_0", "a"}, wc...), 1, "weir: task 2_0 has no store counts (tasks with it: 1_0, 1_1)\n"},
		{append([]string{"get", "--store", "counts", "zzz"}, wc...), 1, "weir: key \"zzz\" not found in store counts (searched 2 tasks)\n"},
		{append([]string{"get", "--store", "legacy", "42"}, wc...), 1,
			"weir: store legacy has no metadata file legacy.meta.json (state written by an older weir): give --key-serde and --value-serde to say how to decode it\n"},
		{append([]string{"windows", "--store", "legacy", "--key-serde", "int64", "--value-serde", "int64"}, wc...), 1,
			"give --key-serde, --value-serde and --window-size to say how to decode it\n"},
		{append([]string{"get", "--store", "legacy", "--key-serde", "int64", "--value-serde", "msgpack", "x"}, wc...), 2,
			"weir state get: KEY \"x\" is not an int64 (the store's key serde)\nRun 'weir state get -h' for usage.\n"},
		{append([]string{"get", "--store", "per-minute", "u1"}, wc...), 2, "store per-minute is a window store: use 'weir state windows --store per-minute --key KEY'"},
		{append([]string{"scan", "--store", "per-minute"}, wc...), 2, "store per-minute is a window store"},
		{append([]string{"windows", "--store", "counts"}, wc...), 2, "store counts is a key-value store"},
		{append([]string{"get", "--store", "counts", "--key-hex", "zz"}, wc...), 2, `KEY "zz" is not hex`},
		{[]string{"get", "--state-dir", dir, "--store", "counts", "a"}, 2, "--app-id is required"},
		{append([]string{"get", "a"}, wc...), 2, "--store is required"},
		{append([]string{"get", "--store", "counts"}, wc...), 2, "missing KEY"},
		{append([]string{"scan", "--store", "counts", "--format", "xml"}, wc...), 2, "--format must be table or json"},
		{append([]string{"scan", "--store", "counts", "--task", "one"}, wc...), 2, `--task "one" is not a task id`},
		{append([]string{"windows", "--store", "per-minute", "--from", "yesterday"}, wc...), 2, `--from "yesterday": want RFC 3339`},
		{[]string{"get", "--state-dir", dir, "--app-id", "other", "--store", "x", "00"}, 1, "weir: no store x under"},
	} {
		r := run(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("weir state %q: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stderr containing %q",
				c.args, r.code, r.stdout, r.stderr, c.code, c.stderr)
		}
	}
}

// TestStateStoreInUse: a running application holds its stores' locks.
func TestStateStoreInUse(t *testing.T) {
	dir := fakeStateDir(t)
	s, err := state.OpenLevelDB(filepath.Join(dir, "wc", "1_0", "counts"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	r := weirCtx(context.Background(), "", "", "state", "get", "--state-dir", dir, "--app-id", "wc", "--store", "counts", "a")
	want := "weir: store counts of task 1_0: store is in use — is the app still running? query it through its --http endpoint instead\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("get on a locked store: exit %d, stderr %q; want exit 1, %q", r.code, r.stderr, want)
	}
	r = weirCtx(context.Background(), "", "", "state", "list", "--state-dir", dir, "--app-id", "wc")
	if f := row(r.stdout, "wc", "1_0", "counts"); r.code != 0 || len(f) != 9 || f[6] != "in" || f[7] != "use" ||
		!strings.Contains(r.stdout, "query it through its --http endpoint instead") {
		t.Errorf("list with a locked store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if f := row(r.stdout, "wc", "1_1", "counts"); len(f) != 8 || f[6] != "2" {
		t.Errorf("list: the other task's store: %q", f)
	}
}

func TestDecodeSerde(t *testing.T) {
	f64, _ := serde.Float64().Serialize(2.5)
	nan, _ := serde.Float64().Serialize(math.NaN())
	mp, _ := serde.Msgpack[any]().Serialize(map[string]any{"b": []byte{1, 2}, "n": nil})
	for _, c := range []struct {
		serde     string
		in        []byte
		text, js  string
		decodedOK bool
	}{
		{"string", []byte("hi"), "hi", `"hi"`, true},
		{"string", []byte(""), `""`, `""`, true},
		{"string", []byte("a\tb"), `"a\tb"`, `"a\tb"`, true},
		{"int64", []byte{0, 0, 0, 0, 0, 0, 1, 0}, "256", "256", true},
		{"int64", []byte{1}, "01", `"01"`, false},
		{"float64", f64, "2.5", "2.5", true},
		{"float64", nan, "NaN", `"NaN"`, true},
		{"json", []byte(`{ "a" : [1, 2] }`), `{"a":[1,2]}`, `{"a":[1,2]}`, true},
		{"json", []byte(`{`), "7b", `"7b"`, false},
		{"msgpack", mp, `{"b":"0102","n":null}`, `{"b":"0102","n":null}`, true},
		{"bytes", []byte{0xde, 0xad}, "dead", `"dead"`, true},
		{"avro", []byte{0xbe, 0xef}, "beef", `"beef"`, true},
		{"", nil, `""`, `""`, true},
	} {
		r, ok := decodeSerde(c.serde, c.in)
		if r.text != c.text || string(r.json) != c.js || ok != c.decodedOK {
			t.Errorf("decodeSerde(%s, %x) = %q, %s, %v; want %q, %s, %v", c.serde, c.in, r.text, r.json, ok, c.text, c.js, c.decodedOK)
		}
	}
}
