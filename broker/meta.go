package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// metaFileName is the broker's own metadata in DataDir: cluster id, topics
// with their ids and configs, and the producer-id high-water mark. On a
// single node it is what the controller's Raft FSM will hold in a cluster.
const metaFileName = "weir-metadata.json"

type metaFile struct {
	Version   int    `json:"version"`
	ClusterID string `json:"cluster_id"`
	// ProducerIDLimit is the first producer id not yet reserved. Ids are
	// reserved in blocks so a restart never hands one out twice.
	ProducerIDLimit int64       `json:"producer_id_limit"`
	Topics          []metaTopic `json:"topics"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

func loadMeta(dir string) (metaFile, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFileName))
	if errors.Is(err, os.ErrNotExist) {
		return metaFile{Version: 1, ClusterID: newClusterID()}, nil
	}
	if err != nil {
		return metaFile{}, fmt.Errorf("broker: read metadata: %w", err)
	}
	var m metaFile
	if err := json.Unmarshal(raw, &m); err != nil {
		return metaFile{}, fmt.Errorf("broker: metadata file %s is corrupt: %w", filepath.Join(dir, metaFileName), err)
	}
	if m.Version != 1 {
		return metaFile{}, fmt.Errorf("broker: metadata file version %d is not supported", m.Version)
	}
	for _, t := range m.Topics {
		// Names become directory names: never trust them blindly.
		if err := validateTopicName(t.Name); err != nil || t.Partitions < 1 {
			return metaFile{}, fmt.Errorf("broker: metadata file %s is corrupt: topic %q with %d partitions",
				filepath.Join(dir, metaFileName), t.Name, t.Partitions)
		}
	}
	return m, nil
}

// saveMeta replaces the metadata file atomically: write a temp file, fsync
// it, rename it over the old one, fsync the directory.
func saveMeta(dir string, m metaFile) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("broker: write metadata: %w", err)
	}
	if _, err = f.Write(raw); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, metaFileName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("broker: write metadata: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// newClusterID returns a random id in Kafka's format: a UUID in URL-safe
// base64 without padding.
func newClusterID() string {
	id := newUUID()
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func newUUID() [16]byte {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id
}
