package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...any) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	fi, err := file.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// showProgress rewrites one terminal line every interval with count's value
// until the returned stop is called, which clears the line.
func showProgress(w io.Writer, interval time.Duration, verb string, count func() int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		shown := false
		for {
			select {
			case <-tick.C:
				fmt.Fprintf(w, "\r%s %s...", verb, plural(count(), "record"))
				shown = true
			case <-done:
				if shown {
					fmt.Fprint(w, "\r\033[K") // clear the line for the final count
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// lockedWriter serialises writes from several goroutines, a line at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) printf(format string, args ...any) {
	fmt.Fprintf(l, format, args...)
}

// prefixWriter passes complete lines on to out, each behind prefix; a
// trailing partial line waits for its end or for flush. It is not safe for
// concurrent use: exec.Cmd writes a child's output from one goroutine.
type prefixWriter struct {
	out     io.Writer
	prefix  string
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	rest := p.partial
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if _, err := io.WriteString(p.out, p.prefix+string(rest[:i+1])); err != nil {
			return 0, err
		}
		rest = rest[i+1:]
	}
	p.partial = p.partial[:copy(p.partial, rest)]
	return len(b), nil
}

// flush writes a trailing partial line, ended.
func (p *prefixWriter) flush() {
	if len(p.partial) > 0 {
		io.WriteString(p.out, p.prefix+string(p.partial)+"\n")
		p.partial = p.partial[:0]
	}
}
