package stream

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker/brokertest"
	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/window"
)

// httpGet fetches path from srv and returns the status and the body.
func httpGet(t testing.TB, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHTTP serves a running word count and a windowed count and checks the
// JSON of every endpoint.
func TestHTTP(t *testing.T) {
	br := brokertest.Start(t)
	addr := br.Addr()
	createTopics(t, addr, 1, "text", "counts-out", "clicks", "clicks-out")
	produce(t, addr, "text", "a b a", "b c a")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute).UTC()
	var recs []*kgo.Record
	for _, c := range []struct {
		key string
		at  time.Duration
	}{{"u1", 0}, {"u1", 10 * time.Second}, {"u1", 70 * time.Second}, {"u2", 75 * time.Second}} {
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(c.key), Value: []byte("click"), Timestamp: t0.Add(c.at)})
	}
	if err := newClient(t, addr).ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	b := wordCount("text", "counts-out")
	g := From(b, "clicks", serde.String(), serde.String()).GroupByKey(serde.String(), serde.String())
	WindowedBy(g, window.Tumbling(time.Minute)).
		Count(Named("per-minute")).
		ToStream().
		Map(func(k window.Windowed[string], n int64) (string, int64, error) { return k.String(), n, nil }).
		To("clicks-out", serde.String(), serde.Int64())
	r := start(t, b, testConfig(t, addr, "web", t.TempDir()))
	srv := httptest.NewServer(r.app.Handler())
	defer srv.Close()

	// Queries see committed state: wait for the last updates to be in it.
	r.wait(t, "committed counts", func() bool {
		code, body := httpGet(t, srv, "/stores/counts/keys/a")
		return code == http.StatusOK && strings.Contains(body, `"value":3`)
	})
	r.wait(t, "committed windows", func() bool {
		code, body := httpGet(t, srv, "/stores/per-minute/windows")
		return code == http.StatusOK && strings.Count(body, `"start"`) == 3
	})

	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/stores", 200, `[{"name":"counts","kind":"kv","key_serde":"string","value_serde":"int64","changelog":"web-counts-changelog"},` +
			`{"name":"per-minute","kind":"window","key_serde":"string","value_serde":"int64","window_size_ms":60000,"changelog":"web-per-minute-changelog"}]`},

		// Key-value store.
		{"/stores/counts/keys/a", 200, `{"store":"counts","partition":0,"key":"a","value":3}`},
		{"/stores/counts/keys?hex=62", 200, `{"store":"counts","partition":0,"key":"b","value":2}`},
		{"/stores/counts/keys/?hex=63", 200, `{"store":"counts","partition":0,"key":"c","value":1}`},
		{"/stores/counts", 200, `{"store":"counts","entries":[{"partition":0,"key":"a","value":3},{"partition":0,"key":"b","value":2},{"partition":0,"key":"c","value":1}],"more":false}`},
		{"/stores/counts?from=b", 200, `{"store":"counts","entries":[{"partition":0,"key":"b","value":2},{"partition":0,"key":"c","value":1}],"more":false}`},
		{"/stores/counts?to=b&limit=5", 200, `{"store":"counts","entries":[{"partition":0,"key":"a","value":3}],"more":false}`},
		{"/stores/counts?from_hex=62&limit=1", 200, `{"store":"counts","entries":[{"partition":0,"key":"b","value":2}],"more":true}`},

		// Window store.
		{"/stores/per-minute/keys/u1", 200, `{"store":"per-minute","partition":0,"key":"u1","windows":[` +
			`{"partition":0,"key":"u1","start":"` + ts(0) + `","end":"` + ts(time.Minute) + `","value":2},` +
			`{"partition":0,"key":"u1","start":"` + ts(time.Minute) + `","end":"` + ts(2*time.Minute) + `","value":1}]}`},
		{"/stores/per-minute/windows?from=" + url.QueryEscape(ts(time.Minute)), 200, `{"store":"per-minute","windows":[` +
			`{"partition":0,"key":"u1","start":"` + ts(time.Minute) + `","end":"` + ts(2*time.Minute) + `","value":1},` +
			`{"partition":0,"key":"u2","start":"` + ts(time.Minute) + `","end":"` + ts(2*time.Minute) + `","value":1}],"more":false}`},
		{"/stores/per-minute/windows?key=u1&to=" + url.QueryEscape(ts(time.Minute)), 200, `{"store":"per-minute","windows":[` +
			`{"partition":0,"key":"u1","start":"` + ts(0) + `","end":"` + ts(time.Minute) + `","value":2}],"more":false}`},
		{"/stores/per-minute/windows?limit=1", 200, `{"store":"per-minute","windows":[` +
			`{"partition":0,"key":"u1","start":"` + ts(0) + `","end":"` + ts(time.Minute) + `","value":2}],"more":true}`},
		{"/stores/per-minute/windows?key_hex=7532&from=" + url.QueryEscape(ts(time.Hour)), 200, `{"store":"per-minute","windows":[],"more":false}`},

		// Errors.
		{"/stores/nope/keys/a", 404, `{"error":"no store \"nope\" in the topology (GET /stores lists them)"}`},
		{"/stores/counts/keys/zzz", 404, `{"error":"store counts has no key \"zzz\""}`},
		{"/stores/per-minute/keys/u9", 404, `{"error":"store per-minute has no key \"u9\""}`},
		{"/stores/counts/keys/", 400, `{"error":"missing key: /stores/counts/keys/{key} or ?hex="}`},
		{"/stores/counts/keys/a?hex=61", 400, `{"error":"give the key in the path or as ?hex=, not both"}`},
		{"/stores/counts/keys?hex=zz", 400, `{"error":"key: encoding/hex: invalid byte: U+007A 'z'"}`},
		{"/stores/counts?limit=0", 400, `{"error":"limit: \"0\" is not a positive number"}`},
		{"/stores/counts?from=a&from_hex=61", 400, `{"error":"give from or from_hex, not both"}`},
		{"/stores/per-minute", 400, `{"error":"store per-minute is a window store: query /stores/per-minute/windows or /stores/per-minute/keys/{key}"}`},
		{"/stores/counts/windows", 400, `{"error":"store counts is a key-value store: query /stores/counts or /stores/counts/keys/{key}"}`},
		{"/stores/per-minute/windows?from=yesterday", 400, `{"error":"from: \"yesterday\" is not an RFC 3339 time such as 2025-01-02T15:04:05Z"}`},
		{"/topology?format=png", 400, `{"error":"format \"png\": want text, mermaid or dot"}`},
	} {
		code, body := httpGet(t, srv, c.path)
		if code != c.code || strings.TrimSuffix(body, "\n") != c.body {
			t.Errorf("GET %s = %d %s\nwant %d %s", c.path, code, body, c.code, c.body)
		}
	}

	for format, want := range map[string]string{"": r.app.Describe(), "?format=text": r.app.Describe(),
		"?format=mermaid": r.app.Mermaid(), "?format=dot": r.app.DOT()} {
		if code, body := httpGet(t, srv, "/topology"+format); code != 200 || body != want {
			t.Errorf("GET /topology%s = %d\n%s\nwant\n%s", format, code, body, want)
		}
	}

	// Tasks: three sub-topologies (word count splits at its repartition
	// topic) of one partition each, all running and caught up.
	code, body := httpGet(t, srv, "/tasks")
	var tasks []struct {
		ID         string `json:"id"`
		Running    bool   `json:"running"`
		StreamTime string `json:"stream_time"`
		Inputs     []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
			Lag       int64  `json:"lag"`
		} `json:"inputs"`
		Stores []struct {
			Store     string `json:"store"`
			Changelog string `json:"changelog"`
			Done      bool   `json:"done"`
		} `json:"stores"`
	}
	if err := json.Unmarshal([]byte(body), &tasks); code != 200 || err != nil {
		t.Fatalf("GET /tasks = %d %s (%v)", code, body, err)
	}
	byID := make(map[string]string)
	for _, tk := range tasks {
		if !tk.Running || len(tk.Inputs) != 1 {
			t.Errorf("task %+v", tk)
			continue
		}
		in := tk.Inputs[0]
		byID[tk.ID] = in.Topic
		if in.Topic == "clicks" && (in.Offset != 4 || in.Lag != 0 || tk.StreamTime != ts(75*time.Second) ||
			len(tk.Stores) != 1 || tk.Stores[0] != struct {
			Store     string `json:"store"`
			Changelog string `json:"changelog"`
			Done      bool   `json:"done"`
		}{"per-minute", "web-per-minute-changelog", true}) {
			t.Errorf("clicks task: %s", body)
		}
	}
	if len(byID) != 3 || byID["0_0"] != "text" || byID["1_0"] != "web-words-repartition" || byID["2_0"] != "clicks" {
		t.Errorf("GET /tasks: %s", body)
	}

	code, body = httpGet(t, srv, "/metrics")
	var metrics map[string]int64
	if err := json.Unmarshal([]byte(body), &metrics); code != 200 || err != nil || metrics[MetricRecordsProcessed] < 6 {
		t.Errorf("GET /metrics = %d %s (%v)", code, body, err)
	}

	resp, err := srv.Client().Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
	}
}

// TestHTTPBeforeRun: an App that has not joined its group answers key
// queries with 503 and has no tasks.
func TestHTTPBeforeRun(t *testing.T) {
	app, err := NewApp(wordCount("text", "out"), AppConfig{ApplicationID: "idle", Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	code, body := httpGet(t, srv, "/stores/counts/keys/a")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no tasks yet") {
		t.Errorf("key query before Run = %d %s", code, body)
	}
	if code, body := httpGet(t, srv, "/tasks"); code != 200 || body != "[]\n" {
		t.Errorf("GET /tasks before Run = %d %q", code, body)
	}
	if code, body := httpGet(t, srv, "/"); code != 200 || !strings.Contains(body, "/stores/{name}/windows") {
		t.Errorf("GET / = %d %s", code, body)
	}
	if code, _ := httpGet(t, srv, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d", code)
	}
}

func TestHTTPQueryStatus(t *testing.T) {
	for _, c := range []struct {
		err      error
		hasTasks bool
		want     int
	}{
		{fmt.Errorf("x: %w", ErrStoreNotFound), true, 404},
		{fmt.Errorf("x: %w", ErrNotLocal), true, 421},
		{fmt.Errorf("x: %w", ErrNotLocal), false, 503},
		{fmt.Errorf("disk on fire"), true, 500},
	} {
		if got := queryStatus(c.err, c.hasTasks); got != c.want {
			t.Errorf("queryStatus(%v, %v) = %d, want %d", c.err, c.hasTasks, got, c.want)
		}
	}
}

func TestHTTPKeyFromText(t *testing.T) {
	for _, c := range []struct {
		serde, text, hex string
	}{
		{"string", "héllo", hex.EncodeToString([]byte("héllo"))},
		{"int64", "-2", "fffffffffffffffe"},
		{"int64", "258", "0000000000000102"},
		{"float64", "1.5", "3ff8000000000000"},
		{"json", ` {"a": [1, "<b>"]} `, hex.EncodeToString([]byte(`{"a":[1,"\u003cb\u003e"]}`))},
	} {
		b, err := keyFromText(c.serde, c.text)
		if err != nil || hex.EncodeToString(b) != c.hex {
			t.Errorf("keyFromText(%s, %q) = %x, %v; want %s", c.serde, c.text, b, err, c.hex)
		}
	}
	// The json case matches what the json serde writes.
	want, _ := serde.JSON[map[string]any]().Serialize(map[string]any{"a": []any{1, "<b>"}})
	if got, _ := keyFromText("json", `{"a":[1,"<b>"]}`); string(got) != string(want) {
		t.Errorf("json key %s, serde writes %s", got, want)
	}
	for _, c := range []struct{ serde, text string }{
		{"int64", "1.5"}, {"int64", "99999999999999999999"}, {"float64", "x"}, {"json", "{"}, {"bytes", "00"}, {"msgpack", "a"}, {"", "a"},
	} {
		if b, err := keyFromText(c.serde, c.text); err == nil {
			t.Errorf("keyFromText(%s, %q) = %x, want an error", c.serde, c.text, b)
		}
	}
}
