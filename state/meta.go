package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrCorruptMeta reports a store metadata file that does not parse or
// describes no valid store.
var ErrCorruptMeta = errors.New("state: store metadata corrupt")

// Store kinds of a Meta.
const (
	KindKeyValue = "kv"
	KindWindow   = "window"
)

// MetaSuffix ends the name of a store's metadata file: the file of store
// "counts" is "counts.meta.json", next to the store's directory "counts".
const MetaSuffix = ".meta.json"

// Meta describes a store on disk so tools can decode it without the program
// that wrote it. The runtime writes it next to each store's directory, as
// <task dir>/<store>.meta.json (see MetaPath).
type Meta struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // KindKeyValue or KindWindow
	// KeySerde and ValueSerde name the serdes of the store's keys and
	// values: "string", "bytes", "int64", "float64", "json", "msgpack", or
	// another name, whose bytes tools show as hex. A window store's
	// KeySerde is the serde of the record key inside its window store keys
	// (see package window).
	KeySerde   string `json:"key_serde"`
	ValueSerde string `json:"value_serde"`
	// WindowSizeMs is a window store's window size in milliseconds: a
	// window's end is its start plus the size. Zero for key-value stores.
	WindowSizeMs int64 `json:"window_size_ms,omitempty"`
	// Changelog is the store's changelog topic, empty if it has none.
	Changelog string `json:"changelog,omitempty"`
}

// MetaPath returns the path of the metadata file of store in taskDir.
func MetaPath(taskDir, store string) string {
	return filepath.Join(taskDir, store+MetaSuffix)
}

// Validate reports what makes m unusable: a name that cannot be a
// directory name, an unknown kind, or a window size that does not fit
// the kind. Serde names are not checked: unknown ones decode as hex.
func (m Meta) Validate() error {
	switch {
	case m.Name == "" || m.Name == "." || m.Name == "..":
		return fmt.Errorf("store name %q is not a directory name", m.Name)
	case strings.ContainsAny(m.Name, "/\\\x00"):
		return fmt.Errorf("store name %q contains a path separator or NUL", m.Name)
	}
	switch m.Kind {
	case KindKeyValue:
		if m.WindowSizeMs != 0 {
			return fmt.Errorf("key-value store %q has a window size (%d ms)", m.Name, m.WindowSizeMs)
		}
	case KindWindow:
		if m.WindowSizeMs <= 0 {
			return fmt.Errorf("window store %q needs a positive window size, got %d ms", m.Name, m.WindowSizeMs)
		}
	default:
		return fmt.Errorf("store %q: unknown kind %q (want %q or %q)", m.Name, m.Kind, KindKeyValue, KindWindow)
	}
	return nil
}

// maxMetaSize bounds what ReadMeta reads: a metadata file is a few hundred
// bytes, and anything much larger is not one.
const maxMetaSize = 64 << 10

// ReadMeta reads the metadata file at path. A missing file gives an error
// matching fs.ErrNotExist (stores written before metadata files existed
// have none); a file that does not parse, or describes an invalid store,
// gives an error wrapping ErrCorruptMeta. Unknown fields are ignored, so
// newer writers may add some.
func ReadMeta(path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, fmt.Errorf("state: read store metadata: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaSize+1))
	if err != nil {
		return Meta{}, fmt.Errorf("state: read store metadata: %w", err)
	}
	m, err := parseMeta(b)
	if err != nil {
		return Meta{}, fmt.Errorf("state: store metadata %s: %w", path, err)
	}
	return m, nil
}

// parseMeta decodes a metadata file's contents. Errors wrap ErrCorruptMeta.
func parseMeta(b []byte) (Meta, error) {
	if len(b) > maxMetaSize {
		return Meta{}, fmt.Errorf("larger than %d bytes: %w", maxMetaSize, ErrCorruptMeta)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var m Meta
	if err := dec.Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("%v: %w", err, ErrCorruptMeta)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Meta{}, fmt.Errorf("data after the JSON object: %w", ErrCorruptMeta)
	}
	if err := m.Validate(); err != nil {
		return Meta{}, fmt.Errorf("%v: %w", err, ErrCorruptMeta)
	}
	return m, nil
}

// WriteMeta replaces the metadata file at path with m, atomically like
// WriteCheckpoint: after a crash path holds the old file or the new one.
// It refuses an m that fails Validate.
func WriteMeta(path string, m Meta) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("state: write store metadata: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("state: write store metadata: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), "write store metadata")
}

// writeFileAtomic replaces the file at path with b: it writes a temporary
// file in the same directory, syncs it, renames it over path and syncs the
// directory. Errors read "state: OP: cause".
func writeFileAtomic(path string, b []byte, op string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp*")
	if err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %s: %w", op, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %s: %w", op, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state: %s: sync directory: %w", op, err)
	}
	return nil
}
