package table

import "github.com/weir-io/weir/internal/topology"

// Change is what a table forwards for one key: the value before and after
// an update. A nil Old means the key was absent; a nil New means it was
// deleted.
type Change struct {
	Old, New any
}

// Getter reads a table's current value for a key, as seen by the node that
// owns the getter: for a materialized table the store; for a derived table
// the parent's value passed through the derivation. found is false when the
// key is absent (or filtered out).
type Getter func(ctx topology.Context, key any) (value any, found bool, err error)
