package stream_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/weir-io/weir/serde"
	"github.com/weir-io/weir/stream"
	"github.com/weir-io/weir/stream/streamtest"
	"github.com/weir-io/weir/window"
)

type sale struct {
	Region string
	Amount float64
}

// revenue sums sales per region in one-minute windows with 10 s of grace.
func revenue(b *stream.Builder, opts ...stream.Option) {
	grouped := stream.From(b, "sales", serde.String(), serde.JSON[sale]()).
		GroupBy(func(_ string, s sale) (string, error) { return s.Region, nil }, serde.String(), serde.JSON[sale]())
	stream.WindowedBy(grouped, window.Tumbling(time.Minute).Grace(10*time.Second), opts...).
		Aggregate(func() (float64, error) { return 0, nil },
			func(_ string, s sale, sum float64) (float64, error) { return sum + s.Amount, nil },
			serde.Float64(), stream.Named("revenue")).
		ToStream().
		Map(func(k window.Windowed[string], sum float64) (string, string, error) {
			return k.Key, fmt.Sprintf("%s %.0f", k.Window.Start.Format("15:04"), sum), nil
		}).
		To("revenue-out", serde.String(), serde.String())
}

var base = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestWindowedFinalResultsIncludeGraceAndDropLate(t *testing.T) {
	b := stream.NewBuilder()
	revenue(b, stream.EmitFinal())
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "sales", serde.String(), serde.JSON[sale]())
	out := streamtest.Output(d, "revenue-out", serde.String(), serde.String())
	at := func(s time.Duration) time.Time { return base.Add(s) }

	in.Pipe("1", sale{"eu", 10}, at(5*time.Second)) // window 12:00
	in.Pipe("2", sale{"us", 7}, at(30*time.Second)) // window 12:00
	in.Pipe("3", sale{"eu", 5}, at(65*time.Second)) // window 12:01; stream time 12:01:05
	in.Pipe("4", sale{"eu", 1}, at(50*time.Second)) // late but within grace (12:00 closes at 12:01:10)
	if got := out.ReadAll(); len(got) != 0 {
		t.Fatalf("results before any window closed: %+v", got)
	}
	in.Pipe("5", sale{"us", 3}, at(71*time.Second))   // stream time 12:01:11 closes 12:00
	in.Pipe("6", sale{"eu", 100}, at(20*time.Second)) // past grace: dropped
	got := out.ReadAll()
	want := map[string]string{"eu": "12:00 11", "us": "12:00 7"}
	if len(got) != 2 || !maps.Equal(map[string]string{got[0].Key: got[0].Value, got[1].Key: got[1].Value}, want) {
		t.Fatalf("final results %+v, want exactly %v", got, want)
	}
	if n := d.Metric("dropped-late-records"); n != 1 {
		t.Fatalf("dropped-late-records = %d, want 1", n)
	}
	in.Pipe("7", sale{"eu", 1}, at(200*time.Second)) // closes 12:01
	got = out.ReadAll()
	want = map[string]string{"eu": "12:01 5", "us": "12:01 3"}
	if len(got) != 2 || !maps.Equal(map[string]string{got[0].Key: got[0].Value, got[1].Key: got[1].Value}, want) {
		t.Fatalf("second windows %+v, want %v", got, want)
	}
}

func TestWindowedEveryUpdate(t *testing.T) {
	b := stream.NewBuilder()
	revenue(b)
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "sales", serde.String(), serde.JSON[sale]())
	out := streamtest.Output(d, "revenue-out", serde.String(), serde.String())
	in.Pipe("1", sale{"eu", 10}, base)
	in.Pipe("2", sale{"eu", 5}, base.Add(time.Second))
	got := out.ReadAll()
	if len(got) != 2 || got[0].Value != "12:00 10" || got[1].Value != "12:00 15" {
		t.Fatalf("updates %+v", got)
	}
}

func TestWindowedStoreSurvivesInTheDriver(t *testing.T) {
	b := stream.NewBuilder()
	revenue(b, stream.EmitFinal())
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "sales", serde.String(), serde.JSON[sale]())
	in.Pipe("1", sale{"eu", 10}, base)
	d.Commit()
	ws := window.NewStore(d.Store("revenue", 0), 0)
	raw, err := ws.Get([]byte("eu"), base)
	if err != nil || raw == nil {
		t.Fatalf("window store has no eu@12:00: %v", err)
	}
	if v, _ := serde.Float64().Deserialize(raw); v != 10 {
		t.Fatalf("stored %v", v)
	}
}

func TestAdvanceTimeClosesWindows(t *testing.T) {
	b := stream.NewBuilder()
	revenue(b, stream.EmitFinal())
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "sales", serde.String(), serde.JSON[sale]())
	out := streamtest.Output(d, "revenue-out", serde.String(), serde.String())
	in.Pipe("1", sale{"eu", 10}, base)
	d.AdvanceTime(base.Add(69 * time.Second))
	if got := out.ReadAll(); len(got) != 0 {
		t.Fatalf("window closed before end + grace: %+v", got)
	}
	d.AdvanceTime(base.Add(70 * time.Second))
	if got := out.ReadAll(); len(got) != 1 || got[0].Value != "12:00 10" {
		t.Fatalf("after advancing to the close time: %+v", got)
	}
}
