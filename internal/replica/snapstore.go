package replica

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// snapshotStore is the raft.SnapshotStore of a partition. Locally it keeps
// only each snapshot's head (the applied state, a few KiB): the segment
// files are the data and are not copied on every snapshot. Open, which
// raft calls to send a snapshot to a follower that fell behind the
// leader's compacted Raft log, streams the head followed by the segment
// files as they are at that moment, up to the snapshot's log end. On the
// receiving side the sink stages the segments into the partition
// directory as they arrive, and Restore swaps them in.
//
// Layout: dir/<id>/meta.json (raft.SnapshotMeta) and dir/<id>/state
// (the encoded fsmState); a snapshot being written is dir/<id>.tmp.
type snapshotStore struct {
	dir    string
	fsm    *FSM
	retain int
	logger hclog.Logger
}

var _ raft.SnapshotStore = (*snapshotStore)(nil)

const (
	snapshotRetain = 2 // raft needs one; the previous helps a slow reader
	tmpSuffix      = ".tmp"
	metaFile       = "meta.json"
	stateFile      = "state"
)

// newSnapshotStore opens the store in dir, dropping unfinished snapshots.
func newSnapshotStore(dir string, fsm *FSM, logger hclog.Logger) (*snapshotStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: snapshot store: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot store: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("replica: snapshot store: %w", err)
			}
		}
	}
	return &snapshotStore{dir: dir, fsm: fsm, retain: snapshotRetain, logger: logger}, nil
}

// Create implements raft.SnapshotStore. The sink accepts a snapshot
// stream: the head only (the FSM's own snapshots) or the head with
// segment data (a snapshot installed from the leader), which it decodes
// and stages as it is written.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("replica: unsupported snapshot version %d", version)
	}
	meta := raft.SnapshotMeta{
		Version: version, ID: fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli()),
		Index: index, Term: term, Configuration: configuration, ConfigurationIndex: configurationIndex,
	}
	pr, pw := io.Pipe()
	sk := &snapshotSink{store: s, meta: meta, pw: pw, done: make(chan decoded, 1)}
	go sk.decode(pr)
	return sk, nil
}

// List implements raft.SnapshotStore: newest first.
func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot store: %w", err)
	}
	var out []*raft.SnapshotMeta
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), tmpSuffix) {
			continue
		}
		m, err := s.readMeta(e.Name())
		if err != nil {
			s.logger.Warn("skipping unreadable snapshot", "id", e.Name(), "error", err)
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *raft.SnapshotMeta) int {
		return cmp.Or(cmp.Compare(b.Term, a.Term), cmp.Compare(b.Index, a.Index), strings.Compare(b.ID, a.ID))
	})
	return out, nil
}

// Open implements raft.SnapshotStore. The stream carries the partition
// data whenever this replica holds it (see planStream).
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, err := s.readMeta(id)
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id, stateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("replica: snapshot %s: %w", id, err)
	}
	st, err := decodeState(b)
	if err != nil {
		return nil, nil, fmt.Errorf("replica: snapshot %s: %w", id, err)
	}
	l := s.fsm.Log()
	src, err := planStream(s.fsm.dir, st, l.StartOffset(), l.EndOffset())
	if err != nil {
		return nil, nil, err
	}
	meta.Size = src.size
	return meta, struct {
		io.Reader
		io.Closer
	}{src.reader(), src}, nil
}

func (s *snapshotStore) readMeta(id string) (*raft.SnapshotMeta, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return nil, fmt.Errorf("replica: bad snapshot id %q", id)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id, metaFile))
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot %s: %w", id, err)
	}
	var m raft.SnapshotMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("replica: snapshot %s: %w", id, err)
	}
	return &m, nil
}

// save stores a finished snapshot: written under a temporary name,
// fsynced, renamed into place, then older snapshots beyond retain go.
func (s *snapshotStore) save(meta raft.SnapshotMeta, st *fsmState) error {
	meta.Size = int64(len(appendStreamHead(nil, st, false)))
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, meta.ID+tmpSuffix)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(tmp, stateFile, appendState(nil, st)); err != nil {
		return err
	}
	if err := writeFileAtomic(tmp, metaFile, mb); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, meta.ID)); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return s.reap()
}

// reap removes all but the newest retain snapshots.
func (s *snapshotStore) reap() error {
	all, err := s.List()
	if err != nil {
		return err
	}
	for _, m := range all[min(s.retain, len(all)):] {
		if err := os.RemoveAll(filepath.Join(s.dir, m.ID)); err != nil {
			return err
		}
	}
	return nil
}

// snapshotSink decodes the stream written to it on its own goroutine
// (through a pipe), so that segment data goes straight to the stage
// directory without a copy in the store.
//
// Close and Cancel may each be called more than once (FSM.Persist closes
// the sink and raft closes it again); the first call decides.
type snapshotSink struct {
	store *snapshotStore
	meta  raft.SnapshotMeta
	pw    *io.PipeWriter
	done  chan decoded

	once sync.Once
	err  error
}

type decoded struct {
	st      fsmState
	hasData bool // the stream carried segments, so the stage is this sink's
	err     error
}

func (k *snapshotSink) decode(pr *io.PipeReader) {
	st, hasData, err := readStreamHead(pr)
	if err == nil && hasData {
		f := k.store.fsm
		err = stage(f.dir, f.logConfig(), pr, st)
	}
	// Unblock a writer still writing after a failure; after success the
	// stream must be over (readSegments checks), so nothing is lost.
	pr.CloseWithError(cmp.Or(err, errors.New("replica: snapshot stream already complete")))
	k.done <- decoded{st: st, hasData: hasData, err: err}
}

func (k *snapshotSink) ID() string { return k.meta.ID }

func (k *snapshotSink) Write(p []byte) (int, error) { return k.pw.Write(p) }

// Close finishes decoding and stores the snapshot.
func (k *snapshotSink) Close() error {
	k.once.Do(func() {
		k.pw.Close()
		d := <-k.done
		if d.err != nil {
			k.err = errors.Join(d.err, k.dropStage(d))
			return
		}
		k.err = k.store.save(k.meta, &d.st)
	})
	return k.err
}

// Cancel abandons the snapshot.
func (k *snapshotSink) Cancel() error {
	k.once.Do(func() {
		k.pw.CloseWithError(errors.New("replica: snapshot cancelled"))
		k.err = k.dropStage(<-k.done)
	})
	return k.err
}

// dropStage removes what this sink staged, if anything: a sink of the
// FSM's own snapshot must not touch a stage waiting for Restore.
func (k *snapshotSink) dropStage(d decoded) error {
	if !d.hasData {
		return nil
	}
	return dropStage(k.store.fsm.dir)
}
