package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func (a *app) topicReassign(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic reassign", "weir topic reassign NAME (--replica-assignment LIST | --replication-factor R | --cancel) [--wait]",
		"Moves the partitions of topic NAME to other brokers, as kafka-reassign-partitions.sh does: new replicas\n"+
			"copy the partition from its leader and join its Raft group, then the replicas no longer wanted leave\n"+
			"it and delete their files. Producers and consumers carry on meanwhile.")
	assignment := fs.String("replica-assignment", "",
		"move partition i to the node ids of the i-th entry of `LIST`, e.g. 1:2:3,2:3:1 (the first is the preferred leader)")
	rf := fs.Int("replication-factor", 0,
		"keep `R` replicas of each partition: add brokers after the current replicas, round-robin, or drop the last ones")
	cancel := fs.Bool("cancel", false, "cancel the topic's reassignments in progress (back to the replicas less those being added)")
	wait := fs.Bool("wait", false, "wait until the reassignments have completed")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	if n := btoi(*assignment != "") + btoi(*rf != 0) + btoi(*cancel); n != 1 {
		return fs.usageErr("give one of --replica-assignment, --replication-factor and --cancel")
	}
	if *rf < 0 {
		return fs.usageErr("--replication-factor must be at least 1, got %d", *rf)
	}
	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	req, err := reassignPlan(ctx, adm, name, *assignment, *rf, *cancel)
	if err != nil {
		return err
	}
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return topicErr(name, err, "")
	}
	failed := 0
	for _, r := range resp.Sorted() {
		switch {
		case r.Err == nil && *cancel:
			fmt.Fprintf(w, "%s-%d: cancelled\n", name, r.Partition)
		case r.Err == nil:
			fmt.Fprintf(w, "%s-%d: moving to %s\n", name, r.Partition, ids(req[name][r.Partition]))
		case *cancel && errors.Is(r.Err, kerr.NoReassignmentInProgress):
			fmt.Fprintf(w, "%s-%d: not being reassigned\n", name, r.Partition)
		default:
			failed++
			fmt.Fprintf(w, "%s-%d: %v\n", name, r.Partition, kafkaErr(r.Err, r.ErrMessage))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s could not be reassigned", plural(int64(failed), "partition"))
	}
	if *wait {
		return awaitReassignments(ctx, w, adm, name, req)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reassignPlan builds the request: every partition of topic to its entry
// of assignment, to rf replicas, or cancelled.
func reassignPlan(ctx context.Context, adm *kadm.Client, topic, assignment string, rf int, cancel bool) (kadm.AlterPartitionAssignmentsReq, error) {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, topicErr(topic, err, "")
	}
	td, ok := tds[topic]
	switch {
	case !ok:
		return nil, topicErr(topic, kerr.UnknownTopicOrPartition, "")
	case td.Err != nil:
		return nil, topicErr(topic, td.Err, "")
	}
	parts := td.Partitions.Sorted()
	var assign [][]int32
	switch {
	case assignment != "":
		if assign, err = parseAssignment(assignment); err != nil {
			return nil, fmt.Errorf("--replica-assignment: %w", err)
		}
		if len(assign) != len(parts) {
			return nil, fmt.Errorf("--replica-assignment has %d entries; %s has %d partitions", len(assign), topic, len(parts))
		}
	case rf > 0:
		brokers, err := adm.ListBrokers(ctx)
		if err != nil {
			return nil, kafkaErr(err, "")
		}
		if rf > len(brokers) {
			return nil, fmt.Errorf("--replication-factor %d is more than the %d brokers", rf, len(brokers))
		}
		for _, p := range parts {
			assign = append(assign, resize(p.Replicas, rf, brokers.NodeIDs()))
		}
	}
	var req kadm.AlterPartitionAssignmentsReq
	for i, p := range parts {
		if cancel {
			req.CancelAssign(topic, p.Partition)
		} else {
			req.Assign(topic, p.Partition, assign[i])
		}
	}
	return req, nil
}

// resize keeps the first n of replicas, or adds brokers after them
// round-robin from the broker following the preferred leader, so leaders
// and new replicas spread as the originals did.
func resize(replicas []int32, n int, brokers []int32) []int32 {
	if n <= len(replicas) {
		return slices.Clone(replicas[:n])
	}
	brokers = slices.Sorted(slices.Values(brokers))
	out := slices.Clone(replicas)
	start := -1 // so that the first broker tried is brokers[0]
	if len(replicas) > 0 {
		start = slices.Index(brokers, replicas[0])
	}
	for i := 1; len(out) < n && i <= len(brokers); i++ {
		if b := brokers[(start+i)%len(brokers)]; !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// awaitReassignments polls until no partition of req is being reassigned.
func awaitReassignments(ctx context.Context, w io.Writer, adm *kadm.Client, topic string, req kadm.AlterPartitionAssignmentsReq) error {
	set := kadm.TopicsSet{}
	for p := range req[topic] {
		set.Add(topic, p)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ls, err := adm.ListPartitionReassignments(ctx, set)
		if err != nil {
			return kafkaErr(err, "")
		}
		if len(ls[topic]) == 0 {
			fmt.Fprintf(w, "reassignment of %s complete\n", topic)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still reassigning: %w", plural(int64(len(ls[topic])), "partition"), ctx.Err())
		case <-tick.C:
		}
	}
}
