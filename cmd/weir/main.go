// Command weir is the one binary of weir: it runs a broker, administers
// topics, records and consumer groups on any Kafka-compatible cluster, and
// inspects the local state of stream applications.
//
// Every command's core is a method of app taking (ctx, io.Writer, args), so
// tests drive the same code paths a person does; run ties them to the process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const defaultBrokers = "127.0.0.1:9092"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the usual way
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// app carries what every command shares: the global flags and the process's
// standard streams other than stdout, which commands receive as a writer.
type app struct {
	brokers string // comma-separated seed brokers
	stdin   io.Reader
	stderr  io.Writer
}

// command is one entry of a dispatch table.
type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, w io.Writer, args []string) error
}

var commands = []command{
	{"broker", "run a weir broker, alone or as one node of a cluster", (*app).brokerCmd},
	{"topic", "create, list, describe, alter and delete topics", (*app).topicCmd},
	{"produce", "produce lines from stdin as records", (*app).produceCmd},
	{"consume", "print records from a topic", (*app).consumeCmd},
	{"group", "list, describe, reset and delete consumer groups", (*app).groupCmd},
	{"txn", "list and describe transactions", (*app).txnCmd},
	{"state", "inspect a stopped stream application's state stores", (*app).stateCmd},
	{"bench", "benchmark brokers and stream topologies: produce, consume, e2e, wordcount, windowed-revenue, restore", (*app).benchCmd},
	{"dev", "run a local multi-node cluster for development", (*app).devCmd},
}

// run executes the command line args and returns the process exit code:
// 0 on success, 1 on error, 2 on a usage error and 130 when interrupted.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{brokers: envOr("WEIR_BROKERS", defaultBrokers), stdin: stdin, stderr: stderr}
	err := a.main(ctx, stdout, args)
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(stderr, "weir: interrupted")
		return 130
	case errors.As(err, &uerr):
		if uerr.msg != "" { // an empty message means the usage was printed already
			name := strings.TrimSpace("weir " + uerr.path)
			fmt.Fprintf(stderr, "%s: %s\nRun '%s -h' for usage.\n", name, uerr.msg, name)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "weir: %v\n", err)
		return 1
	}
}

func (a *app) main(ctx context.Context, w io.Writer, args []string) error {
	fs := a.newFlags("", "weir [--brokers host:port[,host:port]] <command> [args]", "")
	fs.usageFn = func() string { return mainUsage(fs) }
	if err := fs.Parse(args); err != nil {
		return fs.parseError(w, err)
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(a.stderr, mainUsage(fs))
		return &usageError{}
	}
	if args[0] == "help" {
		return a.help(w, fs, args[1:])
	}
	return a.dispatch(ctx, w, "", commands, args)
}

// help prints the usage of the command named by args, or of weir itself.
func (a *app) help(w io.Writer, fs *flagSet, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(w, mainUsage(fs))
		return nil
	}
	return a.dispatch(context.Background(), w, "", commands, append(args, "-h"))
}

// dispatch runs the command of cmds named by args[0]. path is the command
// path so far ("" for weir itself, "topic" for weir topic).
func (a *app) dispatch(ctx context.Context, w io.Writer, path string, cmds []command, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, commandsUsage(path, cmds))
		return &usageError{path: path}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(w, commandsUsage(path, cmds))
		return flag.ErrHelp
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(a, ctx, w, args[1:])
		}
	}
	return &usageError{path: path, msg: fmt.Sprintf("unknown command %q", args[0])}
}

func mainUsage(fs *flagSet) string {
	var b strings.Builder
	b.WriteString("weir runs a Kafka-compatible broker and administers topics, records and groups.\n\n")
	b.WriteString("Usage:\n  weir [--brokers host:port[,host:port]] <command> [args]\n\nCommands:\n")
	writeCommands(&b, commands)
	b.WriteString("  help      show help for a command (weir help topic)\n")
	b.WriteString("\nGlobal flags (accepted before or after the command):\n")
	fs.writeDefaults(&b)
	b.WriteString("\nRun 'weir <command> -h' for a command's usage.\n")
	return b.String()
}

func commandsUsage(path string, cmds []command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  weir %s <command> [args]\n\nCommands:\n", path)
	writeCommands(&b, cmds)
	fmt.Fprintf(&b, "\nRun 'weir %s <command> -h' for a command's usage.\n", path)
	return b.String()
}

func writeCommands(b *strings.Builder, cmds []command) {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(b, "  %-*s %s\n", width, c.name, c.summary)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
