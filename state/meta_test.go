package state_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-io/weir/state"
)

func TestMetaRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, m := range []state.Meta{
		{Name: "counts", Kind: state.KindKeyValue, KeySerde: "string", ValueSerde: "int64", Changelog: "wc-counts-changelog"},
		{Name: "per-minute", Kind: state.KindWindow, KeySerde: "string", ValueSerde: "msgpack", WindowSizeMs: 60000},
		{Name: "raw", Kind: state.KindKeyValue, KeySerde: "custom-avro", ValueSerde: ""},
	} {
		path := state.MetaPath(dir, m.Name)
		if want := filepath.Join(dir, m.Name+".meta.json"); path != want {
			t.Fatalf("MetaPath = %s, want %s", path, want)
		}
		must(t, state.WriteMeta(path, m))
		got, err := state.ReadMeta(path)
		must(t, err)
		if got != m {
			t.Fatalf("read %+v, wrote %+v", got, m)
		}
	}

	// The file is indented JSON with the documented field names; optional
	// fields are omitted when empty.
	b, err := os.ReadFile(state.MetaPath(dir, "per-minute"))
	must(t, err)
	want := `{
  "name": "per-minute",
  "kind": "window",
  "key_serde": "string",
  "value_serde": "msgpack",
  "window_size_ms": 60000
}
`
	if string(b) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", b, want)
	}

	// Overwriting leaves no temporary files behind.
	m := state.Meta{Name: "counts", Kind: state.KindKeyValue, KeySerde: "string", ValueSerde: "float64"}
	must(t, state.WriteMeta(state.MetaPath(dir, "counts"), m))
	if got, err := state.ReadMeta(state.MetaPath(dir, "counts")); err != nil || got != m {
		t.Fatalf("after overwrite: %+v, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestReadMetaMissing(t *testing.T) {
	_, err := state.ReadMeta(filepath.Join(t.TempDir(), "nope.meta.json"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, state.ErrCorruptMeta) {
		t.Fatalf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestReadMetaCorrupt(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{
		``,
		`{`,
		`[]`,
		`null`,
		`{"name":"s","kind":"kv"} {}`,
		`{"name":"s","kind":"kv"} x`,
		`{"kind":"kv"}`,
		`{"name":"..","kind":"kv"}`,
		`{"name":"a/b","kind":"kv"}`,
		`{"name":"s","kind":"table"}`,
		`{"name":"s","kind":"window"}`,
		`{"name":"s","kind":"window","window_size_ms":-1}`,
		`{"name":"s","kind":"kv","window_size_ms":1000}`,
		`{"name":1,"kind":"kv"}`,
		`{"name":"s","kind":"kv","window_size_ms":1.5}`,
		`{"name":"s","kind":"kv","key_serde":"string"}` + strings.Repeat(" ", 70<<10),
	} {
		path := filepath.Join(dir, "m.meta.json")
		must(t, os.WriteFile(path, []byte(content), 0o644))
		if m, err := state.ReadMeta(path); !errors.Is(err, state.ErrCorruptMeta) {
			t.Errorf("ReadMeta(%.60q) = %+v, %v; want ErrCorruptMeta", content, m, err)
		}
	}
}

func TestReadMetaIgnoresUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.meta.json")
	must(t, os.WriteFile(path, []byte(`{"name":"s","kind":"kv","key_serde":"int64","value_serde":"json","future":{"x":1}}`+"\n\n"), 0o644))
	m, err := state.ReadMeta(path)
	want := state.Meta{Name: "s", Kind: state.KindKeyValue, KeySerde: "int64", ValueSerde: "json"}
	if err != nil || m != want {
		t.Fatalf("ReadMeta = %+v, %v; want %+v", m, err, want)
	}
}

func TestWriteMetaRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	for _, m := range []state.Meta{
		{},
		{Name: "s", Kind: "kv2"},
		{Name: "s", Kind: state.KindWindow},
		{Name: "a/b", Kind: state.KindKeyValue},
	} {
		path := filepath.Join(dir, "x.meta.json")
		if err := state.WriteMeta(path, m); err == nil {
			t.Errorf("WriteMeta(%+v) succeeded", m)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("WriteMeta(%+v) left a file: %v", m, err)
		}
	}
}

func TestOpenLevelDBLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := state.OpenLevelDB(dir)
	must(t, err)
	defer s.Close()
	if s2, err := state.OpenLevelDB(dir); !errors.Is(err, state.ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
}

// FuzzReadMeta checks that reading never panics, that every failure is
// ErrCorruptMeta, and that whatever reads successfully writes back to a file
// that reads the same.
func FuzzReadMeta(f *testing.F) {
	f.Add([]byte(`{"name":"counts","kind":"kv","key_serde":"string","value_serde":"int64","changelog":"a-counts-changelog"}`))
	f.Add([]byte(`{"name":"w","kind":"window","key_serde":"bytes","value_serde":"msgpack","window_size_ms":60000}`))
	f.Add([]byte(`{"name":"s","kind":"kv","name":"t"}`))
	f.Add([]byte(`{"name":"\u0000","kind":"kv"}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "in")
		must(t, os.WriteFile(path, b, 0o644))
		m, err := state.ReadMeta(path)
		if err != nil {
			if !errors.Is(err, state.ErrCorruptMeta) {
				t.Fatalf("error %v is not ErrCorruptMeta", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("ReadMeta returned invalid %+v: %v", m, err)
		}
		out := filepath.Join(dir, "out")
		must(t, state.WriteMeta(out, m))
		again, err := state.ReadMeta(out)
		if err != nil || again != m {
			t.Fatalf("round trip of %+v gave %+v, %v", m, again, err)
		}
	})
}
