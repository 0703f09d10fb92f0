package partlog

import (
	"testing"
)

// benchBatch is a produce-sized batch: 100 records of 100-byte values.
func benchBatch(b *testing.B) []byte { return mkBatch(b, 100, 100, 1_700_000_000_000) }

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"nosync", "sync", "sync-parallel"} {
		b.Run(mode, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.SegmentBytes = 256 << 20
			l, err := Open(b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			bt := benchBatch(b)
			b.SetBytes(int64(len(bt)))
			b.ReportAllocs()
			switch mode {
			case "nosync":
				for b.Loop() {
					if _, err := l.Append(bt); err != nil {
						b.Fatal(err)
					}
				}
			case "sync":
				for b.Loop() {
					off, err := l.Append(bt)
					if err != nil {
						b.Fatal(err)
					}
					if err := l.Sync(off + 100); err != nil {
						b.Fatal(err)
					}
				}
			case "sync-parallel":
				// Many producers, each waiting for its own fsync: group
				// commit shares fsyncs between them.
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					own := benchBatch(b)
					for pb.Next() {
						off, err := l.Append(own)
						if err != nil {
							b.Error(err)
							return
						}
						if err := l.Sync(off + 100); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 20
	l, err := Open(b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	bt := benchBatch(b)
	const n = 2000 // ~21 MB
	for range n {
		if _, err := l.Append(bt); err != nil {
			b.Fatal(err)
		}
	}
	leo := l.EndOffset()
	b.Run("catchup-1MiB", func(b *testing.B) {
		b.ReportAllocs()
		off := int64(0)
		var total int64
		for b.Loop() {
			data, err := l.Read(off, 1<<20, leo)
			if err != nil {
				b.Fatal(err)
			}
			total += int64(len(data))
			off += int64(len(data)/len(bt)) * 100
			if off >= leo {
				off = 0
			}
		}
		b.SetBytes(total / int64(b.N))
	})
	// A consumer at the tail: the last few batches, as a long poll woken
	// by an fsync reads them.
	b.Run("tail-3-batches", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(3 * int64(len(bt)))
		for b.Loop() {
			data, err := l.Read(leo-300, 1<<20, leo)
			if err != nil || len(data) != 3*len(bt) {
				b.Fatal(len(data), err)
			}
		}
	})
	b.Run("one-batch", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(bt)))
		i := int64(0)
		for b.Loop() {
			if _, err := l.Read((i*7919)%leo, 1, leo); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
