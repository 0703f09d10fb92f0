package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// applyConfigFile sets the flags of fs named in path, a file of
// "key = value" lines where a key is a flag name ("data-dir"; "data_dir" and
// "data.dir" work too). Blank lines and lines starting with # are ignored,
// and a value may be double-quoted. Flags set on the command line win over
// the file.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	explicit := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, i+1)
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s: want key = value, got %q", where, line)
		}
		key = strings.NewReplacer("_", "-", ".", "-").Replace(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' {
			if value, err = strconv.Unquote(value); err != nil {
				return fmt.Errorf("%s: bad quoted value: %v", where, err)
			}
		}
		if fs.Lookup(key) == nil || key == "config" {
			return fmt.Errorf("%s: unknown setting %q (settings are the flags of `%s -h`)", where, key, fs.Name())
		}
		if explicit[key] {
			continue
		}
		if err := fs.Set(key, value); err != nil {
			return fmt.Errorf("%s: %s: %v", where, key, err)
		}
	}
	return nil
}
