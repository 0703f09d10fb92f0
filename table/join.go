package table

import "github.com/weir-io/weir/internal/topology"

// NewStreamTableJoin returns the processor factory joining each stream
// record with the table's current value for its key. With left set, a
// record without a match is joined with a nil table value; otherwise it is
// dropped. join's result becomes the record's value.
func NewStreamTableJoin(table Getter, left bool, join func(key, value, tableValue any) (any, error)) func() topology.Processor {
	return topology.ProcessorFunc(func(ctx topology.Context, rec topology.Record) error {
		if rec.Key == nil {
			ctx.Count("dropped-null-key-records", 1)
			return nil
		}
		tv, found, err := table(ctx, rec.Key)
		if err != nil {
			return err
		}
		if !found && !left {
			return nil
		}
		if rec.Value, err = join(rec.Key, rec.Value, tv); err != nil {
			return err
		}
		return ctx.Forward(rec)
	})
}

// NewTableTableJoinSide returns the processor for one side of a table-table
// join: on a change of its own table it looks up the other table and
// forwards the joined Change. join receives nil for an absent side (own or
// other); it returns (nil, nil) when the pair produces no row.
func NewTableTableJoinSide(other Getter, join func(key, own, other any) (any, error)) func() topology.Processor {
	return topology.ProcessorFunc(func(ctx topology.Context, rec topology.Record) error {
		ch := rec.Value.(Change)
		ov, _, err := other(ctx, rec.Key)
		if err != nil {
			return err
		}
		// join is called for absent sides too: for the right side of a
		// left join, a deleted row still leaves the left row joined with
		// nothing, not a deletion.
		var out Change
		if out.Old, err = join(rec.Key, ch.Old, ov); err != nil {
			return err
		}
		if out.New, err = join(rec.Key, ch.New, ov); err != nil {
			return err
		}
		if out.Old == nil && out.New == nil {
			return nil
		}
		rec.Value = out
		return ctx.Forward(rec)
	})
}
