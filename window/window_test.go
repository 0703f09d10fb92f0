package window_test

import (
	"errors"
	"testing"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/window"
)

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestWindowForBoundaries(t *testing.T) {
	spec := window.Tumbling(10 * time.Millisecond)
	tests := []struct {
		ts, start int64
	}{
		{0, 0}, {1, 0}, {9, 0}, {10, 10}, {19, 10}, {20, 20},
		{-1, -10}, {-10, -10}, {-11, -20}, // before 1970 still rounds down
		{1_700_000_000_005, 1_700_000_000_000},
	}
	for _, tt := range tests {
		w := spec.WindowFor(ms(tt.ts))
		if !w.Start.Equal(ms(tt.start)) || !w.End.Equal(ms(tt.start+10)) {
			t.Errorf("WindowFor(%d) = %v, want [%d,%d)", tt.ts, w, tt.start, tt.start+10)
		}
		if !w.Contains(ms(tt.ts)) || w.Contains(w.End) || !w.Contains(w.Start) {
			t.Errorf("window %v does not contain %d, or contains its end", w, tt.ts)
		}
	}
	// Sub-millisecond timestamps fall in the window of their millisecond.
	w := spec.WindowFor(ms(10).Add(-time.Nanosecond))
	if !w.Start.Equal(ms(0)) {
		t.Errorf("9.999999ms fell in %v", w)
	}
	// Epoch-aligned: a minute window starts on the minute, in UTC.
	ts := time.Date(2024, 5, 1, 12, 3, 27, 0, time.FixedZone("CEST", 2*3600))
	w = window.Tumbling(time.Minute).WindowFor(ts)
	if got := w.String(); got != "[2024-05-01T10:03:00Z,2024-05-01T10:04:00Z)" {
		t.Errorf("minute window = %s", got)
	}
}

func TestGraceAndClose(t *testing.T) {
	spec := window.Tumbling(time.Minute)
	if spec.GracePeriod() != 0 {
		t.Fatalf("default grace = %v, want 0", spec.GracePeriod())
	}
	w := spec.WindowFor(ms(30_000)) // [0, 60s)
	tests := []struct {
		grace  time.Duration
		stream int64
		closed bool
	}{
		{0, 59_999, false},
		{0, 60_000, true}, // closes exactly at end + grace
		{10 * time.Second, 60_000, false},
		{10 * time.Second, 69_999, false},
		{10 * time.Second, 70_000, true},
	}
	for _, tt := range tests {
		s := spec.Grace(tt.grace)
		if got := s.Closed(w, ms(tt.stream)); got != tt.closed {
			t.Errorf("grace %v, stream time %d: Closed = %v, want %v", tt.grace, tt.stream, got, tt.closed)
		}
	}
	s := spec.Grace(10 * time.Second)
	if s.Retention() != 70*time.Second || !s.CloseTime(w).Equal(ms(70_000)) {
		t.Errorf("Retention %v, CloseTime %v", s.Retention(), s.CloseTime(w))
	}
	if spec.GracePeriod() != 0 {
		t.Error("Grace modified the spec it was called on")
	}
	if s.String() != "tumbling 1m0s grace 10s" {
		t.Errorf("String = %q", s)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		spec window.Spec
		ok   bool
	}{
		{window.Tumbling(time.Minute), true},
		{window.Tumbling(time.Millisecond).Grace(time.Hour), true},
		{window.Tumbling(0), false},
		{window.Tumbling(-time.Second), false},
		{window.Tumbling(1500 * time.Microsecond), false},
		{window.Tumbling(time.Second).Grace(-1), false},
		{window.Spec{}, false},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, window.ErrInvalidSpec)) {
			t.Errorf("%v.Validate() = %v", tt.spec, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("WindowFor on an invalid spec did not panic")
		}
	}()
	window.Tumbling(0).WindowFor(time.Now())
}

func TestWindowedSerde(t *testing.T) {
	spec := window.Tumbling(5 * time.Minute)
	ws := window.WindowedSerde(serde.String(), spec.Size())
	in := window.Windowed[string]{Key: "user-7", Window: spec.WindowFor(ms(1_700_000_123_456))}

	b, err := ws.Serialize(in)
	if err != nil {
		t.Fatal(err)
	}
	// Kafka's TimeWindowedSerializer layout: key bytes, then start ms big-endian.
	start := in.Window.Start.UnixMilli()
	want := append([]byte("user-7"), byte(start>>56), byte(start>>48), byte(start>>40), byte(start>>32),
		byte(start>>24), byte(start>>16), byte(start>>8), byte(start))
	if string(b) != string(want) {
		t.Fatalf("serialized % x, want % x", b, want)
	}
	out, err := ws.Deserialize(b)
	if err != nil || out != in {
		t.Fatalf("round trip = %v, %v; want %v", out, err, in)
	}
	if out.String() != "user-7@[2023-11-14T22:15:00Z,2023-11-14T22:20:00Z)" {
		t.Fatalf("String = %s", out)
	}
	if ws.Name != "windowed(string)" {
		t.Fatalf("Name = %q", ws.Name)
	}

	// An int64 key whose bytes are invalid surfaces the key serde's error.
	_, err = window.WindowedSerde(serde.Int64(), time.Minute).Deserialize(make([]byte, 11))
	if !errors.Is(err, serde.ErrDecode) {
		t.Fatalf("bad inner key: %v", err)
	}
	for _, short := range [][]byte{nil, {1, 2, 3}} {
		if _, err := ws.Deserialize(short); !errors.Is(err, serde.ErrDecode) {
			t.Fatalf("Deserialize(%x) = %v, want ErrDecode", short, err)
		}
	}
	bad := window.WindowedSerde(serde.String(), 0)
	if _, err := bad.Serialize(in); !errors.Is(err, serde.ErrEncode) || !errors.Is(err, window.ErrInvalidSpec) {
		t.Fatalf("size 0 Serialize: %v", err)
	}
}

func TestEmitString(t *testing.T) {
	if window.EmitEveryUpdate.String() != "every-update" || window.EmitFinal.String() != "final" || window.Emit(9).String() != "Emit(9)" {
		t.Fatal("Emit strings")
	}
	var zero window.Emit
	if zero != window.EmitEveryUpdate {
		t.Fatal("the zero Emit is not the default, EmitEveryUpdate")
	}
}

func FuzzWindowedSerde(f *testing.F) {
	ws := window.WindowedSerde(serde.String(), time.Minute)
	seed, _ := ws.Serialize(window.Windowed[string]{Key: "k", Window: window.Tumbling(time.Minute).WindowFor(ms(120_000))})
	f.Add(seed)
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ws.Deserialize(b)
		if err != nil {
			if !errors.Is(err, serde.ErrDecode) {
				t.Fatalf("error %v is not ErrDecode", err)
			}
			return
		}
		again, err := ws.Serialize(w)
		if err != nil || string(again) != string(b) {
			t.Fatalf("re-serialized % x, input % x (%v)", again, b, err)
		}
	})
}
