package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordFormat(t *testing.T) {
	r := &kgo.Record{
		Topic:     "t",
		Partition: 3,
		Offset:    42,
		Key:       []byte("k"),
		Value:     []byte("v"),
		Timestamp: time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600)),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	tests := []struct {
		format, want string
	}{
		{defaultFormat, "v\n"},
		{"%v", "v\n"}, // a newline is added
		{`%k %v %p %o %t %T %h\n`, "k v 3 42 2024-05-01T11:00:00.123Z t a=1,b=2\n"},
		{`%k\t%v\r\n`, "k\tv\r\n"},
		{`100%% \\%v`, "100% \\v\n"},
		{"literal", "literal\n"},
	}
	for _, tt := range tests {
		f, err := parseFormat(tt.format)
		if err != nil {
			t.Errorf("parseFormat(%q): %v", tt.format, err)
			continue
		}
		if got := string(f.append(nil, r)); got != tt.want {
			t.Errorf("format %q printed %q, want %q", tt.format, got, tt.want)
		}
	}
	for _, bad := range []string{"%", `\`, "%x", `\q`} {
		if _, err := parseFormat(bad); err == nil {
			t.Errorf("parseFormat(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		pos     []string
		sep     string
		verbose bool
	}{
		{[]string{"a", "--sep", ":", "b"}, []string{"a", "b"}, ":", false},
		{[]string{"--verbose", "a"}, []string{"a"}, "", true},
		{[]string{"a", "--", "--sep", "b"}, []string{"a", "--sep", "b"}, "", false},
		{[]string{"a", "--sep", "--", "b"}, []string{"a", "b"}, "--", false},    // "--" as a value
		{[]string{"a", "--verbose", "--", "-b"}, []string{"a", "-b"}, "", true}, // bool before terminator
		{[]string{"--sep=--", "--", "-x"}, []string{"-x"}, "--", false},         // value given with =
		{[]string{"a", "-", "b"}, []string{"a", "-", "b"}, "", false},           // lone dash is positional
		{nil, nil, "", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		sep := fs.String("sep", "", "")
		verbose := fs.Bool("verbose", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(pos, tt.pos) || *sep != tt.sep || *verbose != tt.verbose {
			t.Errorf("%q: got pos %q sep %q verbose %v; want %q %q %v", tt.args, pos, *sep, *verbose, tt.pos, tt.sep, tt.verbose)
		}
	}
}

func TestApplyConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.conf")
	conf := strings.Join([]string{
		"# a weir broker",
		"listen = 127.0.0.1:9093",
		"data_dir = \"/var/lib/weir data\"",
		"",
		"auto.create = false",
		"default-partitions=4",
	}, "\n")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var listen, dataDir string
	var autoCreate bool
	var partitions int
	newFlags := func() *flag.FlagSet {
		fs := flag.NewFlagSet("weir broker", flag.ContinueOnError)
		fs.StringVar(&listen, "listen", "127.0.0.1:9092", "")
		fs.StringVar(&dataDir, "data-dir", "", "")
		fs.BoolVar(&autoCreate, "auto-create", true, "")
		fs.IntVar(&partitions, "default-partitions", 1, "")
		fs.String("config", "", "")
		return fs
	}
	fs := newFlags()
	if err := fs.Parse([]string{"--listen", ":1"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	if listen != ":1" || dataDir != "/var/lib/weir data" || autoCreate || partitions != 4 {
		t.Errorf("got listen %q data-dir %q auto-create %v partitions %d", listen, dataDir, autoCreate, partitions)
	}

	for conf, want := range map[string]string{
		"listen":                   "weir.conf:1: want key = value",
		"nope = 1":                 `weir.conf:1: unknown setting "nope"`,
		"config = x":               `unknown setting "config"`,
		"\ndefault-partitions = x": "weir.conf:2: default-partitions: parse error",
	} {
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := applyConfigFile(newFlags(), path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: got error %v, want %q", conf, err, want)
		}
	}
}

func TestParseTopicPartitions(t *testing.T) {
	for in, want := range map[string][]int32{"t": nil, "t:0": {0}, "t:2, 0": {2, 0}} {
		topic, ps, err := parseTopicPartitions(in)
		if err != nil || topic != "t" || !reflect.DeepEqual(ps, want) {
			t.Errorf("parseTopicPartitions(%q) = %q, %v, %v", in, topic, ps, err)
		}
	}
	for _, bad := range []string{"", ":1", "t:", "t:-1", "t:a"} {
		if _, _, err := parseTopicPartitions(bad); err == nil {
			t.Errorf("parseTopicPartitions(%q) succeeded", bad)
		}
	}
}

func TestShowProgress(t *testing.T) {
	var out syncBuffer
	stop := showProgress(&out, time.Millisecond, "produced", func() int64 { return 5 })
	waitFor(t, "a progress line", func() error {
		return check(strings.Contains(out.String(), "\rproduced 5 records..."), out.String())
	})
	stop()
	if !strings.HasSuffix(out.String(), "\r\033[K") {
		t.Errorf("progress did not clear its line: %q", out.String())
	}
}

func TestParseAssignment(t *testing.T) {
	got, err := parseAssignment("1:2:3, 2:3:1,3:1:2")
	if err != nil || fmt.Sprint(got) != "[[1 2 3] [2 3 1] [3 1 2]]" {
		t.Fatalf("parseAssignment = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1:2,3", "1:x", "1:-2", "1,,2"} {
		if got, err := parseAssignment(bad); err == nil {
			t.Errorf("parseAssignment(%q) = %v, want an error", bad, got)
		}
	}
}
