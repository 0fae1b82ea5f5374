package networktest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/minik-dev/minik/network"
)

// Restore is one recorded Recorder.Restore call.
type Restore struct {
	Table string
	Rules string
}

// Recorder is a fake network.Executor. It records what it is asked to do
// and keeps a small model of the chains that exist, so code that lists
// chains sees its own earlier writes. It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	restores []Restore
	chains   map[string]map[string][]string // table → chain → rules (built-ins: jump rules)
	sysctls  map[string]string
	flows    []network.StaleFlow
	failNext error
}

var (
	_ network.Executor         = (*Recorder)(nil)
	_ network.ConntrackCleaner = (*Recorder)(nil)
)

// NewRecorder returns a Recorder whose tables hold only built-in chains.
func NewRecorder() *Recorder {
	r := &Recorder{chains: map[string]map[string][]string{}, sysctls: map[string]string{}}
	builtin := map[string][]string{
		"filter": {"INPUT", "FORWARD", "OUTPUT"},
		"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	}
	for table, names := range builtin {
		r.chains[table] = map[string][]string{}
		for _, n := range names {
			r.chains[table][n] = nil
		}
	}
	return r
}

// FailNextRestore makes the next Restore return err without applying.
func (r *Recorder) FailNextRestore(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext = err
}

// Restore records the call and applies it to the model as one
// transaction: chain declarations (which flush), then -A and -X lines in
// order. Like iptables-restore it fails, changing nothing, on a rule for
// an undeclared chain, a jump to a missing user chain, or -X of a chain
// that is missing or still referenced.
func (r *Recorder) Restore(ctx context.Context, table string, rules []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failNext; err != nil {
		r.failNext = nil
		return err
	}
	t := maps.Clone(r.table(table))
	for n, line := range strings.Split(string(rules), "\n") {
		if err := applyLine(t, line); err != nil {
			return fmt.Errorf("recorder: %s line %d %q: %w", table, n+1, line, err)
		}
	}
	r.chains[table] = t
	r.restores = append(r.restores, Restore{Table: table, Rules: string(rules)})
	return nil
}

// applyLine applies one iptables-restore line to a table model.
func applyLine(t map[string][]string, line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 0:
	case strings.HasPrefix(f[0], ":"):
		t[f[0][1:]] = []string{}
	case f[0] == "-A" && len(f) > 1:
		if _, ok := t[f[1]]; !ok {
			return errors.New("no such chain")
		}
		if target := jumpTarget(f); isUserChain(target) && t[target] == nil {
			return fmt.Errorf("jump to missing chain %s", target)
		}
		t[f[1]] = append(t[f[1]], line)
	case f[0] == "-X" && len(f) > 1:
		if _, ok := t[f[1]]; !ok {
			return errors.New("no such chain")
		}
		for name, rules := range t {
			for _, rule := range rules {
				if jumpTarget(strings.Fields(rule)) == f[1] {
					return fmt.Errorf("chain still referenced from %s", name)
				}
			}
		}
		delete(t, f[1])
	default:
		return errors.New("unsupported line")
	}
	return nil
}

// jumpTarget returns the target of a rule's -j, or "".
func jumpTarget(fields []string) string {
	if i := slices.Index(fields, "-j"); i >= 0 && i+1 < len(fields) {
		return fields[i+1]
	}
	return ""
}

// isUserChain reports whether a -j target names a chain rather than a
// built-in target such as DNAT.
func isUserChain(target string) bool {
	return strings.HasPrefix(target, "MINIK-") || strings.HasPrefix(target, "CNI-")
}

// EnsureRule records rule at the top of chain unless it is there.
func (r *Recorder) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.table(table)
	if target := jumpTarget(rule); isUserChain(target) && t[target] == nil {
		return fmt.Errorf("recorder: %s %s: jump to missing chain %s", table, chain, target)
	}
	line := strings.Join(rule, " ")
	if !slices.Contains(t[chain], line) {
		t[chain] = append([]string{line}, t[chain]...)
	}
	return nil
}

// DeleteRule removes rule from chain if there.
func (r *Recorder) DeleteRule(ctx context.Context, table, chain string, rule ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.table(table)
	line := strings.Join(rule, " ")
	t[chain] = slices.DeleteFunc(t[chain], func(s string) bool { return s == line })
	return nil
}

// ListChains returns the table's chains in the model, sorted.
func (r *Recorder) ListChains(ctx context.Context, table string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for n := range r.table(table) {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// SetSysctl records the value.
func (r *Recorder) SetSysctl(ctx context.Context, key, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sysctls[key] = value
	return nil
}

// DeleteStaleFlows records the flows.
func (r *Recorder) DeleteStaleFlows(ctx context.Context, flows []network.StaleFlow) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flows = append(r.flows, flows...)
	return nil
}

// StaleFlows returns the flows passed to DeleteStaleFlows and forgets them.
func (r *Recorder) StaleFlows() []network.StaleFlow {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.flows
	r.flows = nil
	return out
}

// Restores returns the recorded Restore calls and forgets them.
func (r *Recorder) Restores() []Restore {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.restores
	r.restores = nil
	return out
}

// Chain returns the rules of a chain in the model (for built-in chains, the
// rules added with EnsureRule) and whether it exists.
func (r *Recorder) Chain(table, chain string) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rules, ok := r.table(table)[chain]
	return slices.Clone(rules), ok
}

// Sysctl returns a value set with SetSysctl.
func (r *Recorder) Sysctl(key string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sysctls[key]
}

// table returns the model of a table, creating it.
// r.mu must be held.
func (r *Recorder) table(name string) map[string][]string {
	if r.chains[name] == nil {
		r.chains[name] = map[string][]string{}
	}
	return r.chains[name]
}
