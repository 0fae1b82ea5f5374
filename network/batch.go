package network

import (
	"cmp"
	"slices"
	"strings"
)

// DefaultMaxRestoreLines bounds one iptables-restore input. With the
// nf_tables backend the cost of one restore grows much faster than its
// size: on a 2-core VM one input for 5,000 services × 3 endpoints (70k
// lines) took 134 s, the same in inputs of at most 10k lines 11 s, and of
// at most 3k–5k lines 4.5–6 s (1k lines: 5 s, but full rewrites slow down
// as each input reloads the growing ruleset).
const DefaultMaxRestoreLines = 4000

// chainLevel orders chains so that a chain is written after every chain
// it jumps to, and deleted before them.
func chainLevel(name string) int {
	switch {
	case strings.HasPrefix(name, "MINIK-SEP-"):
		return 1
	case strings.HasPrefix(name, "MINIK-SVC-"):
		return 2
	case name == chainNodePorts, strings.HasPrefix(name, chainServices+"-"):
		return 3
	case name == chainServices:
		return 4
	}
	return 0 // chains without jumps to other proxy chains
}

// restoreBatch is one iptables-restore input under construction.
type restoreBatch struct {
	decl, rules, deletes strings.Builder
	lines                int
}

func (b *restoreBatch) bytes() []byte {
	return []byte(b.decl.String() + b.rules.String() + b.deletes.String())
}

// planRestores packs chain writes and deletions into iptables-restore
// inputs of at most maxLines lines (a chain is never split; maxLines <= 0
// means one input). Inputs must be applied in order: writes go leaves
// first, deletions roots first, so between inputs every jump has a target.
func planRestores(writes []*chain, deletes []string, maxLines int) [][]byte {
	writes = slices.Clone(writes)
	slices.SortStableFunc(writes, func(a, b *chain) int { return cmp.Compare(chainLevel(a.name), chainLevel(b.name)) })
	deletes = slices.Clone(deletes)
	slices.SortFunc(deletes, func(a, b string) int {
		return cmp.Or(cmp.Compare(chainLevel(b), chainLevel(a)), cmp.Compare(a, b))
	})
	var out [][]byte
	cur := &restoreBatch{}
	room := func(n int) {
		if maxLines > 0 && cur.lines > 0 && cur.lines+n > maxLines {
			out = append(out, cur.bytes())
			cur = &restoreBatch{}
		}
		cur.lines += n
	}
	for _, c := range writes {
		room(1 + len(c.rules))
		cur.decl.WriteString(":" + c.name + " - [0:0]\n")
		for _, r := range c.rules {
			cur.rules.WriteString(r + "\n")
		}
	}
	for _, name := range deletes {
		room(2)
		cur.decl.WriteString(":" + name + " - [0:0]\n")
		cur.deletes.WriteString("-X " + name + "\n")
	}
	if cur.lines > 0 {
		out = append(out, cur.bytes())
	}
	return out
}
