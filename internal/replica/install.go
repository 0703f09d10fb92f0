package replica

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weir-io/weir/internal/partlog"
)

// Installing a streamed snapshot happens in two steps, both inside the
// partition directory (the broker owns its parent and removes unknown
// directories there):
//
//  1. stage: the segments are written into the subdirectory .install as
//     they arrive, then opened once with partlog (which rebuilds their
//     indexes and checks every batch), cut to the log start, closed, and
//     given a checkpoint. The checkpoint, written last, marks the stage
//     complete.
//  2. swap (Restore): the live log is closed, the marker file
//     replica.installing is written listing the staged files, every other
//     file in the partition directory is removed, the staged files are
//     renamed in, and the marker is removed. OpenFSM finishes a swap a
//     crash interrupted; the marker's list tells a file already moved in
//     from a stale one of the same name.
const (
	stageDir      = ".install"
	installMarker = "replica.installing"
)

// stager is the segmentSink that writes a stream's segments into the
// stage directory.
type stager struct {
	dir string
	f   *os.File
	w   *bufio.Writer
}

func (s *stager) begin(base int64) error {
	if err := s.finish(); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, segmentFileName(base)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	s.f = f
	s.w = bufio.NewWriterSize(f, 1<<20)
	return nil
}

func (s *stager) batch(b []byte) error {
	_, err := s.w.Write(b)
	return err
}

// finish flushes, fsyncs and closes the segment being written.
func (s *stager) finish() error {
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	if err == nil {
		err = s.f.Sync()
	}
	err = errors.Join(err, s.f.Close())
	s.f, s.w = nil, nil
	if err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	return nil
}

// stage writes the data part of a snapshot stream whose head decoded as
// st into partDir/.install, replacing whatever was staged before, and
// completes it into a partition directory holding [st.LogStart,
// st.LogEnd) with a checkpoint of st.
func stage(partDir string, cfg partlog.Config, r io.Reader, st fsmState) error {
	dir := filepath.Join(partDir, stageDir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	s := &stager{dir: dir}
	next, err := readSegments(r, &st, s)
	if err = errors.Join(err, s.finish()); err != nil {
		return err
	}
	if next < st.LogEnd {
		// The log ends in a gap (compaction dropped the last batches of
		// a sealed segment) or holds nothing: an empty segment at the log
		// end gives partlog the right end offset.
		if err := s.begin(st.LogEnd); err != nil {
			return err
		}
		if err := s.finish(); err != nil {
			return err
		}
	}
	if err := completeStage(dir, cfg, st); err != nil {
		return err
	}
	return saveCheckpoint(dir, &st)
}

// completeStage opens the staged segments as a log, which rebuilds and
// writes their indexes, raises the log start and checks the log end.
func completeStage(dir string, cfg partlog.Config, st fsmState) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	l, err := partlog.Open(dir, cfg)
	if err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	if st.LogStart > l.StartOffset() {
		err = l.DeleteBefore(st.LogStart)
	}
	if end := l.EndOffset(); err == nil && end != st.LogEnd {
		err = fmt.Errorf("%w: staged log ends at %d, snapshot at %d", errBadStream, end, st.LogEnd)
	}
	if err = errors.Join(err, l.Close()); err != nil {
		return fmt.Errorf("replica: stage: %w", err)
	}
	return nil
}

// staged reports whether a complete stage of the snapshot st is waiting
// in partDir.
func staged(partDir string, st *fsmState) bool {
	got, ok, err := readCheckpoint(filepath.Join(partDir, stageDir))
	return err == nil && ok && got.Index == st.Index && got.LogEnd == st.LogEnd
}

// dropStage removes a stage nobody will install.
func dropStage(partDir string) error {
	return os.RemoveAll(filepath.Join(partDir, stageDir))
}

// swapStage replaces the partition files in partDir with the staged ones.
// The log must be closed.
func swapStage(partDir string) error {
	entries, err := os.ReadDir(filepath.Join(partDir, stageDir))
	if err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if err := writeFileAtomic(partDir, installMarker, []byte(strings.Join(names, "\n"))); err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	return finishSwap(partDir)
}

// finishSwap completes a swap whose marker is written; it is idempotent,
// so a crash anywhere in it is finished by running it again.
func finishSwap(partDir string) error {
	b, err := os.ReadFile(filepath.Join(partDir, installMarker))
	if err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	listed := map[string]bool{}
	for _, n := range strings.Split(string(b), "\n") {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
			return fmt.Errorf("replica: install: bad name %q in %s", n, installMarker)
		}
		listed[n] = true
	}
	stage := filepath.Join(partDir, stageDir)
	if err := removeUnlisted(partDir, stage, listed); err != nil {
		return err
	}
	for n := range listed {
		err := os.Rename(filepath.Join(stage, n), filepath.Join(partDir, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replica: install: %w", err)
		}
	}
	if err := syncDir(partDir); err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	if err := os.RemoveAll(stage); err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	if err := os.Remove(filepath.Join(partDir, installMarker)); err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	return syncDir(partDir)
}

// removeUnlisted removes the regular files of partDir except the marker
// and the listed files already moved in (listed, and gone from the
// stage). All removals finish before the first rename, so a listed file
// still in the stage means the one in partDir is stale.
func removeUnlisted(partDir, stage string, listed map[string]bool) error {
	entries, err := os.ReadDir(partDir)
	if err != nil {
		return fmt.Errorf("replica: install: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || n == installMarker {
			continue
		}
		if listed[n] {
			if _, err := os.Stat(filepath.Join(stage, n)); errors.Is(err, os.ErrNotExist) {
				continue // moved in already
			}
		}
		if err := os.Remove(filepath.Join(partDir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replica: install: %w", err)
		}
	}
	return nil
}

// swapPending reports whether a swap was interrupted in partDir.
func swapPending(partDir string) bool {
	_, err := os.Stat(filepath.Join(partDir, installMarker))
	return err == nil
}

// writeFileAtomic writes dir/name through a temporary file: write, fsync,
// rename, fsync of the directory. Readers see the old or the new content.
func writeFileAtomic(dir, name string, b []byte) error {
	p := filepath.Join(dir, name)
	tmp := p + ".new"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = fh.Write(b)
	if err == nil {
		err = fh.Sync()
	}
	if err = errors.Join(err, fh.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that creations and renames in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
