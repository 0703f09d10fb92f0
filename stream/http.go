package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-io/weir/internal/topology"
	"github.com/weir-io/weir/state"
	"github.com/weir-io/weir/window"
)

// defaultHTTPLimit is how many entries a range or windows query returns
// without ?limit=.
const defaultHTTPLimit = 1000

// Handler returns the application's HTTP endpoint: the topology, the tasks
// of this instance, its metrics, and interactive queries of its stores.
//
//	GET /topology[?format=text|mermaid|dot]   the topology (text/plain)
//	GET /tasks                                this instance's tasks: input lag, restoration
//	GET /metrics                              counters since start, by name
//	GET /stores                               every store: kind, serdes, window size, changelog
//	GET /stores/{name}/keys/{key}             a key's value (key-value store) or windows (window store)
//	GET /stores/{name}?from=&to=&limit=       a key-value store's entries with keys in [from, to)
//	GET /stores/{name}/windows?key=&from=&to=&limit=
//	                                          a window store's windows starting in [from, to) (RFC 3339)
//
// Everything but /topology answers JSON; errors are {"error": "..."} with
// status 400 (a bad parameter), 404 (no such store or key), 421 (another
// instance holds the key) or 503 (this instance has no tasks yet).
//
// Keys in paths and parameters are text, encoded with the store's key serde:
// "string" as is, "int64" and "float64" as decimal numbers, "json" as JSON.
// Keys of any serde may instead be given in hex: ?hex= for /keys, from_hex=
// and to_hex= for ranges, key_hex= for windows. Keys and values are decoded
// with the store's serdes and rendered with encoding/json; []byte values are
// rendered as hex, and entries that do not decode are rendered as hex with
// an "error" field. Window times are RFC 3339 in UTC.
//
// Queries read the state as of the last commit (see StoreQuery), only of
// this instance's tasks: a range or window scan covers the partitions held
// here, and a key held by another instance answers 421.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.serveIndex)
	mux.HandleFunc("GET /topology", a.serveTopology)
	mux.HandleFunc("GET /tasks", a.serveTasks)
	mux.HandleFunc("GET /metrics", a.serveMetrics)
	mux.HandleFunc("GET /stores", a.serveStores)
	mux.HandleFunc("GET /stores/{name}", a.serveRange)
	mux.HandleFunc("GET /stores/{name}/keys", a.serveKey) // ?hex=
	mux.HandleFunc("GET /stores/{name}/keys/{key...}", a.serveKey)
	mux.HandleFunc("GET /stores/{name}/windows", a.serveWindows)
	return mux
}

const httpIndex = `weir stream application endpoints:
  GET /topology[?format=text|mermaid|dot]
  GET /tasks
  GET /metrics
  GET /stores
  GET /stores/{name}/keys/{key}[?hex=]
  GET /stores/{name}?from=&to=&limit=
  GET /stores/{name}/windows?key=&from=&to=&limit=
`

func (a *App) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, httpIndex)
}

func (a *App) serveTopology(w http.ResponseWriter, r *http.Request) {
	var text string
	switch f := r.URL.Query().Get("format"); f {
	case "", "text":
		text = a.Describe()
	case "mermaid":
		text = a.Mermaid()
	case "dot":
		text = a.DOT()
	default:
		httpError(w, http.StatusBadRequest, "format %q: want text, mermaid or dot", f)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, text)
}

type taskJSON struct {
	ID         string           `json:"id"`
	Running    bool             `json:"running"`
	StreamTime string           `json:"stream_time,omitempty"`
	Inputs     []inputJSON      `json:"inputs"`
	Stores     []storeStateJSON `json:"stores"`
}

type inputJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Lag       int64  `json:"lag"`
}

type storeStateJSON struct {
	Store     string `json:"store"`
	Changelog string `json:"changelog,omitempty"`
	Restored  int64  `json:"restored"`
	Total     int64  `json:"total"`
	Done      bool   `json:"done"`
}

func (a *App) serveTasks(w http.ResponseWriter, r *http.Request) {
	tasks := a.TaskStatus()
	out := make([]taskJSON, len(tasks))
	for i, t := range tasks {
		tj := taskJSON{ID: t.ID, Running: t.Running, Inputs: []inputJSON{}, Stores: []storeStateJSON{}}
		if !t.StreamTime.IsZero() {
			tj.StreamTime = formatTime(t.StreamTime)
		}
		for _, in := range t.Inputs {
			tj.Inputs = append(tj.Inputs, inputJSON(in))
		}
		for _, s := range t.Stores {
			tj.Stores = append(tj.Stores, storeStateJSON(s))
		}
		out[i] = tj
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *App) serveMetrics(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Metrics()) // encoding/json sorts the names
}

func (a *App) serveStores(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(a.topo.Stores))
	for name := range a.topo.Stores {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]state.Meta, len(names))
	for i, name := range names {
		out[i] = a.topo.Stores[name].Meta(a.topo.AppID)
	}
	writeJSON(w, http.StatusOK, out)
}

// entryJSON is one store entry as the endpoint renders it. Start and End
// are set for windows.
type entryJSON struct {
	Partition int32           `json:"partition"`
	Key       json.RawMessage `json:"key"`
	Start     string          `json:"start,omitempty"`
	End       string          `json:"end,omitempty"`
	Value     json.RawMessage `json:"value"`
	// Error says why the key or value could not be decoded; it is then
	// rendered as hex.
	Error string `json:"error,omitempty"`
}

func (a *App) serveKey(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.storeSpec(w, r)
	if !ok {
		return
	}
	text, hexKey := r.PathValue("key"), r.URL.Query().Get("hex")
	var key []byte
	var err error
	switch {
	case text != "" && hexKey != "":
		httpError(w, http.StatusBadRequest, "give the key in the path or as ?hex=, not both")
		return
	case hexKey != "":
		key, err = hex.DecodeString(hexKey)
	case text == "":
		httpError(w, http.StatusBadRequest, "missing key: /stores/%s/keys/{key} or ?hex=", spec.Name)
		return
	default:
		key, err = keyFromText(spec.KeySerde(), text)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "key: %v", err)
		return
	}
	entries, err := a.QueryStore(StoreQuery{Store: spec.Name, Key: key})
	if err != nil {
		a.queryError(w, err)
		return
	}
	if len(entries) == 0 {
		httpError(w, http.StatusNotFound, "store %s has no key %s", spec.Name, describeKey(text, key))
		return
	}
	if spec.Kind == topology.StoreWindow {
		windows := make([]entryJSON, len(entries))
		for i, e := range entries {
			windows[i] = decodeWindow(spec, e)
		}
		writeJSON(w, http.StatusOK, struct {
			Store     string          `json:"store"`
			Partition int32           `json:"partition"`
			Key       json.RawMessage `json:"key"`
			Windows   []entryJSON     `json:"windows"`
		}{spec.Name, entries[0].Partition, windows[0].Key, windows})
		return
	}
	e := decodeEntry(spec, entries[0])
	writeJSON(w, http.StatusOK, struct {
		Store string `json:"store"`
		entryJSON
	}{spec.Name, e})
}

func (a *App) serveRange(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.storeSpec(w, r)
	if !ok {
		return
	}
	if spec.Kind == topology.StoreWindow {
		httpError(w, http.StatusBadRequest, "store %s is a window store: query /stores/%s/windows or /stores/%s/keys/{key}", spec.Name, spec.Name, spec.Name)
		return
	}
	q := r.URL.Query()
	from, err := keyParam(spec, q.Get("from"), q.Get("from_hex"), "from")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	to, err := keyParam(spec, q.Get("to"), q.Get("to_hex"), "to")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	entries, err := a.QueryStore(StoreQuery{Store: spec.Name, From: from, To: to, Limit: limit + 1})
	if err != nil {
		a.queryError(w, err)
		return
	}
	out, more := page(spec, entries, limit, decodeEntry)
	writeJSON(w, http.StatusOK, struct {
		Store   string      `json:"store"`
		Entries []entryJSON `json:"entries"`
		More    bool        `json:"more"`
	}{spec.Name, out, more})
}

func (a *App) serveWindows(w http.ResponseWriter, r *http.Request) {
	spec, ok := a.storeSpec(w, r)
	if !ok {
		return
	}
	if spec.Kind != topology.StoreWindow {
		httpError(w, http.StatusBadRequest, "store %s is a key-value store: query /stores/%s or /stores/%s/keys/{key}", spec.Name, spec.Name, spec.Name)
		return
	}
	q := r.URL.Query()
	key, err := keyParam(spec, q.Get("key"), q.Get("key_hex"), "key")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	from, err := timeParam(q.Get("from"), "from")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	to, err := timeParam(q.Get("to"), "to")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var entries []StoreEntry
	if key != nil {
		// One key's windows, from the instance that holds the key; the
		// time bounds filter them.
		all, err := a.QueryStore(StoreQuery{Store: spec.Name, Key: key})
		if err != nil {
			a.queryError(w, err)
			return
		}
		for _, e := range all {
			if _, start, err := window.DecodeKey(e.Key); err == nil && inRange(start, from, to) {
				entries = append(entries, e)
			}
		}
	} else {
		// Window store keys lead with the start, so a time range is a key
		// range.
		var lo, hi []byte
		if from != nil {
			lo = window.EncodeKey(nil, *from)
		}
		if to != nil {
			hi = window.EncodeKey(nil, *to)
		}
		if entries, err = a.QueryStore(StoreQuery{Store: spec.Name, From: lo, To: hi, Limit: limit + 1}); err != nil {
			a.queryError(w, err)
			return
		}
	}
	out, more := page(spec, entries, limit, decodeWindow)
	writeJSON(w, http.StatusOK, struct {
		Store   string      `json:"store"`
		Windows []entryJSON `json:"windows"`
		More    bool        `json:"more"`
	}{spec.Name, out, more})
}

// page decodes at most limit entries; more reports that the query (asked
// for limit+1) found another.
func page(spec *topology.Store, entries []StoreEntry, limit int, decode func(*topology.Store, StoreEntry) entryJSON) ([]entryJSON, bool) {
	more := len(entries) > limit
	entries = entries[:min(len(entries), limit)]
	out := make([]entryJSON, len(entries))
	for i, e := range entries {
		out[i] = decode(spec, e)
	}
	return out, more
}

// storeSpec finds the store named in the path, or answers 404.
func (a *App) storeSpec(w http.ResponseWriter, r *http.Request) (*topology.Store, bool) {
	name := r.PathValue("name")
	spec, ok := a.topo.Stores[name]
	if !ok {
		httpError(w, http.StatusNotFound, "no store %q in the topology (GET /stores lists them)", name)
		return nil, false
	}
	return spec, true
}

// queryError answers a QueryStore error.
func (a *App) queryError(w http.ResponseWriter, err error) {
	status := queryStatus(err, len(a.TaskStatus()) > 0)
	msg := err.Error()
	switch status {
	case http.StatusMisdirectedRequest:
		msg = "the key is not held by this instance (another instance holds it, or its task is restoring): " + msg
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		msg = "this instance runs no tasks yet (starting or rebalancing): " + msg
	}
	httpError(w, status, "%s", msg)
}

// queryStatus maps a QueryStore error to a status; hasTasks says whether
// this instance runs any task.
func queryStatus(err error, hasTasks bool) int {
	switch {
	case errors.Is(err, ErrStoreNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNotLocal) && hasTasks:
		return http.StatusMisdirectedRequest
	case errors.Is(err, ErrNotLocal):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// keyFromText encodes a key given as text with the serde named serdeName.
func keyFromText(serdeName, text string) ([]byte, error) {
	switch serdeName {
	case "string":
		return []byte(text), nil
	case "int64":
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int64", text)
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
	case "float64":
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float64", text)
		}
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)), nil
	case "json":
		// The json serde writes encoding/json's output: compact, with
		// HTML characters escaped. Object fields must be in its order.
		var compact, escaped bytes.Buffer
		if err := json.Compact(&compact, []byte(text)); err != nil {
			return nil, fmt.Errorf("%q is not JSON: %v", text, err)
		}
		json.HTMLEscape(&escaped, compact.Bytes())
		return escaped.Bytes(), nil
	}
	return nil, fmt.Errorf("keys of serde %q cannot be given as text: give them in hex", serdeName)
}

// keyParam reads an optional key parameter given as text or as hex.
func keyParam(spec *topology.Store, text, hexText, name string) ([]byte, error) {
	switch {
	case text != "" && hexText != "":
		return nil, fmt.Errorf("give %s or %s_hex, not both", name, name)
	case hexText != "":
		b, err := hex.DecodeString(hexText)
		if err != nil {
			return nil, fmt.Errorf("%s_hex: %v", name, err)
		}
		return b, nil
	case text != "":
		b, err := keyFromText(spec.KeySerde(), text)
		if err != nil {
			return nil, fmt.Errorf("%s: %v (or use %s_hex)", name, err, name)
		}
		return b, nil
	}
	return nil, nil
}

func timeParam(s, name string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2025-01-02T15:04:05Z", name, s)
	}
	return &t, nil
}

func limitParam(s string) (int, error) {
	if s == "" {
		return defaultHTTPLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n == math.MaxInt {
		return 0, fmt.Errorf("limit: %q is not a positive number", s)
	}
	return n, nil
}

// inRange reports whether start lies in [from, to), nil bounds being open.
func inRange(start time.Time, from, to *time.Time) bool {
	return (from == nil || !start.Before(*from)) && (to == nil || start.Before(*to))
}

func describeKey(text string, key []byte) string {
	if text != "" {
		return strconv.Quote(text)
	}
	return "0x" + hex.EncodeToString(key)
}

// decodeEntry renders a key-value store entry with the store's codecs.
func decodeEntry(spec *topology.Store, e StoreEntry) entryJSON {
	out := entryJSON{Partition: e.Partition}
	var errs []string
	out.Key, errs = decodeWith(spec.KeyCodec, e.Key, "key", errs)
	out.Value, errs = decodeWith(spec.ValCodec, e.Value, "value", errs)
	out.Error = strings.Join(errs, "; ")
	return out
}

// decodeWindow renders a window store entry: the key codec turns the store
// key into a window.Windowed[K], whose record key, start and end are shown.
func decodeWindow(spec *topology.Store, e StoreEntry) entryJSON {
	out := entryJSON{Partition: e.Partition}
	var errs []string
	rawKey, start, err := window.DecodeKey(e.Key)
	if err != nil {
		out.Key, errs = hexJSON(e.Key), append(errs, "key: "+err.Error())
	} else {
		out.Start, out.End = formatTime(start), formatTime(start.Add(spec.WindowSize))
		if k, w, ok := windowedParts(spec.KeyCodec, e.Key); ok {
			out.Key, out.Start, out.End = toJSON(k), formatTime(w.Start), formatTime(w.End)
		} else {
			out.Key, errs = hexJSON(rawKey), append(errs, "key: does not decode with the "+spec.KeySerde()+" serde")
		}
	}
	out.Value, errs = decodeWith(spec.ValCodec, e.Value, "value", errs)
	out.Error = strings.Join(errs, "; ")
	return out
}

// windowedParts decodes a window store key with the store's key codec into
// the record key and window of the window.Windowed[K] it returns. The
// Windowed's type parameter is the user's, so its fields are read by name.
func windowedParts(c topology.Codec, b []byte) (any, window.Window, bool) {
	v, err := c.Deserialize(b)
	if err != nil || v == nil {
		return nil, window.Window{}, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return nil, window.Window{}, false
	}
	k, wf := rv.FieldByName("Key"), rv.FieldByName("Window")
	if !k.IsValid() || !wf.IsValid() || !k.CanInterface() || !wf.CanInterface() {
		return nil, window.Window{}, false
	}
	win, ok := wf.Interface().(window.Window)
	return k.Interface(), win, ok
}

// decodeWith decodes b with c and renders it; what does not decode is
// rendered as hex, with the reason appended to errs.
func decodeWith(c topology.Codec, b []byte, what string, errs []string) (json.RawMessage, []string) {
	if c.Deserialize == nil {
		return hexJSON(b), errs
	}
	v, err := c.Deserialize(b)
	if err != nil {
		return hexJSON(b), append(errs, what+": "+err.Error())
	}
	return toJSON(v), errs
}

// toJSON renders a decoded value: nil as null, []byte as hex, the rest with
// encoding/json, or as its %v text if encoding/json refuses it (NaN, maps
// with non-string keys).
func toJSON(v any) json.RawMessage {
	if b, ok := v.([]byte); ok {
		return hexJSON(b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		out, _ = json.Marshal(fmt.Sprint(v))
	}
	return out
}

func hexJSON(b []byte) json.RawMessage {
	out, _ := json.Marshal(hex.EncodeToString(b))
	return out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encode response: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{fmt.Sprintf(format, args...)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
