package replica

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/weir-io/weir/internal/batch"
	"github.com/weir-io/weir/internal/partlog"
)

// adoptIndex and adoptTerm are the Raft position an adopted log is given:
// the first index, so that the group's Raft log starts right after it,
// and the first term, which the first election (from the stable store's
// term 0) reaches.
const (
	adoptIndex = 1
	adoptTerm  = 1
)

// Adopt makes the partition log in cfg.Dir, written without Raft (the
// broker keeps single-replica partitions in a bare partlog), the starting
// state of a new Raft group whose configuration is servers. The log must
// not be open. cfg.ID must be a voter in servers: this replica holds the
// only copy of the data. Any other server in servers must start with
// empty directories and never be bootstrapped; the usual way is to adopt
// with this replica alone and add the others with AddVoter or AddNonvoter.
//
// Adopt writes a snapshot at index 1, term 1, whose configuration is
// servers, and a checkpoint of the whole log at the same index, and no
// Raft log entry. NewGroup(cfg) then starts the group (no Bootstrap):
// raft takes the configuration from the snapshot without restoring it
// (the checkpoint covers it), and entries start at index 2. So a member
// added later cannot be caught up from the Raft log, which does not hold
// the data: the leader sends it an InstallSnapshot, which streams the
// segment files.
//
// Adopt refuses a cfg.Dir that is already a replica's (has a checkpoint)
// and Raft stores that already hold state.
func Adopt(cfg Config, servers []raft.Server) error {
	if !slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == cfg.ID && s.Suffrage == raft.Voter }) {
		return fmt.Errorf("replica: adopt: %q is not a voter of the configuration", cfg.ID)
	}
	_, ok, err := readCheckpoint(cfg.Dir)
	if err != nil {
		return fmt.Errorf("replica: adopt: %w", err)
	}
	if ok || swapPending(cfg.Dir) {
		return fmt.Errorf("replica: adopt: %s already holds a replica", cfg.Dir)
	}
	rc := raft.DefaultConfig()
	if cfg.Raft != nil {
		rc = cfg.Raft
	}
	g := &Group{} // no FSM: the snapshot store is only written to here
	if err := g.openStores(&cfg, rc); err != nil {
		return err
	}
	err = adopt(&cfg, servers)
	if g.stores != nil {
		err = errors.Join(err, g.stores.Close())
	}
	return err
}

// adopt writes the snapshot and the checkpoint, in that order: the
// snapshot is what makes the directories a group, and a crash before the
// checkpoint is durable leaves a snapshot the FSM does not cover, which
// NewGroup restores at startup (streaming the local log into its own
// stage: slow, but right). The other order would leave a checkpoint
// without a configuration, which a Bootstrap would turn into a group that
// replays an empty Raft log to new members.
func adopt(cfg *Config, servers []raft.Server) error {
	has, err := raft.HasExistingState(cfg.LogStore, cfg.StableStore, cfg.Snapshots)
	if err != nil {
		return fmt.Errorf("replica: adopt: %w", err)
	}
	if has {
		return fmt.Errorf("replica: adopt: the Raft stores (%s) already hold state", cfg.RaftDir)
	}
	st, err := adoptedState(cfg.Dir, cfg.Log)
	if err != nil {
		return err
	}
	sink, err := cfg.Snapshots.Create(1, adoptIndex, adoptTerm, raft.Configuration{Servers: servers}, adoptIndex, nil)
	if err != nil {
		return fmt.Errorf("replica: adopt: %w", err)
	}
	if _, err := sink.Write(appendStreamHead(nil, &st, false)); err != nil {
		return errors.Join(fmt.Errorf("replica: adopt: %w", err), sink.Cancel())
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("replica: adopt: %w", err)
	}
	if cfg.RaftDir != "" {
		// The store fsyncs its own directory; the entries leading to it
		// may be new too.
		for _, d := range []string{cfg.RaftDir, filepath.Dir(cfg.RaftDir)} {
			if err := syncDir(d); err != nil {
				return fmt.Errorf("replica: adopt: %w", err)
			}
		}
	}
	return saveCheckpoint(cfg.Dir, &st)
}

// adoptedState reads the log in dir and returns its state at adoptIndex:
// the offsets, the largest batch max timestamp as the record clock, and
// the idempotent producers' windows rebuilt from the batch headers still
// in the log, as the broker rebuilds them for a raft-less partition
// (broker/partition.go, loadProducers), so a retry is answered the same
// way after adoption as before. Closing the log fsyncs it (sealed
// segments were when rolled), which the checkpoint relies on.
func adoptedState(dir string, cfg partlog.Config) (fsmState, error) {
	l, err := partlog.Open(dir, cfg)
	if err != nil {
		return fsmState{}, fmt.Errorf("replica: adopt: %w", err)
	}
	st := fsmState{Index: adoptIndex, LogStart: l.StartOffset(), LogEnd: l.EndOffset(), Clock: -1}
	prod := newProducers(nil)
	err = l.Batches(st.LogStart, func(h batch.Header) error {
		st.Clock = max(st.Clock, h.MaxTimestamp)
		if h.ProducerID >= 0 && !h.Control() {
			prod.record(h, h.BaseOffset)
		}
		return nil
	})
	st.Producers = prod.snapshot()
	if err == nil {
		// A state OpenFSM cannot read back would leave the partition
		// unopenable; refuse it here instead.
		_, err = decodeState(appendState(nil, &st))
	}
	if err = errors.Join(err, l.Close()); err != nil {
		return fsmState{}, fmt.Errorf("replica: adopt: %w", err)
	}
	return st, nil
}
