package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var topicCommands = []command{
	{"create", "create a topic", (*app).topicCreate},
	{"list", "list topics", (*app).topicList},
	{"describe", "show a topic's partitions, offsets and configs", (*app).topicDescribe},
	{"alter", "set or delete topic configs", (*app).topicAlter},
	{"delete", "delete a topic", (*app).topicDelete},
	{"elect-leaders", "move leadership back to the preferred replicas", (*app).topicElectLeaders},
	{"reassign", "move partitions to other brokers, or change the replication factor", (*app).topicReassign},
}

func (a *app) topicCmd(ctx context.Context, w io.Writer, args []string) error {
	return a.dispatch(ctx, w, "topic", topicCommands, args)
}

func (a *app) topicCreate(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic create", "weir topic create NAME [--partitions N] [--replication-factor R | --replica-assignment LIST] [--config key=value ...]",
		"Creates the topic NAME.")
	partitions := fs.Int("partitions", -1, "create `N` partitions (default: the broker's default)")
	replication := fs.Int("replication-factor", -1, "keep `R` replicas of each partition (default: the broker's default)")
	assignment := fs.String("replica-assignment", "",
		"place partition i on the node ids of the i-th entry of `LIST`, e.g. 1:2,2:3,3:1 (the first is the preferred leader); "+
			"instead of --partitions and --replication-factor")
	var configs keyValues
	fs.Var(&configs, "config", "topic config `key=value`, repeatable (e.g. cleanup.policy=compact)")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	if *partitions == 0 || *partitions < -1 || *partitions > math.MaxInt32 {
		return fs.usageErr("--partitions must be at least 1, got %d", *partitions)
	}
	if *replication == 0 || *replication < -1 || *replication > math.MaxInt16 {
		return fs.usageErr("--replication-factor must be at least 1, got %d", *replication)
	}
	cfg := make(map[string]*string, len(configs))
	for _, kv := range configs {
		cfg[kv.key] = kmsg.StringPtr(kv.value)
	}
	if *assignment != "" {
		assign, err := parseAssignment(*assignment)
		if err != nil {
			return fs.usageErr("--replica-assignment: %v", err)
		}
		if *partitions != -1 || *replication != -1 {
			return fs.usageErr("--replica-assignment replaces --partitions and --replication-factor")
		}
		return a.createAssigned(ctx, w, name, assign, cfg)
	}

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	resp, err := adm.CreateTopic(ctx, int32(*partitions), int16(*replication), cfg, name)
	if err != nil {
		return topicErr(name, err, resp.ErrMessage)
	}
	fmt.Fprintf(w, "created topic %s (%s, replication factor %d)\n",
		name, plural(int64(resp.NumPartitions), "partition"), resp.ReplicationFactor)
	return nil
}

// parseAssignment parses kafka-topics' --replica-assignment form: one
// entry per partition, comma-separated, of colon-separated node ids.
func parseAssignment(s string) ([][]int32, error) {
	var out [][]int32
	for i, part := range strings.Split(s, ",") {
		var rs []int32
		for _, id := range strings.Split(part, ":") {
			n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("partition %d: %q is not a node id", i, id)
			}
			rs = append(rs, int32(n))
		}
		if len(out) > 0 && len(rs) != len(out[0]) {
			return nil, fmt.Errorf("partition %d has %d replicas, partition 0 has %d", i, len(rs), len(out[0]))
		}
		out = append(out, rs)
	}
	return out, nil
}

// createAssigned creates a topic with a manual replica assignment, which
// kadm's CreateTopic cannot express.
func (a *app) createAssigned(ctx context.Context, w io.Writer, name string, assign [][]int32, cfg map[string]*string) error {
	cl, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
	for i, rs := range assign {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	for k, v := range cfg {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, v
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return topicErr(name, err, "")
	}
	st := resp.Topics[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		var msg string
		if st.ErrorMessage != nil {
			msg = *st.ErrorMessage
		}
		return topicErr(name, err, msg)
	}
	fmt.Fprintf(w, "created topic %s (%s, replication factor %d)\n",
		name, plural(int64(len(assign)), "partition"), len(assign[0]))
	return nil
}

func (a *app) topicList(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic list", "weir topic list [--internal]", "Lists topics with their partition counts.")
	internal := fs.Bool("internal", false, "include internal topics such as __consumer_offsets")
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
	list := adm.ListTopics
	if *internal {
		list = adm.ListTopicsWithInternal
	}
	topics, err := list(ctx)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		fmt.Fprintln(w, "no topics")
		return nil
	}
	tw := newTable(w, "TOPIC", "PARTITIONS", "REPLICATION")
	for _, t := range topics.Sorted() {
		if t.Err != nil {
			tw.row(t.Topic, "error: "+t.Err.Error(), "")
			continue
		}
		tw.row(t.Topic, len(t.Partitions), t.Partitions.NumReplicas())
	}
	return tw.flush()
}

func (a *app) topicDescribe(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic describe", "weir topic describe NAME",
		"Shows the partitions of topic NAME and its configs, with the ones that differ from the default\n"+
			"marked '*'. For each partition: its leader and leader epoch, its replicas, those in sync with\n"+
			"the leader (ISR), those that are not (LAGGING; '(offline)' if their broker is down) and its\n"+
			"log start and end offsets; then the reassignments in progress.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	d, err := describeTopic(ctx, adm, name)
	if err != nil {
		return err
	}
	return d.print(w)
}

// topicDescription is everything topic describe prints.
type topicDescription struct {
	detail      kadm.TopicDetail
	starts      kadm.ListedOffsets
	ends        kadm.ListedOffsets
	configs     []kadm.Config
	configsErr  error // configs could not be described; the rest still prints
	listOffsErr error
	moving      kadm.ListPartitionReassignmentsResponses // nil if the broker cannot say
}

func describeTopic(ctx context.Context, adm *kadm.Client, name string) (*topicDescription, error) {
	topics, err := adm.ListTopics(ctx, name)
	if err != nil {
		return nil, err
	}
	detail, ok := topics[name]
	if !ok {
		return nil, topicErr(name, kerr.UnknownTopicOrPartition, "")
	}
	if detail.Err != nil {
		return nil, topicErr(name, detail.Err, "")
	}
	d := &topicDescription{detail: detail}
	if d.starts, err = adm.ListStartOffsets(ctx, name); err != nil {
		d.listOffsErr = err
	} else if d.ends, err = adm.ListEndOffsets(ctx, name); err != nil {
		d.listOffsErr = err
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		var rc kadm.ResourceConfig
		if rc, err = rcs.On(name, nil); err == nil {
			err = rc.Err
		}
		d.configs = rc.Configs
	}
	d.configsErr = err
	all := kadm.TopicsSet{}
	all.Add(name, detail.Partitions.Numbers()...)
	d.moving, _ = adm.ListPartitionReassignments(ctx, all)
	return d, nil
}

func (d *topicDescription) print(w io.Writer) error {
	t := d.detail
	fmt.Fprintf(w, "Topic:               %s\n", t.Topic)
	if t.ID != (kadm.TopicID{}) {
		fmt.Fprintf(w, "ID:                  %s\n", t.ID)
	}
	fmt.Fprintf(w, "Partitions:          %d\n", len(t.Partitions))
	fmt.Fprintf(w, "Replication factor:  %d\n", t.Partitions.NumReplicas())
	if t.IsInternal {
		fmt.Fprintln(w, "Internal:            yes")
	}
	fmt.Fprintln(w)

	tw := newTable(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LAGGING", "LOG-START", "LOG-END")
	for _, p := range t.Partitions.Sorted() {
		// Between leaders a partition still has its replicas to show.
		if p.Err != nil && !errors.Is(p.Err, kerr.LeaderNotAvailable) {
			tw.row(p.Partition, "error: "+p.Err.Error(), "", "", "", "", "", "")
			continue
		}
		tw.row(p.Partition, leader(p.Leader), epoch(p.LeaderEpoch), ids(p.Replicas), ids(p.ISR),
			lagging(p), listed(d.starts, t.Topic, p.Partition), listed(d.ends, t.Topic, p.Partition))
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if d.listOffsErr != nil {
		fmt.Fprintf(w, "(offsets unavailable: %v)\n", d.listOffsErr)
	}
	for _, m := range d.moving.Sorted() {
		fmt.Fprintf(w, "Reassigning partition %d: adding %s, removing %s\n", m.Partition, ids(m.AddingReplicas), ids(m.RemovingReplicas))
	}

	fmt.Fprintln(w)
	if d.configsErr != nil {
		fmt.Fprintf(w, "Configs unavailable: %v\n", d.configsErr)
		return nil
	}
	cfgs := slices.Clone(d.configs)
	slices.SortFunc(cfgs, func(x, y kadm.Config) int { return strings.Compare(x.Key, y.Key) })
	tw = newTable(w, "  CONFIG", "VALUE", "SOURCE")
	for _, c := range cfgs {
		mark := "  "
		if c.Source != kmsg.ConfigSourceDefaultConfig {
			mark = "* "
		}
		tw.row(mark+c.Key, configValue(c), configSource(c.Source))
	}
	if err := tw.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(* = not the default)")
	return nil
}

func (a *app) topicAlter(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic alter", "weir topic alter NAME [--config key=value ...] [--delete-config key ...]",
		"Sets or deletes configs of topic NAME; other configs keep their values.\n"+
			"A deleted config returns to its default.")
	var set keyValues
	var del strs
	fs.Var(&set, "config", "set config `key=value`, repeatable")
	fs.Var(&del, "delete-config", "delete config `key` (back to its default), repeatable")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]
	if len(set)+len(del) == 0 {
		return fs.usageErr("nothing to change: give --config key=value or --delete-config key")
	}
	var alters []kadm.AlterConfig
	var done []string
	for _, kv := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv.key, Value: kmsg.StringPtr(kv.value)})
		done = append(done, "set "+kv.key+"="+kv.value)
	}
	for _, k := range del {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
		done = append(done, "deleted "+k)
	}

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	resps, err := adm.AlterTopicConfigs(ctx, alters, name)
	if err != nil {
		return topicErr(name, err, "")
	}
	resp, err := resps.On(name, nil)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return topicErr(name, err, resp.ErrMessage)
	}
	fmt.Fprintf(w, "altered topic %s: %s\n", name, strings.Join(done, ", "))
	return nil
}

func (a *app) topicDelete(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic delete", "weir topic delete NAME", "Deletes topic NAME and all its records.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "NAME"); err != nil {
		return err
	}
	name := pos[0]

	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	resp, err := adm.DeleteTopic(ctx, name)
	if err != nil {
		return topicErr(name, err, resp.ErrMessage)
	}
	fmt.Fprintf(w, "deleted topic %s\n", name)
	return nil
}

func (a *app) topicElectLeaders(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("topic elect-leaders", "weir topic elect-leaders [TOPIC[:P,P,...] ...]",
		"Hands the leadership of partitions back to their preferred replica (the first of their replicas), "+
			"as kafka-leader-election.sh --election-type PREFERRED does: after a broker restarts, "+
			"its partitions stay led elsewhere until this or the broker's imbalance check moves them. "+
			"Without arguments, every partition of every topic.")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	set := kadm.TopicsSet{}
	for _, arg := range pos {
		topic, parts, err := parseTopicPartitions(arg)
		if err != nil {
			return err
		}
		set.Add(topic, parts...)
	}
	adm, err := a.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := fillPartitions(ctx, adm, set); err != nil {
		return err
	}
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		return kafkaErr(err, "")
	}
	return printElections(w, res, len(pos) == 0)
}

// fillPartitions names every partition of the topics given without any.
func fillPartitions(ctx context.Context, adm *kadm.Client, set kadm.TopicsSet) error {
	var bare []string
	for topic, ps := range set {
		if len(ps) == 0 {
			bare = append(bare, topic)
		}
	}
	if len(bare) == 0 {
		return nil
	}
	tds, err := adm.ListTopics(ctx, bare...)
	if err != nil {
		return kafkaErr(err, "")
	}
	for _, topic := range bare {
		td := tds[topic]
		if td.Err != nil {
			return topicErr(topic, td.Err, "")
		}
		set.Add(topic, td.Partitions.Numbers()...)
	}
	return nil
}

// printElections prints one line per partition and fails if any election
// failed; an election that was not needed is not a failure.
func printElections(w io.Writer, res kadm.ElectLeadersResults, all bool) error {
	var failed, elected int
	for _, topic := range slices.Sorted(maps.Keys(res)) {
		for _, p := range slices.Sorted(maps.Keys(res[topic])) {
			r := res[topic][p]
			switch {
			case r.Err == nil:
				elected++
				fmt.Fprintf(w, "%s-%d: led by its preferred replica now\n", topic, p)
			case errors.Is(r.Err, kerr.ElectionNotNeeded):
				fmt.Fprintf(w, "%s-%d: already led by its preferred replica\n", topic, p)
			default:
				failed++
				fmt.Fprintf(w, "%s-%d: %v\n", topic, p, kafkaErr(r.Err, r.ErrMessage))
			}
		}
	}
	if all && elected+failed == 0 {
		fmt.Fprintln(w, "every partition is led by its preferred replica")
	}
	if failed > 0 {
		return fmt.Errorf("%s could not be handed to the preferred replica", plural(int64(failed), "partition"))
	}
	return nil
}

func leader(id int32) string {
	if id < 0 {
		return "none"
	}
	return strconv.Itoa(int(id))
}

func epoch(e int32) string {
	if e < 0 {
		return "-"
	}
	return strconv.Itoa(int(e))
}

// lagging lists the replicas of p that are not in sync, marking those the
// cluster reports offline, or "-".
func lagging(p kadm.PartitionDetail) string {
	var out []string
	for _, r := range p.Replicas {
		switch {
		case slices.Contains(p.OfflineReplicas, r):
			out = append(out, strconv.Itoa(int(r))+"(offline)")
		case !slices.Contains(p.ISR, r):
			out = append(out, strconv.Itoa(int(r)))
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

func ids(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// listed formats a listed offset, or "?" if it is missing or failed.
func listed(l kadm.ListedOffsets, topic string, partition int32) string {
	o, ok := l.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return "?"
	}
	return strconv.FormatInt(o.Offset, 10)
}

func configValue(c kadm.Config) string {
	switch {
	case c.Sensitive:
		return "(sensitive)"
	case c.Value == nil:
		return "(null)"
	case *c.Value == "":
		return `""`
	}
	return *c.Value
}

func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "cluster"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "broker config file"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}
