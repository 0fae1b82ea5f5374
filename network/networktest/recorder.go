package networktest

import (
	"context"
	"slices"
	"strings"
	"sync"
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
	failNext error
}

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

// Restore records the call and applies chain declarations (which flush),
// -A and -X lines to the model.
func (r *Recorder) Restore(ctx context.Context, table string, rules []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failNext; err != nil {
		r.failNext = nil
		return err
	}
	r.restores = append(r.restores, Restore{Table: table, Rules: string(rules)})
	t := r.table(table)
	for _, line := range strings.Split(string(rules), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(f[0], ":"):
			t[f[0][1:]] = []string{}
		case f[0] == "-A" && len(f) > 1:
			t[f[1]] = append(t[f[1]], line)
		case f[0] == "-X" && len(f) > 1:
			delete(t, f[1])
		}
	}
	return nil
}

// EnsureRule records rule at the top of chain unless it is there.
func (r *Recorder) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.table(table)
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
