package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const defaultFormat = `%v\n`

func (a *app) consumeCmd(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("consume", "weir consume TOPIC [--from-beginning] [--group G] [--isolation read_uncommitted|read_committed] [--max N] [--format FMT] [--timeout D]",
		"Prints the records of TOPIC, one per line, until interrupted, --max records or --timeout of idleness.\n"+
			"Without --group it reads every partition directly, from the end unless --from-beginning.\n"+
			"With --group it joins consumer group G, starts at G's committed offsets (or as above where\n"+
			"there are none) and commits what it printed.\n"+
			"With --isolation read_committed it prints only non-transactional records and those of committed\n"+
			"transactions, and reads no further than the first transaction still open, as Kafka's consumers do.\n\n"+
			"Format verbs: %k key, %v value, %p partition, %o offset, %t timestamp (RFC 3339, ms, UTC),\n"+
			"%T topic, %h headers (k=v,k=v), %% a percent sign; escapes \\n \\t \\r \\\\.\n"+
			"A newline is added unless the format ends with one.")
	fromStart := fs.Bool("from-beginning", false, "start at the earliest offset instead of the end")
	group := fs.String("group", "", "consume as member of consumer group `G` and commit offsets")
	max := fs.Int64("max", 0, "stop after `N` records (default: no limit)")
	format := fs.String("format", defaultFormat, "print each record by `FMT`")
	timeout := fs.Duration("timeout", 0, "stop when no record arrives for `D`, e.g. 5s (default: wait forever)")
	isolation := fs.String("isolation", "read_uncommitted",
		"read at isolation `LEVEL`: read_uncommitted (every record) or read_committed (hides open and aborted transactions)")
	pos, err := fs.parse(w, args)
	if err != nil {
		return err
	}
	if pos, err = fs.positional(pos, "TOPIC"); err != nil {
		return err
	}
	topic := pos[0]
	if *max < 0 {
		return fs.usageErr("--max must not be negative")
	}
	if *timeout < 0 {
		return fs.usageErr("--timeout must not be negative")
	}
	rf, err := parseFormat(*format)
	if err != nil {
		return fs.usageErr("invalid --format: %v", err)
	}
	level, err := isolationLevel(*isolation)
	if err != nil {
		return fs.usageErr("%v", err)
	}

	c := &consumer{topic: topic, group: *group, isolation: level, max: *max, timeout: *timeout, format: rf, warn: a.stderr}
	cl, err := a.client(ctx, c.opts(*fromStart)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := topicExists(ctx, kadm.NewClient(cl), topic); err != nil {
		return err
	}
	n, err := c.run(ctx, cl, w)
	fmt.Fprintf(a.stderr, "consumed %s\n", plural(n, "record"))
	return err
}

// isolationLevel parses --isolation, named as Kafka's isolation.level.
func isolationLevel(s string) (kgo.IsolationLevel, error) {
	switch s {
	case "read_uncommitted":
		return kgo.ReadUncommitted(), nil
	case "read_committed":
		return kgo.ReadCommitted(), nil
	}
	return kgo.IsolationLevel{}, fmt.Errorf("--isolation must be read_uncommitted or read_committed, got %q", s)
}

func topicExists(ctx context.Context, adm *kadm.Client, topic string) error {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	d, ok := topics[topic]
	switch {
	case !ok:
		return topicErr(topic, kerr.UnknownTopicOrPartition, "")
	case d.Err != nil:
		return topicErr(topic, d.Err, "")
	}
	return nil
}

// consumer prints the records of one topic.
type consumer struct {
	topic     string
	group     string
	isolation kgo.IsolationLevel
	max       int64
	timeout   time.Duration
	format    recordFormat
	warn      io.Writer
}

func (c *consumer) opts(fromStart bool) []kgo.Opt {
	start := kgo.NewOffset().AtEnd()
	if fromStart {
		start = kgo.NewOffset().AtStart()
	}
	// The isolation level also applies to ListOffsets: under read_committed
	// the end is the last stable offset, not the high watermark.
	opts := []kgo.Opt{kgo.ConsumeTopics(c.topic), kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(c.isolation)}
	if c.group != "" {
		// Commit only what was printed: a record polled but not printed
		// because of --max must be read again by the group's next consumer.
		// A person watching `weir group describe` sees progress within a second.
		opts = append(opts, kgo.ConsumerGroup(c.group), kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second))
	}
	return opts
}

// run prints records until --max, --timeout or cancellation and returns how
// many it printed. Cancellation is the normal way to stop and is no error.
func (c *consumer) run(ctx context.Context, cl *kgo.Client, w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var buf []byte
	for c.max == 0 || n < c.max {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if c.timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, c.timeout)
		}
		limit := -1
		if c.max > 0 {
			limit = int(c.max - n)
		}
		fetches := cl.PollRecords(pctx, limit)
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				fmt.Fprintf(c.warn, "weir: warning: fetching %s[%d]: %v\n", t, p, err)
			}
		})
		recs := fetches.Records()
		for _, r := range recs {
			buf = c.format.append(buf[:0], r)
			if _, err := bw.Write(buf); err != nil {
				return n, err
			}
			n++
		}
		if err := bw.Flush(); err != nil {
			return n, err
		}
		if c.group != "" {
			cl.MarkCommitRecords(recs...)
		}
		if len(recs) == 0 && pctx.Err() != nil {
			break // interrupted, or idle for --timeout
		}
	}
	return n, c.commit(ctx, cl)
}

// commit commits the offsets of the printed records, even after an interrupt.
func (c *consumer) commit(ctx context.Context, cl *kgo.Client) error {
	if c.group == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reachTimeout)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		return fmt.Errorf("committing offsets of group %q: %w", c.group, err)
	}
	return nil
}

// recordFormat is a compiled --format: literal text and verbs.
type recordFormat []formatPart

type formatPart struct {
	lit  string
	verb byte // 0 for literal text
}

// parseFormat compiles a --format string; see consumeCmd's usage.
func parseFormat(s string) (recordFormat, error) {
	var f recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f = append(f, formatPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' && c != '\\' {
			lit.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("%q ends with a lone %c", s, c)
		}
		i++
		next := s[i]
		if c == '\\' {
			e, ok := formatEscapes[next]
			if !ok {
				return nil, fmt.Errorf(`unknown escape \%c (want \n \t \r or \\)`, next)
			}
			lit.WriteByte(e)
			continue
		}
		switch next {
		case '%':
			lit.WriteByte('%')
		case 'k', 'v', 'p', 'o', 't', 'T', 'h':
			flush()
			f = append(f, formatPart{verb: next})
		default:
			return nil, fmt.Errorf("unknown verb %%%c (want %%k %%v %%p %%o %%t %%T %%h or %%%%)", next)
		}
	}
	if !strings.HasSuffix(lit.String(), "\n") {
		lit.WriteByte('\n')
	}
	flush()
	return f, nil
}

var formatEscapes = map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', '\\': '\\'}

// timeLayout is RFC 3339 with milliseconds, Kafka's timestamp precision.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// append appends r formatted by f to dst.
func (f recordFormat) append(dst []byte, r *kgo.Record) []byte {
	for _, p := range f {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 't':
			dst = r.Timestamp.UTC().AppendFormat(dst, timeLayout)
		case 'T':
			dst = append(dst, r.Topic...)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
