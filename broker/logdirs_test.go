package broker_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-io/weir/broker"
	"github.com/weir-io/weir/broker/brokertest"
)

// TestDescribeLogDirs checks what kafka-log-dirs.sh shows: the data
// directory, its volume's space, and the size of each partition in it.
func TestDescribeLogDirs(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, brokertest.WithDataDir(dir), brokertest.WithConfig(func(c *broker.Config) { c.DefaultPartitions = 2 }))
	cl := client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation())
	ctx := context.Background()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "sized", Partition: 0, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	abs, _ := filepath.Abs(dir)
	d, ok := dirs[abs]
	if len(dirs) != 1 || !ok || d.Err != nil {
		t.Fatalf("log dirs %+v, want just %s", dirs, abs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Errorf("volume of %s: total %d, usable %d", abs, d.TotalBytes, d.UsableBytes)
	}
	p0, ok0 := dirs.LookupPartition("sized", 0)
	p1, ok1 := dirs.LookupPartition("sized", 1)
	if !ok0 || !ok1 || p0.Size <= p1.Size || p0.OffsetLag != 0 {
		t.Errorf("sized-0 %+v (found %v), sized-1 %+v (found %v): want both, the first larger, no lag", p0, ok0, p1, ok1)
	}
	one, err := adm.DescribeBrokerLogDirs(ctx, 1, kadm.TopicsSet{"sized": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := one.SortedPartitions(); len(got) != 1 || got[0].Partition != 1 {
		t.Errorf("asked for sized-1 only, got %+v", got)
	}
}
