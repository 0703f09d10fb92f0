// Package faultcheck is a Jepsen-style queue workload and checker for weir's
// replication fault tests.
//
// A Workload drives a cluster through franz-go while a test injects faults:
// idempotent acks=all producers send unique values ("p<producer>-<seq>",
// see Value) round-robin over the partitions at a target rate, and group
// consumers read them, committing each poll's offsets before the group may
// rebalance. Everything observed is recorded: every acknowledged record with
// its offset, every failed produce, every delivery to a consumer, every
// acknowledged commit, and an offset monitor's periodic reads of the group's
// committed offsets. Stop ends production, lets the group catch up, and
// drains every partition from its start to its high watermark with a fresh
// groupless client, so the read-back does not depend on the group.
//
//	w, err := faultcheck.Start(ctx, faultcheck.Config{Seeds: seeds, Topic: "q",
//		Partitions: 3, Producers: 2, Consumers: 2, Group: "g", Rate: 2000, Logf: t.Logf})
//	if err != nil {
//		t.Fatal(err)
//	}
//	// ... inject faults; w.AwaitAcked(ctx, w.Acked()+500) to see progress ...
//	h := w.Stop(ctx) // heal the cluster first: Stop needs it to drain
//	if rep := faultcheck.Check(h); !rep.OK() {
//		t.Fatal(rep)
//	}
//	t.Logf("worst unavailability: %v", rep.Summary.MaxAckGap)
//
// Check is a pure function of the History, so tests can feed it synthetic
// ones. It verifies that every acknowledged record is in the drain exactly
// once, at the offset its acknowledgement reported; that each partition was
// read in strictly increasing offsets and each producer's records are in its
// order; that no offset held two values and no value sits at two offsets
// across all observations; that group consumers read only what the drain
// holds, in order within an assignment, and every record below the offsets
// they committed; and that committed offsets never go backwards and never
// pass the end of the log. Failed produces are allowed to be written or not.
// The Kind constants list each violation; Report.Summary counts the traffic
// and the longest gap between acknowledgements, the run's worst
// unavailability (Stats.MaxAckGap reports it live).
//
// The topic and group must hold only this workload's data. Call Stop before
// the test ends: the workload logs through Config.Logf until then. A
// consumer that leaves the group while its coordinator fails over is waited
// for until its session expires, as in Kafka, so the group may stall for the
// 6 s session timeout; Stop's catch-up wait (Config.CatchUp) allows for it.
package faultcheck
