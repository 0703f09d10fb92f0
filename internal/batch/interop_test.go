package batch

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Snappy output must be readable by franz-go, whose consumers read what
// compaction rewrites.
func TestSnappyReadableByFranzGo(t *testing.T) {
	raw := bytes.Repeat([]byte("hello snappy world "), 5000)
	enc, err := compress(nil, CodecSnappy, raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := kgo.DefaultDecompressor().Decompress(enc, kgo.CompressionCodecType(CodecSnappy))
	if err != nil {
		t.Fatalf("franz-go cannot decode: %v", err)
	}
	if !bytes.Equal(out, raw) {
		t.Fatal("mismatch")
	}
}

// An empty batch is a bare header; it must say "uncompressed" or clients
// fail to decompress its zero-byte body.
func TestEmptyBatchIsUncompressed(t *testing.T) {
	opts := DefaultBuildOptions()
	opts.Codec = CodecSnappy
	b, err := Build(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Codec() != CodecNone || len(b) != HeaderSize {
		t.Fatalf("empty batch: codec %v, %d bytes; want none, %d", h.Codec(), len(b), HeaderSize)
	}
}
