package pods

import "strings"

// Dependent variable expansion, as Kubernetes applies it to env values,
// command, args and subPathExpr: $(NAME) is replaced with the value mapping
// gives NAME; $$ stands for one $; anything else, including $(NAME) for a
// name mapping does not know, an unterminated $( and a lone $, is kept as
// written. A reference ends at the first ')' after "$(", so nested
// references are not expanded.

// lookupFunc gives the value of a variable and whether it is defined.
type lookupFunc func(name string) (string, bool)

// expand expands the references of s with lookup.
func expand(s string, lookup lookupFunc) string {
	i := strings.IndexByte(s, '$')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				// Unterminated: keep "$(" and go on after it.
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// lookupIn looks names up in each map in turn.
func lookupIn(maps ...map[string]string) lookupFunc {
	return func(name string) (string, bool) {
		for _, m := range maps {
			if v, ok := m[name]; ok {
				return v, true
			}
		}
		return "", false
	}
}
