package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// The state commands read the stores of a stream application that is not
// running: LevelDB lets one process open a store at a time.

var stateCommands = []command{
	{"list", "list the stores of a state directory with entry counts and checkpoints", (*app).stateList},
	{"get", "print a key's value in a key-value store", (*app).stateGet},
	{"scan", "print a key-value store's entries in key order", (*app).stateScan},
	{"windows", "print a window store's windows", (*app).stateWindows},
}

func (a *app) stateCmd(ctx context.Context, w io.Writer, args []string) error {
	return a.dispatch(ctx, w, "state", stateCommands, args)
}

// lockedError explains state.ErrLocked: the application still runs.
type lockedError struct{ store, task string }

func (e *lockedError) Error() string {
	where := "store " + e.store
	if e.task != "" {
		where += " of task " + e.task
	}
	return where + ": store is in use — is the app still running? query it through its --http endpoint instead"
}

func (e *lockedError) Unwrap() error { return state.ErrLocked }

const stateAbout = "\n\nThe application must be stopped: a running one holds its stores' locks (query it\n" +
	"through its --http endpoint instead). The commands only read the stores."

const keyAbout = "\n\nKeys are given as text in the store's key serde: string as is, int64 and float64 as\n" +
	"decimal numbers, json as JSON; keys of other serdes (bytes, msgpack) in hex with --key-hex.\n" +
	"Values are decoded by the store's value serde: json and msgpack are printed as JSON,\n" +
	"bytes and unknown serdes as hex. The serdes come from the store's metadata file; stores\n" +
	"written by older versions have none, and need --key-serde and --value-serde (and\n" +
	"--window-size for a window store)."

// defaultStateDir is the App's default StateDir.
func defaultStateDir() string { return filepath.Join(os.TempDir(), "weir-streams") }

// stateOpts are the flags the store commands share.
type stateOpts struct {
	fs         *flagSet
	dir        string
	appID      string
	store      string
	task       string
	keySerde   string
	valueSerde string
	windowSize time.Duration
	keyHex     bool
	format     string
	limit      int
}

func newStateOpts(path, synopsis, about string) *stateOpts {
	o := &stateOpts{fs: newFlagSet(path, synopsis, about)}
	fs := o.fs
	fs.StringVar(&o.dir, "state-dir", defaultStateDir(), "the application's state directory `DIR` (AppConfig.StateDir)")
	fs.StringVar(&o.appID, "app-id", "", "the application id `ID` (required)")
	fs.StringVar(&o.store, "store", "", "the store's name `S` (required)")
	fs.StringVar(&o.task, "task", "", "read only task `T`'s copy of the store, e.g. 1_0 (default: every task's)")
	fs.BoolVar(&o.keyHex, "key-hex", false, "keys on the command line are hex")
	fs.StringVar(&o.format, "format", "table", "output `FORMAT`: table or json (JSON lines)")
	fs.StringVar(&o.keySerde, "key-serde", "", "decode keys with serde `NAME` (string, int64, float64, json, msgpack, bytes) instead of the metadata file's")
	fs.StringVar(&o.valueSerde, "value-serde", "", "decode values with serde `NAME` instead of the metadata file's")
	fs.DurationVar(&o.windowSize, "window-size", 0, "the window size `D` of a window store without metadata file, e.g. 1m (default: the metadata file's)")
	return o
}

func (o *stateOpts) limitFlag() {
	o.fs.IntVar(&o.limit, "limit", 0, "print at most `N` entries (default: all)")
}

// check validates the shared flags after parsing.
func (o *stateOpts) check() error {
	switch {
	case o.appID == "":
		return o.fs.usageErr("--app-id is required")
	case o.store == "":
		return o.fs.usageErr("--store is required")
	case o.format != "table" && o.format != "json":
		return o.fs.usageErr("--format must be table or json, got %q", o.format)
	case o.limit < 0:
		return o.fs.usageErr("--limit must not be negative")
	case o.windowSize < 0:
		return o.fs.usageErr("--window-size must not be negative")
	case o.task != "" && !taskIDPattern.MatchString(o.task):
		return o.fs.usageErr("--task %q is not a task id such as 1_0", o.task)
	}
	return nil
}

// taskIDPattern matches task directories: "<sub-topology>_<partition>".
var taskIDPattern = regexp.MustCompile(`^([0-9]+)_([0-9]+)$`)

// taskDir is one task's directory.
type taskDir struct {
	id             string
	sub, partition int64
	path           string
}

// storeCopy is one task's copy of a store.
type storeCopy struct {
	task taskDir
	dir  string
}

// resolved is the store a command reads: how to decode it and its copies.
type resolved struct {
	meta   state.Meta
	copies []storeCopy
}

func (a *app) stateList(ctx context.Context, w io.Writer, args []string) error {
	flags := newFlagSet("state list", "weir state list [--state-dir DIR] [--app-id ID]",
		"Lists the stores under a state directory, by application and task: kind, key and value\n"+
			"serdes, entry count and the changelog offset of the task's checkpoint."+stateAbout)
	dir := flags.String("state-dir", defaultStateDir(), "the state directory `DIR` (AppConfig.StateDir)")
	appID := flags.String("app-id", "", "list only application `ID`")
	pos, err := flags.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := flags.positional(pos); err != nil {
		return err
	}
	apps, err := listApps(*dir)
	if err != nil {
		return err
	}
	if *appID != "" {
		if !slices.Contains(apps, *appID) {
			return noApp(*dir, *appID, apps)
		}
		apps = []string{*appID}
	}

	tw := newTable(w, "APP", "TASK", "STORE", "KIND", "KEY", "VALUE", "ENTRIES", "CHECKPOINT")
	rows, inUse := 0, false
	for _, id := range apps {
		tasks, err := listTasks(filepath.Join(*dir, id))
		if err != nil {
			return err
		}
		for _, t := range tasks {
			stores, err := taskStores(t.path)
			if err != nil {
				return err
			}
			cp, cpErr := state.ReadCheckpoint(filepath.Join(t.path, ".checkpoint"))
			for _, name := range stores {
				kind, keySerde, valueSerde := "?", "?", "?"
				changelog := id + "-" + name + "-changelog" // the runtime's name, for stores without metadata
				m, err := state.ReadMeta(state.MetaPath(t.path, name))
				switch {
				case err == nil:
					kind, keySerde, valueSerde, changelog = kindOf(m), orDash(m.KeySerde), orDash(m.ValueSerde), m.Changelog
				case !errors.Is(err, fs.ErrNotExist):
					kind = "corrupt metadata"
				}
				entries := "-"
				if isStoreDir(filepath.Join(t.path, name)) {
					n, err := countEntries(filepath.Join(t.path, name))
					switch {
					case errors.Is(err, state.ErrLocked):
						entries, inUse = "in use", true
					case err != nil:
						entries = "error: " + err.Error()
					default:
						entries = strconv.FormatInt(n, 10)
					}
				}
				checkpoint := "-"
				if off, ok := cp[state.CheckpointKey(changelog, int32(t.partition))]; ok && changelog != "" {
					checkpoint = strconv.FormatInt(off, 10)
				} else if cpErr != nil {
					checkpoint = "corrupt"
				}
				tw.row(id, t.id, name, kind, keySerde, valueSerde, entries, checkpoint)
				rows++
			}
		}
	}
	if rows == 0 {
		where := *dir
		if *appID != "" {
			where = filepath.Join(*dir, *appID)
		}
		fmt.Fprintf(w, "no stores under %s\n", where)
		return nil
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if inUse {
		fmt.Fprintln(w, "\nStores \"in use\" are open in a running application: query it through its --http endpoint instead.")
	}
	return nil
}

func (a *app) stateGet(ctx context.Context, w io.Writer, args []string) error {
	o := newStateOpts("state get", "weir state get --app-id ID --store S [--state-dir DIR] [--task T] [--key-hex] [--format table|json] KEY",
		"Prints the value of KEY in a key-value store, from every task's copy of the store that\n"+
			"holds it (normally one: a key lives in one partition)."+keyAbout+stateAbout)
	pos, err := o.fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = o.fs.positional(pos, "KEY"); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	r, err := o.resolve(false)
	if err != nil {
		return err
	}
	if r.meta.Kind == state.KindWindow {
		return o.fs.usageErr("store %s is a window store: use 'weir state windows --store %s --key KEY'", o.store, o.store)
	}
	key, err := o.encodeKey(r.meta.KeySerde, pos[0], "KEY")
	if err != nil {
		return err
	}
	out := newEntryWriter(w, o.format, a.stderr, r.meta, false)
	for _, c := range r.copies {
		err := withStore(c, func(s state.Store) error {
			v, err := s.Get(key)
			if err != nil || v == nil {
				return err
			}
			return out.entry(c.task.id, key, v)
		})
		if err != nil {
			return err
		}
	}
	if out.n == 0 {
		return fmt.Errorf("key %s not found in store %s (searched %s)", displayKey(pos[0], o.keyHex), o.store, plural(int64(len(r.copies)), "task"))
	}
	return out.close()
}

func (a *app) stateScan(ctx context.Context, w io.Writer, args []string) error {
	o := newStateOpts("state scan", "weir state scan --app-id ID --store S [--state-dir DIR] [--from K] [--to K] [--limit N] [--task T] [--key-hex] [--format table|json]",
		"Prints the entries of a key-value store with keys in [--from, --to), task by task, in key\n"+
			"order (the order of the encoded key bytes) within each task."+keyAbout+stateAbout)
	o.limitFlag()
	var from, to string
	o.fs.StringVar(&from, "from", "", "start at key `K` (default: the first key)")
	o.fs.StringVar(&to, "to", "", "stop before key `K` (default: after the last key)")
	pos, err := o.fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := o.fs.positional(pos); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	r, err := o.resolve(false)
	if err != nil {
		return err
	}
	if r.meta.Kind == state.KindWindow {
		return o.fs.usageErr("store %s is a window store: use 'weir state windows --store %s'", o.store, o.store)
	}
	var lo, hi []byte
	if from != "" {
		if lo, err = o.encodeKey(r.meta.KeySerde, from, "--from"); err != nil {
			return err
		}
	}
	if to != "" {
		if hi, err = o.encodeKey(r.meta.KeySerde, to, "--to"); err != nil {
			return err
		}
	}
	out := newEntryWriter(w, o.format, a.stderr, r.meta, false)
	for _, c := range r.copies {
		err := withStore(c, func(s state.Store) error {
			return each(s, lo, hi, func(k, v []byte) (bool, error) {
				if o.limit > 0 && out.n >= o.limit {
					return false, nil
				}
				return true, out.entry(c.task.id, k, v)
			})
		})
		if err != nil {
			return err
		}
	}
	return out.close()
}

func (a *app) stateWindows(ctx context.Context, w io.Writer, args []string) error {
	o := newStateOpts("state windows", "weir state windows --app-id ID --store S [--state-dir DIR] [--key K] [--from TIME] [--to TIME] [--limit N] [--task T] [--key-hex] [--format table|json]",
		"Prints the windows of a window store whose start lies in [--from, --to), task by task,\n"+
			"ordered by start and then key, as key@[start,end) and the value; times are RFC 3339 UTC."+keyAbout+stateAbout)
	o.limitFlag()
	var keyText, fromText, toText string
	o.fs.StringVar(&keyText, "key", "", "only the windows of key `K`")
	o.fs.StringVar(&fromText, "from", "", "only windows starting at or after `TIME` (RFC 3339)")
	o.fs.StringVar(&toText, "to", "", "only windows starting before `TIME` (RFC 3339)")
	pos, err := o.fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := o.fs.positional(pos); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	var lo, hi []byte // window store keys lead with the start
	for _, b := range []struct {
		text, flag string
		key        *[]byte
	}{{fromText, "--from", &lo}, {toText, "--to", &hi}} {
		if b.text == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, b.text)
		if err != nil {
			return o.fs.usageErr("%s %q: want RFC 3339, e.g. 2025-01-02T15:04:05Z", b.flag, b.text)
		}
		*b.key = window.EncodeKey(nil, t)
	}
	r, err := o.resolve(true)
	if err != nil {
		return err
	}
	if r.meta.Kind != state.KindWindow {
		return o.fs.usageErr("store %s is a key-value store: use 'weir state scan' or 'weir state get'", o.store)
	}
	var key []byte
	if keyText != "" {
		if key, err = o.encodeKey(r.meta.KeySerde, keyText, "--key"); err != nil {
			return err
		}
	}
	out := newEntryWriter(w, o.format, a.stderr, r.meta, true)
	for _, c := range r.copies {
		err := withStore(c, func(s state.Store) error {
			return each(s, lo, hi, func(k, v []byte) (bool, error) {
				if o.limit > 0 && out.n >= o.limit {
					return false, nil
				}
				if key != nil {
					if rk, _, err := window.DecodeKey(k); err != nil || !bytes.Equal(rk, key) {
						return true, nil
					}
				}
				return true, out.entry(c.task.id, k, v)
			})
		})
		if err != nil {
			return err
		}
	}
	return out.close()
}

// resolve finds the store's copies and how to decode them: from its
// metadata file, or the serde flags for stores without one (windows says
// the command reads windows, which need a window size). Flags given
// explicitly override the file.
func (o *stateOpts) resolve(windows bool) (*resolved, error) {
	apps, err := listApps(o.dir)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(apps, o.appID) {
		return nil, noApp(o.dir, o.appID, apps)
	}
	appDir := filepath.Join(o.dir, o.appID)
	tasks, err := listTasks(appDir)
	if err != nil {
		return nil, err
	}
	r := &resolved{}
	var holders []string
	all := make(map[string]bool)
	for _, t := range tasks {
		stores, err := taskStores(t.path)
		if err != nil {
			return nil, err
		}
		for _, s := range stores {
			all[s] = true
		}
		dir := filepath.Join(t.path, o.store)
		if !isStoreDir(dir) {
			continue
		}
		holders = append(holders, t.id)
		if o.task == "" || o.task == t.id {
			r.copies = append(r.copies, storeCopy{task: t, dir: dir})
		}
	}
	switch {
	case len(holders) == 0:
		names := slices.Sorted(func(yield func(string) bool) {
			for s := range all {
				if !yield(s) {
					return
				}
			}
		})
		if len(names) == 0 {
			return nil, fmt.Errorf("no store %s under %s: it holds no stores", o.store, appDir)
		}
		return nil, fmt.Errorf("no store %s under %s (stores: %s)", o.store, appDir, strings.Join(names, ", "))
	case len(r.copies) == 0:
		return nil, fmt.Errorf("task %s has no store %s (tasks with it: %s)", o.task, o.store, strings.Join(holders, ", "))
	}

	found := false
	for _, c := range r.copies {
		m, err := state.ReadMeta(state.MetaPath(c.task.path, o.store))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil && (o.keySerde == "" || o.valueSerde == "") {
			return nil, fmt.Errorf("%w (give --key-serde and --value-serde to decode the store without it)", err)
		}
		if err == nil {
			r.meta, found = m, true
			break
		}
	}
	if !found {
		need := "--key-serde and --value-serde"
		if windows {
			need = "--key-serde, --value-serde and --window-size"
		}
		if o.keySerde == "" || o.valueSerde == "" || (windows && o.windowSize == 0) {
			return nil, fmt.Errorf("store %s has no metadata file %s (state written by an older weir): "+
				"give %s to say how to decode it", o.store, o.store+state.MetaSuffix, need)
		}
		r.meta = state.Meta{Name: o.store, Kind: state.KindKeyValue}
	}
	if o.keySerde != "" {
		r.meta.KeySerde = o.keySerde
	}
	if o.valueSerde != "" {
		r.meta.ValueSerde = o.valueSerde
	}
	if o.windowSize > 0 {
		r.meta.Kind, r.meta.WindowSizeMs = state.KindWindow, o.windowSize.Milliseconds()
		if r.meta.WindowSizeMs <= 0 {
			return nil, o.fs.usageErr("--window-size must be at least 1ms")
		}
	}
	return r, nil
}

// encodeKey encodes a key given on the command line with the key serde.
func (o *stateOpts) encodeKey(serdeName, text, what string) ([]byte, error) {
	if o.keyHex {
		b, err := hex.DecodeString(text)
		if err != nil {
			return nil, o.fs.usageErr("%s %q is not hex: %v", what, text, err)
		}
		return b, nil
	}
	switch serdeName {
	case "string":
		return []byte(text), nil
	case "int64":
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, o.fs.usageErr("%s %q is not an int64 (the store's key serde)", what, text)
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
	case "float64":
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, o.fs.usageErr("%s %q is not a float64 (the store's key serde)", what, text)
		}
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)), nil
	case "json":
		// The json serde writes encoding/json's output: compact, HTML
		// characters escaped; object fields must come in its order.
		var compact, escaped bytes.Buffer
		if err := json.Compact(&compact, []byte(text)); err != nil {
			return nil, o.fs.usageErr("%s %q is not JSON (the store's key serde): %v", what, text, err)
		}
		json.HTMLEscape(&escaped, compact.Bytes())
		return escaped.Bytes(), nil
	}
	return nil, o.fs.usageErr("the store's keys use the %q serde: give %s in hex with --key-hex", serdeName, what)
}

// withStore opens a copy of a store, runs f and closes it. It opens only
// an existing LevelDB store (OpenLevelDB would create one), and it only
// reads.
func withStore(c storeCopy, f func(state.Store) error) (err error) {
	if !isStoreDir(c.dir) {
		return fmt.Errorf("%s is not a LevelDB store", c.dir)
	}
	s, err := state.OpenLevelDB(c.dir, state.BlockCacheSize(1<<20), state.OpenFilesLimit(16))
	if errors.Is(err, state.ErrLocked) {
		return &lockedError{store: filepath.Base(c.dir), task: c.task.id}
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	return f(s)
}

// each calls f for the entries of s in [lo, hi) until f returns false.
func each(s state.Store, lo, hi []byte, f func(k, v []byte) (bool, error)) error {
	it, err := s.Range(lo, hi)
	if err != nil {
		return err
	}
	for it.Next() {
		more, err := f(it.Key(), it.Value())
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	return it.Close()
}

func countEntries(dir string) (n int64, err error) {
	err = withStore(storeCopy{dir: dir}, func(s state.Store) error {
		return each(s, nil, nil, func(_, _ []byte) (bool, error) { n++; return true, nil })
	})
	return n, err
}

// isStoreDir reports whether dir holds a LevelDB store.
func isStoreDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "CURRENT"))
	return err == nil && fi.Mode().IsRegular()
}

// listApps lists the application directories of a state directory: those
// holding task directories.
func listApps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state directory %s does not exist", dir)
	}
	if err != nil {
		return nil, err
	}
	var apps []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		tasks, err := listTasks(filepath.Join(dir, e.Name()))
		if err == nil && len(tasks) > 0 {
			apps = append(apps, e.Name())
		}
	}
	return apps, nil
}

func noApp(dir, id string, apps []string) error {
	if len(apps) == 0 {
		return fmt.Errorf("no application %s under %s: it holds no application state", id, dir)
	}
	return fmt.Errorf("no application %s under %s (applications: %s)", id, dir, strings.Join(apps, ", "))
}

// listTasks lists an application directory's task directories in task
// order (sub-topology, then partition).
func listTasks(appDir string) ([]taskDir, error) {
	entries, err := os.ReadDir(appDir)
	if err != nil {
		return nil, err
	}
	var tasks []taskDir
	for _, e := range entries {
		m := taskIDPattern.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		sub, err1 := strconv.ParseInt(m[1], 10, 32)
		p, err2 := strconv.ParseInt(m[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		tasks = append(tasks, taskDir{id: e.Name(), sub: sub, partition: p, path: filepath.Join(appDir, e.Name())})
	}
	slices.SortFunc(tasks, func(a, b taskDir) int {
		if a.sub != b.sub {
			return int(a.sub - b.sub)
		}
		return int(a.partition - b.partition)
	})
	return tasks, nil
}

// taskStores lists the stores of a task directory: its LevelDB directories
// and metadata files.
func taskStores(taskPath string) ([]string, error) {
	entries, err := os.ReadDir(taskPath)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."):
		case e.IsDir() && isStoreDir(filepath.Join(taskPath, name)):
			names = append(names, name)
		case !e.IsDir() && strings.HasSuffix(name, state.MetaSuffix) && len(name) > len(state.MetaSuffix):
			names = append(names, strings.TrimSuffix(name, state.MetaSuffix))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func kindOf(m state.Meta) string {
	if m.Kind == state.KindWindow {
		return "window(" + (time.Duration(m.WindowSizeMs) * time.Millisecond).String() + ")"
	}
	return m.Kind
}

func displayKey(text string, isHex bool) string {
	if isHex {
		return "0x" + text
	}
	return strconv.Quote(text)
}

// entryWriter prints decoded entries as a table or as JSON lines, and warns
// about bytes that did not decode with their serde.
type entryWriter struct {
	w       io.Writer
	warn    io.Writer
	meta    state.Meta
	windows bool
	table   *table
	enc     *json.Encoder
	n       int
	bad     int
}

func newEntryWriter(w io.Writer, format string, warn io.Writer, m state.Meta, windows bool) *entryWriter {
	ew := &entryWriter{w: w, warn: warn, meta: m, windows: windows}
	if format == "json" {
		ew.enc = json.NewEncoder(w)
		ew.enc.SetEscapeHTML(false)
	}
	return ew
}

// entryLine is an entry of --format json.
type entryLine struct {
	Task  string          `json:"task"`
	Key   json.RawMessage `json:"key"`
	Start string          `json:"start,omitempty"`
	End   string          `json:"end,omitempty"`
	Value json.RawMessage `json:"value"`
}

func (ew *entryWriter) entry(task string, key, value []byte) error {
	var start time.Time
	if ew.windows {
		k, s, err := window.DecodeKey(key)
		if err != nil {
			ew.bad++
			return nil // not a window: skipped, and counted in the warning
		}
		key, start = k, s
	}
	k, kok := decodeSerde(ew.meta.KeySerde, key)
	v, vok := decodeSerde(ew.meta.ValueSerde, value)
	if !kok {
		ew.bad++
	}
	if !vok {
		ew.bad++
	}
	ew.n++
	var end time.Time
	if ew.windows {
		end = start.Add(time.Duration(ew.meta.WindowSizeMs) * time.Millisecond)
	}
	if ew.enc != nil {
		line := entryLine{Task: task, Key: k.json, Value: v.json}
		if ew.windows {
			line.Start, line.End = formatTime(start), formatTime(end)
		}
		return ew.enc.Encode(line)
	}
	if ew.table == nil {
		if ew.windows {
			ew.table = newTable(ew.w, "TASK", "WINDOW", "VALUE")
		} else {
			ew.table = newTable(ew.w, "TASK", "KEY", "VALUE")
		}
	}
	keyCell := k.text
	if ew.windows {
		keyCell = k.text + "@[" + formatTime(start) + "," + formatTime(end) + ")"
	}
	ew.table.row(task, keyCell, v.text)
	return nil
}

// close flushes the table and reports what did not decode.
func (ew *entryWriter) close() error {
	if ew.table != nil {
		if err := ew.table.flush(); err != nil {
			return err
		}
	}
	if ew.bad > 0 {
		fmt.Fprintf(ew.warn, "weir: warning: %s did not decode with the store's serdes (key %s, value %s) and %s shown as hex\n",
			plural(int64(ew.bad), "key or value"), ew.meta.KeySerde, ew.meta.ValueSerde, isAre(ew.bad))
	}
	return nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// rendered is a decoded key or value: text for tables, JSON for --format json.
type rendered struct {
	text string
	json json.RawMessage
}

// decodeSerde decodes b by serde name. Bytes of an unknown serde are shown
// as hex; ok is false when a known serde fails to decode them (they are
// shown as hex too).
func decodeSerde(name string, b []byte) (r rendered, ok bool) {
	switch name {
	case "string":
		s := string(b)
		return rendered{text: tableText(s), json: marshalJSON(s)}, true
	case "int64":
		if n, err := serde.Int64().Deserialize(b); err == nil {
			s := strconv.FormatInt(n, 10)
			return rendered{text: s, json: json.RawMessage(s)}, true
		}
	case "float64":
		if f, err := serde.Float64().Deserialize(b); err == nil {
			s := strconv.FormatFloat(f, 'g', -1, 64)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return rendered{text: s, json: marshalJSON(s)}, true
			}
			return rendered{text: s, json: marshalJSON(f)}, true
		}
	case "json":
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err == nil {
			return rendered{text: tableText(buf.String()), json: buf.Bytes()}, true
		}
	case "msgpack":
		if v, err := serde.Msgpack[any]().Deserialize(b); err == nil {
			js := marshalJSON(jsonSafe(v))
			return rendered{text: tableText(string(js)), json: js}, true
		}
	default:
		return hexRendered(b), true
	}
	return hexRendered(b), false
}

func hexRendered(b []byte) rendered {
	h := hex.EncodeToString(b)
	return rendered{text: tableText(h), json: marshalJSON(h)}
}

// marshalJSON encodes v without HTML escaping; v is always encodable.
func marshalJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		enc.Encode(fmt.Sprint(v))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// jsonSafe turns a generically decoded msgpack value into one encoding/json
// accepts and shows usefully: binary as hex, NaN and infinities as text.
func jsonSafe(v any) any {
	switch v := v.(type) {
	case []byte:
		return hex.EncodeToString(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
	case float32:
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 32)
		}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonSafe(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonSafe(e)
		}
		return out
	}
	return v
}

// tableText keeps a cell on one line and visible: text that is empty, not
// UTF-8, or holds control characters is printed quoted.
func tableText(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) }) {
		return strconv.Quote(s)
	}
	return s
}
