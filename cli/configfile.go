package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// DefaultConfigFile is the configuration file server and agent read
// unless --config names another. Files in DefaultConfigFile+".d" named
// *.yaml are read after it, in lexical order.
const DefaultConfigFile = "/etc/minik/config.yaml"

// configFlagName is the flag naming the configuration file.
const configFlagName = "config"

// WithConfigFile adds --config to cmd and makes cmd read its flags'
// values from that file and its drop-in directory (FILE.d/*.yaml) before
// its action runs. Keys are the flags' names or long aliases (`cluster-cidr:
// 10.42.0.0/16`, lists as YAML lists); a flag given on the command line
// or through its environment variable wins over every file, and a later
// file over an earlier one. An unknown key or a value of the wrong type
// fails the command, naming the file, the line and the key, before any
// value is applied. A missing default file is no error; a missing file
// named by --config is; --config "" reads no file.
func WithConfigFile(cmd *ucli.Command) *ucli.Command {
	cmd.Flags = append(cmd.Flags, &ucli.StringFlag{
		Name: configFlagName, Value: DefaultConfigFile, EnvVars: []string{"MINIK_CONFIG"},
		Usage: "YAML file of flag values (keys named as the flags); FILE.d/*.yaml are read after it",
	})
	before := cmd.Before
	cmd.Before = func(c *ucli.Context) error {
		if err := applyConfigFiles(c, cmd); err != nil {
			return ucli.Exit("error: "+err.Error(), 1)
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	return cmd
}

// applyConfigFiles sets the flags of cmd that neither the command line
// nor the environment set from the configuration files.
func applyConfigFiles(c *ucli.Context, cmd *ucli.Command) error {
	path := c.String(configFlagName)
	files, err := configFiles(path, c.IsSet(configFlagName))
	if err != nil {
		return err
	}
	values := map[string][]string{}
	var errs []error
	for _, f := range files {
		errs = append(errs, readConfigFile(f, cmd, values))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if c.IsSet(name) {
			continue // the command line or the environment wins
		}
		for _, v := range values[name] {
			if err := c.Set(name, v); err != nil {
				return fmt.Errorf("config key %q: %w", name, err)
			}
		}
	}
	return nil
}

// configFiles returns path (when it exists, or must: explicit) and the
// *.yaml files of path+".d" in lexical order.
func configFiles(path string, explicit bool) ([]string, error) {
	if path == "" {
		return nil, nil // --config "": no file
	}
	var files []string
	switch _, err := os.Stat(path); {
	case err == nil:
		files = append(files, path)
	case explicit || !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	dropIns, err := filepath.Glob(filepath.Join(path+".d", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dropIns)
	return append(files, dropIns...), nil
}

// readConfigFile checks the keys and values of file against cmd's flags
// and records them in values (a later file replaces an earlier file's
// value).
func readConfigFile(file string, cmd *ucli.Command, values map[string][]string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: want a mapping of flag names to values", file, root.Line)
	}
	flags := flagsByName(cmd)
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		f, ok := flags[key.Value]
		if !ok || key.Value == configFlagName {
			errs = append(errs, fmt.Errorf("config file %s: line %d: unknown key %q: not a flag of minik %s", file, key.Line, key.Value, cmd.Name))
			continue
		}
		vs, err := flagValues(f, val)
		if err != nil {
			errs = append(errs, fmt.Errorf("config file %s: line %d: key %q: %w", file, val.Line, key.Value, err))
			continue
		}
		values[f.Names()[0]] = vs
	}
	return errors.Join(errs...)
}

// flagsByName indexes cmd's flags by their names and long aliases
// (an agent's `join` is also `server`), not by one-letter ones.
func flagsByName(cmd *ucli.Command) map[string]ucli.Flag {
	m := map[string]ucli.Flag{}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if len(n) > 1 {
				m[n] = f
			}
		}
	}
	return m
}

// flagValues checks that n is a value of the flag's type and returns it
// as the strings to set the flag with (one per list element).
func flagValues(f ucli.Flag, n *yaml.Node) ([]string, error) {
	if _, ok := f.(*ucli.StringSliceFlag); ok {
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("must be a list of strings, not %s", describe(n))
		}
		out := make([]string, 0, len(n.Content))
		for i, e := range n.Content {
			if !isTag(e, "!!str", "!!int", "!!float") {
				return nil, fmt.Errorf("element %d must be a string, not %s", i, describe(e))
			}
			out = append(out, e.Value)
		}
		return out, nil
	}
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("must be a single value, not %s", describe(n))
	}
	var ok bool
	var want string
	switch f.(type) {
	case *ucli.StringFlag:
		ok, want = isTag(n, "!!str", "!!int", "!!float"), "a string"
	case *ucli.IntFlag, *ucli.Int64Flag:
		ok, want = isTag(n, "!!int"), "an integer"
	case *ucli.Float64Flag:
		ok, want = isTag(n, "!!int", "!!float"), "a number"
	case *ucli.BoolFlag:
		ok, want = isTag(n, "!!bool"), "true or false"
	case *ucli.DurationFlag:
		_, err := time.ParseDuration(n.Value)
		ok, want = isTag(n, "!!str") && err == nil, "a duration such as 10s or 5m"
	default:
		return nil, fmt.Errorf("cannot be set in a config file")
	}
	if !ok {
		return nil, fmt.Errorf("must be %s, not %s", want, describe(n))
	}
	if _, isBool := f.(*ucli.BoolFlag); isBool {
		b, _ := strconv.ParseBool(n.Value)
		return []string{strconv.FormatBool(b)}, nil
	}
	return []string{n.Value}, nil
}

func isTag(n *yaml.Node, tags ...string) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	for _, t := range tags {
		if n.ShortTag() == t {
			return true
		}
	}
	return false
}

// describe names what n is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return fmt.Sprintf("the boolean %s", n.Value)
	case "!!int", "!!float":
		return fmt.Sprintf("the number %s", n.Value)
	}
	return fmt.Sprintf("%q", n.Value)
}
