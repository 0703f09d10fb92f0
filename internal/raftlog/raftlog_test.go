package raftlog

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestReopenInProcess checks that Close releases everything: raft-wal's
// own Close leaves its bolt metadata file locked, so a broker restarting a
// group in the same process would hang on the second Open.
func TestReopenInProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	logs := []*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}}
	if err := s.Logs.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.Stable.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{Cache: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got raft.Log
	if err := s.Logs.GetLog(2, &got); err != nil || string(got.Data) != "b" {
		t.Fatalf("entry 2 after reopen: %q, %v", got.Data, err)
	}
	if term, err := s.Stable.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
		t.Fatalf("term after reopen: %d, %v", term, err)
	}
}
