package topology

import (
	"strings"

	"github.com/weir-io/weir/state"
)

// windowStoreKeyPrefix and ")" wrap the record key's serde name in the name
// of a window store's key codec.
const windowStoreKeyPrefix = "window-store("

// WindowStoreKeyName names the key codec of a window store whose record keys
// use the serde named keySerde. KeySerde undoes it.
func WindowStoreKeyName(keySerde string) string {
	return windowStoreKeyPrefix + keySerde + ")"
}

// KeySerde is the name of the serde of the store's record keys: its key
// codec's name, or for a window store the name inside WindowStoreKeyName.
// It is what a caller encodes a key with to look it up.
func (s *Store) KeySerde() string {
	name := s.KeyCodec.Name
	if s.Kind == StoreWindow {
		if inner, ok := strings.CutPrefix(name, windowStoreKeyPrefix); ok && strings.HasSuffix(inner, ")") {
			return strings.TrimSuffix(inner, ")")
		}
	}
	return name
}

// Meta describes the store on disk for tools (state.WriteMeta).
func (s *Store) Meta(appID string) state.Meta {
	m := state.Meta{Name: s.Name, Kind: state.KindKeyValue, KeySerde: s.KeySerde(), ValueSerde: s.ValCodec.Name}
	if s.Kind == StoreWindow {
		m.Kind, m.WindowSizeMs = state.KindWindow, s.WindowSize.Milliseconds()
	}
	if s.Changelog {
		m.Changelog = s.ChangelogTopic(appID)
	}
	return m
}
