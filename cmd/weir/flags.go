package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/weir-io/weir/broker"
)

// usageError is a mistake in the command line; it exits with code 2.
// An empty msg means the usage has been printed already.
type usageError struct {
	path string // command path, e.g. "topic create"
	msg  string
}

func (e *usageError) Error() string { return e.msg }

// flagSet is a flag.FlagSet that knows its command's usage text and accepts
// flags before, between and after positional arguments.
type flagSet struct {
	*flag.FlagSet
	path     string        // command path, e.g. "topic create"
	synopsis string        // e.g. "weir topic create NAME [flags]"
	about    string        // what the command does, printed under the synopsis
	usageFn  func() string // overrides the generated usage text if set
}

// newFlags returns the flags of a command that talks to brokers: they include
// the global --brokers, so it may also follow the command name.
func (a *app) newFlags(path, synopsis, about string) *flagSet {
	fs := newFlagSet(path, synopsis, about)
	fs.StringVar(&a.brokers, "brokers", a.brokers,
		"comma-separated `host:port` list of brokers to bootstrap from (env WEIR_BROKERS)")
	return fs
}

func newFlagSet(path, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet("weir "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and usage are printed by run and parse
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, path: path, synopsis: synopsis, about: about}
}

// parse parses args and returns the positional arguments. On -h it prints the
// usage to w and returns flag.ErrHelp.
func (fs *flagSet) parse(w io.Writer, args []string) ([]string, error) {
	pos, err := parseInterspersed(fs.FlagSet, args)
	if err != nil {
		return nil, fs.parseError(w, err)
	}
	return pos, nil
}

func (fs *flagSet) parseError(w io.Writer, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(w, fs.usage())
		return flag.ErrHelp
	}
	return fs.usageErr("%v", err)
}

func (fs *flagSet) usageErr(format string, args ...any) error {
	return &usageError{path: fs.path, msg: fmt.Sprintf(format, args...)}
}

// positional checks that exactly the named positional arguments were given
// and returns them.
func (fs *flagSet) positional(pos []string, names ...string) ([]string, error) {
	switch {
	case len(pos) < len(names):
		return nil, fs.usageErr("missing %s", names[len(pos)])
	case len(pos) > len(names):
		return nil, fs.usageErr("unexpected argument %q", pos[len(names)])
	}
	return pos, nil
}

func (fs *flagSet) usage() string {
	if fs.usageFn != nil {
		return fs.usageFn()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s\n", fs.synopsis)
	if fs.about != "" {
		fmt.Fprintf(&b, "\n%s\n", fs.about)
	}
	b.WriteString("\nFlags:\n")
	fs.writeDefaults(&b)
	return b.String()
}

// writeDefaults lists the flags with a double dash, the way weir documents
// them. A default is shown unless it is a zero value or the usage states it.
func (fs *flagSet) writeDefaults(b *strings.Builder) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(b, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(b, " %s", name)
		}
		fmt.Fprintf(b, "\n        %s", usage)
		switch f.DefValue {
		case "", "0", "false", "[]":
		default:
			if !strings.Contains(usage, "(default") {
				fmt.Fprintf(b, " (default %s)", f.DefValue)
			}
		}
		b.WriteString("\n")
	})
}

// parseInterspersed parses flags wherever they appear among args, so that
// "weir topic create orders --partitions 3" works like the flags-first form.
// Everything after a "--" terminator is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endedWithTerminator(fs, args[:len(args)-len(rest)]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endedWithTerminator reports whether the flag parser stopped at a "--"
// terminator rather than at a "--" that was the value of a flag
// ("--key-separator --").
func endedWithTerminator(fs *flag.FlagSet, consumed []string) bool {
	n := len(consumed)
	if n == 0 || consumed[n-1] != "--" {
		return false
	}
	if n == 1 {
		return true
	}
	prev := consumed[n-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return true
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return true
	}
	if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		return true
	}
	return false // "--" was prev's value
}

// keyValue is one key=value pair of a repeatable flag.
type keyValue struct{ key, value string }

// keyValues is a repeatable key=value flag such as --config or --header.
type keyValues []keyValue

func (kv *keyValues) String() string {
	if kv == nil {
		return ""
	}
	s := make([]string, len(*kv))
	for i, p := range *kv {
		s[i] = p.key + "=" + p.value
	}
	return strings.Join(s, ",")
}

func (kv *keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	*kv = append(*kv, keyValue{k, v})
	return nil
}

// strs is a repeatable string flag.
type strs []string

func (s *strs) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(*s, ",")
}

func (s *strs) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*s = append(*s, v)
	return nil
}

// int32Value is an int32 flag.
type int32Value struct{ p *int32 }

func (v int32Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(int(*v.p))
}

func (v int32Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return errors.New("want a 32-bit integer")
	}
	*v.p = int32(n)
	return nil
}

// int16Value is an int16 flag.
type int16Value struct{ p *int16 }

func (v int16Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(int(*v.p))
}

func (v int16Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 16)
	if err != nil {
		return errors.New("want a 16-bit integer")
	}
	*v.p = int16(n)
	return nil
}

// votersValue is the --voters flag: "1@host:port,2@host:port,...".
type votersValue struct{ p *[]broker.Voter }

func (v votersValue) String() string {
	if v.p == nil {
		return ""
	}
	s := make([]string, len(*v.p))
	for i, vt := range *v.p {
		s[i] = fmt.Sprintf("%d@%s", vt.ID, vt.RaftAddr)
	}
	return strings.Join(s, ",")
}

func (v votersValue) Set(s string) error {
	vs, err := broker.ParseVoters(s)
	if err != nil {
		// The flag package already says which flag is wrong.
		return errors.New(strings.TrimPrefix(err.Error(), broker.ErrInvalidConfig.Error()+": "))
	}
	*v.p = vs
	return nil
}
