package broker

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMetaRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	m, err := loadMeta(dir)
	if err != nil || m.ClusterID == "" || len(m.Topics) != 0 {
		t.Fatalf("fresh dir: %+v %v", m, err)
	}
	m.ProducerIDLimit = 2000
	m.Topics = []metaTopic{{Name: "t", ID: newUUID(), Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}}}
	if err := saveMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := loadMeta(dir)
	if err != nil || got.ClusterID != m.ClusterID || got.ProducerIDLimit != 2000 || got.Topics[0].ID != m.Topics[0].ID {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{`{"version":1,"topics":[`, `{"version":1,"topics":[{"name":"../escape","partitions":1}]}`} {
		os.WriteFile(filepath.Join(dir, metaFileName), []byte(bad), 0o644)
		if _, err := loadMeta(dir); err == nil {
			t.Fatalf("metadata %s loaded without error", bad)
		}
	}
}

// FuzzLoadMeta: any bytes in the metadata file give a value or an error,
// never a panic.
func FuzzLoadMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"cluster_id":"x","topics":[{"name":"t","partitions":1}]}`))
	f.Add([]byte(`{"version":2}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(dir, metaFileName), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := loadMeta(dir)
		if err != nil {
			return
		}
		if m.Version != 1 {
			t.Fatalf("accepted version %d", m.Version)
		}
		for _, tp := range m.Topics {
			if validateTopicName(tp.Name) != nil || tp.Partitions < 1 {
				t.Fatalf("accepted topic %q with %d partitions", tp.Name, tp.Partitions)
			}
		}
	})
}
