package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

var groupCommands = []command{
	{"list", "list consumer groups", (*app).groupList},
	{"describe", "show a group's members, committed offsets and lag", (*app).groupDescribe},
	{"reset-offsets", "move a group's committed offsets (dry run unless --execute)", (*app).groupResetOffsets},
	{"delete", "delete an inactive group and its offsets", (*app).groupDelete},
}

func (a *app) groupCmd(ctx context.Context, w io.Writer, args []string) error {
	return a.dispatch(ctx, w, "group", groupCommands, args)
}

func (a *app) groupList(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("group list", "weir group list", "Lists consumer groups with their state.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if _, err := fs.positional(pos); err != nil {
		return err
	}

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		fmt.Fprintln(w, "no groups")
		return nil
	}
	tw := newTable(w, "GROUP", "STATE", "TYPE")
	for _, g := range groups.Sorted() {
		tw.row(g.Group, orDash(g.State), orDash(g.ProtocolType))
	}
	return tw.flush()
}

func (a *app) groupDescribe(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("group describe", "weir group describe GROUP",
		"Shows the state and members of GROUP and, per partition, the committed offset,\n"+
			"the log end offset, the lag and the member that owns it.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "GROUP"); err != nil {
		return err
	}
	group := pos[0]

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return groupErr(group, err, "")
	}
	l, ok := lags[group]
	switch {
	case !ok:
		return groupErr(group, kerr.GroupIDNotFound, "")
	case l.Error() != nil:
		return groupErr(group, l.Error(), "")
	case l.State == "Dead" && len(l.Lag) == 0:
		return groupErr(group, kerr.GroupIDNotFound, "")
	}
	return printGroupLag(w, &l)
}

func printGroupLag(w io.Writer, l *kadm.DescribedGroupLag) error {
	fmt.Fprintf(w, "Group:        %s\n", l.Group)
	fmt.Fprintf(w, "State:        %s\n", orDash(l.State))
	protocol := orDash(l.ProtocolType)
	if l.Protocol != "" {
		protocol += " (" + l.Protocol + ")"
	}
	fmt.Fprintf(w, "Protocol:     %s\n", protocol)
	fmt.Fprintf(w, "Coordinator:  %d (%s:%d)\n", l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port)
	fmt.Fprintf(w, "Members:      %d\n", len(l.Members))
	fmt.Fprintf(w, "Total lag:    %d\n", l.Lag.Total())

	if len(l.Members) > 0 {
		fmt.Fprintln(w)
		tw := newTable(w, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNED")
		for _, m := range l.Members {
			tw.row(m.MemberID, orDash(m.ClientID), orDash(m.ClientHost), assigned(m))
		}
		if err := tw.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	tw := newTable(w, "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER-ID", "CLIENT-ID")
	for _, p := range l.Lag.Sorted() {
		member, client := "-", "-"
		if p.Member != nil {
			member, client = p.Member.MemberID, orDash(p.Member.ClientID)
		}
		end, lag := "?", "?"
		if p.Err == nil {
			end, lag = strconv.FormatInt(p.End.Offset, 10), strconv.FormatInt(p.Lag, 10)
		}
		tw.row(p.Topic, p.Partition, offset(p.Commit.At), end, lag, member, client)
	}
	return tw.flush()
}

// assigned formats a member's assignment as topic[0,1,2] topic2[0].
func assigned(m kadm.DescribedGroupMember) string {
	c, ok := m.Assigned.AsConsumer()
	if !ok || len(c.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range c.Topics {
		ps := slices.Clone(t.Partitions)
		slices.Sort(ps)
		parts = append(parts, t.Topic+"["+ids(ps)+"]")
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (a *app) groupResetOffsets(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("group reset-offsets",
		"weir group reset-offsets GROUP --topic TOPIC[:P,P...] (--to-earliest|--to-latest|--to-datetime T|--to-offset N) [--execute]",
		"Moves the committed offsets of GROUP on TOPIC (or only the listed partitions).\n"+
			"Prints the plan and changes nothing unless --execute is given. Like Kafka, it refuses\n"+
			"while the group has active members: stop its consumers first.")
	topicArg := fs.String("topic", "", "reset offsets of `TOPIC`, or of TOPIC:0,1 for partitions 0 and 1 only")
	toEarliest := fs.Bool("to-earliest", false, "reset to each partition's log start")
	toLatest := fs.Bool("to-latest", false, "reset to each partition's log end")
	toDatetime := fs.String("to-datetime", "", "reset to the first offset at or after `TIME` (RFC 3339, e.g. 2024-05-01T12:00:00Z)")
	toOffset := fs.String("to-offset", "", "reset to offset `N`, clamped to each partition's log start and end")
	execute := fs.Bool("execute", false, "commit the new offsets (default: only print the plan)")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "GROUP"); err != nil {
		return err
	}
	group := pos[0]
	if *topicArg == "" {
		return fs.usageErr("--topic is required")
	}
	topic, partitions, err := parseTopicPartitions(*topicArg)
	if err != nil {
		return fs.usageErr("invalid --topic: %v", err)
	}
	target, err := parseResetTarget(*toEarliest, *toLatest, *toDatetime, *toOffset)
	if err != nil {
		return fs.usageErr("%v", err)
	}

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := requireInactive(ctx, adm, group); err != nil {
		return err
	}
	plan, err := planReset(ctx, adm, group, topic, partitions, target)
	if err != nil {
		return err
	}
	tw := newTable(w, "TOPIC", "PARTITION", "CURRENT", "NEW", "LOG-START", "LOG-END")
	for _, p := range plan {
		tw.row(p.topic, p.partition, offset(p.current), p.next, p.start, p.end)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if !*execute {
		fmt.Fprintln(w, "\nDry run: no offsets changed. Re-run with --execute to commit these offsets.")
		return nil
	}
	offsets := make(kadm.Offsets)
	for _, p := range plan {
		offsets.Add(kadm.Offset{Topic: p.topic, Partition: p.partition, At: p.next, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, group, offsets); err != nil {
		return groupErr(group, err, "")
	}
	fmt.Fprintf(w, "\nCommitted new offsets for %s of group %s.\n", plural(int64(len(plan)), "partition"), group)
	return nil
}

// resetTarget says where reset-offsets moves a partition's offset.
type resetTarget struct {
	kind   string // "earliest", "latest", "datetime" or "offset"
	millis int64  // for "datetime"
	offset int64  // for "offset"
}

func parseResetTarget(earliest, latest bool, datetime, offset string) (resetTarget, error) {
	var ts []resetTarget
	if earliest {
		ts = append(ts, resetTarget{kind: "earliest"})
	}
	if latest {
		ts = append(ts, resetTarget{kind: "latest"})
	}
	if datetime != "" {
		t, err := time.Parse(time.RFC3339Nano, datetime)
		if err != nil {
			return resetTarget{}, fmt.Errorf("invalid --to-datetime %q: want RFC 3339, e.g. 2024-05-01T12:00:00Z", datetime)
		}
		ts = append(ts, resetTarget{kind: "datetime", millis: t.UnixMilli()})
	}
	if offset != "" {
		n, err := strconv.ParseInt(offset, 10, 64)
		if err != nil || n < 0 {
			return resetTarget{}, fmt.Errorf("invalid --to-offset %q: want an offset >= 0", offset)
		}
		ts = append(ts, resetTarget{kind: "offset", offset: n})
	}
	if len(ts) != 1 {
		return resetTarget{}, fmt.Errorf("give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset")
	}
	return ts[0], nil
}

// parseTopicPartitions parses TOPIC or TOPIC:0,1,2.
func parseTopicPartitions(s string) (string, []int32, error) {
	topic, list, ok := strings.Cut(s, ":")
	if topic == "" {
		return "", nil, fmt.Errorf("%q has no topic name", s)
	}
	if !ok {
		return topic, nil, nil
	}
	var ps []int32
	for _, f := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || p < 0 {
			return "", nil, fmt.Errorf("%q is not a partition number", f)
		}
		ps = append(ps, int32(p))
	}
	return topic, ps, nil
}

// requireInactive refuses groups with members: their consumers would
// overwrite the reset offsets with their next commit.
func requireInactive(ctx context.Context, adm *kadm.Client, group string) error {
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return groupErr(group, err, "")
	}
	g, ok := groups[group]
	if !ok {
		return nil // nothing describes it: no members
	}
	if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
		return groupErr(group, g.Err, g.ErrMessage)
	}
	if n := len(g.Members); n > 0 {
		return fmt.Errorf("group %q is %s with %s; offsets can only be reset while it has none. "+
			"Stop its consumers and retry", group, g.State, plural(int64(n), "active member"))
	}
	return nil
}

// resetStep is one partition's line of a reset plan.
type resetStep struct {
	topic      string
	partition  int32
	current    int64 // -1 if nothing is committed
	next       int64
	start, end int64
}

func planReset(ctx context.Context, adm *kadm.Client, group, topic string, only []int32, target resetTarget) ([]resetStep, error) {
	if err := topicExists(ctx, adm, topic); err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, topicErr(topic, err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, topicErr(topic, err, "")
	}
	var at kadm.ListedOffsets
	if target.kind == "datetime" {
		if at, err = adm.ListOffsetsAfterMilli(ctx, target.millis, topic); err == nil {
			err = at.Error()
		}
		if err != nil {
			return nil, topicErr(topic, err, "")
		}
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // a new group has no commits yet
		return nil, groupErr(group, err, "")
	}

	var plan []resetStep
	for p, start := range starts[topic] {
		if len(only) > 0 && !slices.Contains(only, p) {
			continue
		}
		s := resetStep{topic: topic, partition: p, current: -1, start: start.Offset, end: ends[topic][p].Offset}
		if c, ok := committed.Lookup(topic, p); ok && c.Err == nil {
			s.current = c.At
		}
		switch target.kind {
		case "earliest":
			s.next = s.start
		case "latest":
			s.next = s.end
		case "datetime":
			s.next = s.end // no record at or after the time: the end
			if o, ok := at.Lookup(topic, p); ok && o.Offset >= 0 {
				s.next = o.Offset
			}
		case "offset":
			s.next = min(max(target.offset, s.start), s.end)
		}
		plan = append(plan, s)
	}
	for _, p := range only {
		if !slices.ContainsFunc(plan, func(s resetStep) bool { return s.partition == p }) {
			return nil, fmt.Errorf("topic %q has no partition %d", topic, p)
		}
	}
	slices.SortFunc(plan, func(x, y resetStep) int { return int(x.partition) - int(y.partition) })
	return plan, nil
}

func (a *app) groupDelete(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("group delete", "weir group delete GROUP",
		"Deletes GROUP and its committed offsets. The group must have no active members.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "GROUP"); err != nil {
		return err
	}
	group := pos[0]

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	resp, err := adm.DeleteGroup(ctx, group)
	if err != nil {
		return groupErr(group, err, resp.ErrMessage)
	}
	fmt.Fprintf(w, "deleted group %s\n", group)
	return nil
}

// offset formats a committed offset, "-" when nothing is committed.
func offset(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
