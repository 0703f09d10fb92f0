package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
)

// writeLegacyDir lays out a data directory as a single node wrote it
// before it ran the controller quorum: weir-metadata.json and one log per
// partition, each holding n records "p<partition>-<i>".
func writeLegacyDir(t *testing.T, dir string, m legacyMeta, n int) {
	t.Helper()
	for _, tp := range m.Topics {
		for p := range tp.Partitions {
			l, err := partlog.Open(filepath.Join(dir, fmt.Sprintf("%s-%d", tp.Name, p)), partlog.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				opts := batch.DefaultBuildOptions()
				opts.BaseTimestamp, opts.MaxTimestamp = time.Now().UnixMilli(), time.Now().UnixMilli()
				raw, err := batch.Build(opts, []batch.Record{{Value: fmt.Appendf(nil, "p%d-%d", p, i)}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Append(raw); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, legacyMetaFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func migrateTestConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.OffsetsPartitions = "127.0.0.1:0", dir, 2
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// TestMigrateLegacySingleNode: a single node's weir-metadata.json becomes
// metadata records on first start — same cluster id, topic ids, partition
// counts, configs and records, producer ids above the old high-water mark
// — and the file is renamed, so later starts read only the image.
func TestMigrateLegacySingleNode(t *testing.T) {
	dir := t.TempDir()
	m := legacyMeta{Version: 1, ClusterID: "legacy-cluster-id", ProducerIDLimit: 7000, Topics: []legacyMetaTopic{
		{Name: "orders", ID: newUUID(), Partitions: 2, Configs: map[string]string{"retention.ms": "3600000"}},
		{Name: "counts", ID: newUUID(), Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
	}}
	const n = 50
	writeLegacyDir(t, dir, m, n)
	for start := range 2 { // migrate, then start again from the image alone
		b, err := Start(context.Background(), migrateTestConfig(dir))
		if err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
		checkMigrated(t, b, m, n)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, legacyMetaFile)); !os.IsNotExist(err) {
			t.Fatalf("start %d: %s still there (%v)", start, legacyMetaFile, err)
		}
		if _, err := os.Stat(filepath.Join(dir, legacyMetaFile+migratedSuffix)); err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
	}
}

func checkMigrated(t *testing.T, b *Broker, m legacyMeta, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if got := b.ClusterID(); got != m.ClusterID {
		t.Fatalf("cluster id %q, want %q", got, m.ClusterID)
	}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range m.Topics {
		d, ok := details[want.Name]
		if !ok || d.ID != kadm.TopicID(want.ID) || len(d.Partitions) != int(want.Partitions) {
			t.Fatalf("topic %s after migration: %+v (want id %x, %d partitions)", want.Name, d, want.ID, want.Partitions)
		}
		rc, err := adm.DescribeTopicConfigs(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want.Configs {
			c, err := rc.On(want.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := configOf(c, k); got != v {
				t.Fatalf("topic %s config %s = %q, want %q", want.Name, k, got, v)
			}
		}
		for p := range want.Partitions {
			got := consumePartition(t, ctx, b.Addr(), want.Name, p, n)
			for i, r := range got {
				if w := fmt.Sprintf("p%d-%d", p, i); string(r.Value) != w || r.Offset != int64(i) {
					t.Fatalf("%s-%d record %d: %q at %d, want %q", want.Name, p, i, r.Value, r.Offset, w)
				}
			}
		}
	}
	id, err := b.cluster.allocateProducerID()
	if err != nil || id < m.ProducerIDLimit {
		t.Fatalf("producer id after migration %d (%v), want at least %d", id, err, m.ProducerIDLimit)
	}
}

func configOf(c kadm.ResourceConfig, name string) string {
	for _, kv := range c.Configs {
		if kv.Key == name && kv.Value != nil {
			return *kv.Value
		}
	}
	return ""
}

func consumePartition(t *testing.T, ctx context.Context, addr, topic string, p int32, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s-%d: read %d of %d records", topic, p, len(got), n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

// TestMigrateRefusesCorruptMetadata: a metadata file that cannot be read
// stops the start with an error naming it, and nothing is deleted.
func TestMigrateRefusesCorruptMetadata(t *testing.T) {
	for _, bad := range []string{
		`{"version":1,"topics":[`,
		`{"version":1,"topics":[{"name":"../escape","id":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"partitions":1}]}`,
		`{"version":2}`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, legacyMetaFile)
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := Start(context.Background(), migrateTestConfig(dir))
		if err == nil {
			b.Close()
			t.Fatalf("metadata %s: broker started", bad)
		}
		if got, _ := os.ReadFile(path); string(got) != bad {
			t.Fatalf("metadata %s: file changed to %q", bad, got)
		}
	}
}

// FuzzReadLegacyMeta: any bytes in the metadata file give a value or an
// error, never a panic, and nothing unsafe is accepted.
func FuzzReadLegacyMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"cluster_id":"x","topics":[{"name":"t","id":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"partitions":1}]}`))
	f.Add([]byte(`{"version":2}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(dir, legacyMetaFile), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		m, ok, err := readLegacyMeta(dir)
		if err != nil || !ok {
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
