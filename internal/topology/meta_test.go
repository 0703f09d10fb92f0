package topology

import (
	"testing"
	"time"

	"github.com/weir-io/weir/state"
)

func TestStoreMeta(t *testing.T) {
	kv := &Store{Name: "counts", Kind: StoreKeyValue, Changelog: true,
		KeyCodec: Codec{Name: "string"}, ValCodec: Codec{Name: "int64"}}
	want := state.Meta{Name: "counts", Kind: state.KindKeyValue, KeySerde: "string", ValueSerde: "int64", Changelog: "app-counts-changelog"}
	if got := kv.Meta("app"); got != want {
		t.Errorf("kv Meta = %+v, want %+v", got, want)
	}

	w := &Store{Name: "per-minute", Kind: StoreWindow, WindowSize: time.Minute,
		KeyCodec: Codec{Name: WindowStoreKeyName("msgpack")}, ValCodec: Codec{Name: "float64"}}
	want = state.Meta{Name: "per-minute", Kind: state.KindWindow, KeySerde: "msgpack", ValueSerde: "float64", WindowSizeMs: 60000}
	if got := w.Meta("app"); got != want {
		t.Errorf("window Meta = %+v, want %+v", got, want)
	}
	if err := w.Meta("app").Validate(); err != nil {
		t.Error(err)
	}

	// A key codec named some other way is reported as it is.
	w.KeyCodec.Name = "custom"
	if got := w.KeySerde(); got != "custom" {
		t.Errorf("KeySerde = %q, want custom", got)
	}
}
