package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weir-io/weir/internal/controller"
)

// Before a single node ran the controller quorum (as a quorum of one) it
// kept its metadata in weir-metadata.json: cluster id, topics with ids,
// partition counts and configs, and the producer-id high-water mark. The
// first start of a newer broker on such a data directory moves all of it
// into metadata records and renames the file, so the image is the only
// home of metadata from then on. Partition directories stay where they
// are: a single replica keeps its log without Raft, in the same place.

const (
	legacyMetaFile = "weir-metadata.json"
	// migratedSuffix is appended to the file once its content is in the
	// image; it is kept for whoever wants to look, and never read.
	migratedSuffix = ".migrated"
)

type legacyMeta struct {
	Version         int               `json:"version"`
	ClusterID       string            `json:"cluster_id"`
	ProducerIDLimit int64             `json:"producer_id_limit"`
	Topics          []legacyMetaTopic `json:"topics"`
}

type legacyMetaTopic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// readLegacyMeta reads dir's weir-metadata.json; ok is false if there is
// none.
func readLegacyMeta(dir string) (m legacyMeta, ok bool, err error) {
	path := filepath.Join(dir, legacyMetaFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return legacyMeta{}, false, nil
	}
	if err != nil {
		return legacyMeta{}, false, fmt.Errorf("broker: read %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return legacyMeta{}, false, fmt.Errorf("broker: metadata file %s is corrupt: %w", path, err)
	}
	if m.Version != 1 {
		return legacyMeta{}, false, fmt.Errorf("broker: metadata file %s has version %d, which this broker cannot read", path, m.Version)
	}
	for _, t := range m.Topics {
		// Names become directory names: never trust them blindly.
		if err := validateTopicName(t.Name); err != nil || t.Partitions < 1 || t.ID == ([16]byte{}) {
			return legacyMeta{}, false, fmt.Errorf("broker: metadata file %s is corrupt: topic %q with %d partitions", path, t.Name, t.Partitions)
		}
		if err := validateConfigs(t.Configs); err != nil {
			return legacyMeta{}, false, fmt.Errorf("broker: metadata file %s is corrupt: topic %q: %w", path, t.Name, err)
		}
	}
	return m, true, nil
}

// migrate moves a single node's weir-metadata.json into the image. It is
// idempotent: a crash halfway leaves the file, and the next start imports
// what is still missing. Only a lone voter can hold such a directory.
func (c *cluster) migrate() error {
	dir := c.b.cfg.DataDir
	m, ok, err := readLegacyMeta(dir)
	if err != nil || !ok {
		return err
	}
	if !c.loneVoter() {
		return fmt.Errorf("broker: %s holds a single broker's metadata; start it once as a single node (without --voters, or with itself as the only voter) to migrate it", filepath.Join(dir, legacyMetaFile))
	}
	if err := c.ctl.InitCluster(m.ClusterID, m.ProducerIDLimit); err != nil {
		return fmt.Errorf("broker: migrate %s: %w", legacyMetaFile, err)
	}
	self := c.b.cfg.NodeID
	for _, t := range m.Topics {
		assign := make([][]int32, t.Partitions)
		for i := range assign {
			assign[i] = []int32{self}
		}
		err := c.ctl.ImportTopic(t.Name, t.ID, assign, t.Configs)
		if it, ok := c.ctl.Image().Topic(t.Name); errors.Is(err, controller.ErrTopicExists) && ok && it.ID == t.ID {
			err = nil // imported by an earlier, interrupted migration
		}
		if err != nil {
			return fmt.Errorf("broker: migrate topic %q from %s: %w", t.Name, legacyMetaFile, err)
		}
	}
	path := filepath.Join(dir, legacyMetaFile)
	if err := os.Rename(path, path+migratedSuffix); err != nil {
		return fmt.Errorf("broker: migrate %s: %w", legacyMetaFile, err)
	}
	c.b.log.Info("moved single-node metadata into the controller quorum", "topics", len(m.Topics), "file", path+migratedSuffix)
	return nil
}

// newClusterID returns a random id in Kafka's format: a UUID in URL-safe
// base64 without padding.
func newClusterID() string {
	id := newUUID()
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func newUUID() [16]byte {
	var id [16]byte
	rand.Read(id[:])          // never fails (crypto/rand)
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id
}
