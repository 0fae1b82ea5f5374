package pods

import "testing"

// The cases are those Kubernetes documents for its expansion
// (third_party/forked/golang/expansion), run against one map and against
// the same variables split over two, as the kubelet looks them up in the
// container's variables and then the service variables.
func TestExpand(t *testing.T) {
	one := lookupIn(map[string]string{"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""})
	two := lookupIn(map[string]string{"VAR_A": "A", "VAR_EMPTY": ""}, map[string]string{"VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)"})
	cases := []struct{ name, in, want string }{
		{"whole string", "$(VAR_A)", "A"},
		{"repeat", "$(VAR_A)-$(VAR_A)", "A-A"},
		{"beginning", "$(VAR_A)-1", "A-1"},
		{"middle", "___$(VAR_B)___", "___B___"},
		{"end", "___$(VAR_C)", "___C"},
		{"compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"},
		{"escape and expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"},
		{"compound escape", "$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"},
		{"mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"},
		{"backslash escape ignored", `foo\$(VAR_C)bar`, `foo\Cbar`},
		{"two backslashes", `foo\\$(VAR_C)bar`, `foo\\Cbar`},
		{"lots of backslashes", `foo\\\\$(VAR_A)bar`, `foo\\\\Abar`},
		{"nested references", "$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"},
		{"nested references, second type", "$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"},
		{"value is a reference", "$(VAR_REF)", "$(VAR_A)"},
		{"value is a reference twice", "%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"},
		{"empty variable", "foo$(VAR_EMPTY)bar", "foobar"},
		{"unterminated", "foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"},
		{"no operator", "f00__(VAR_A)__", "f00__(VAR_A)__"},
		{"shell special variables", "$?_boo_$!", "$?_boo_$!"},
		{"bare operator", "$VAR_A", "$VAR_A"},
		{"undefined", "$(VAR_DNE)", "$(VAR_DNE)"},
		{"even operators, undefined", "$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"},
		{"even operators, defined", "$$$$$$(VAR_A)", "$$$(VAR_A)"},
		{"odd operators, undefined", "$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"},
		{"odd operators, defined", "$$$$$$$(VAR_A)", "$$$A"},
		{"missing opener", "$VAR_A)", "$VAR_A)"},
		{"shell syntax", "${VAR_A}", "${VAR_A}"},
		{"trailing incomplete", "$(VAR_B)_______$(A", "B_______$(A"},
		{"trailing incomplete, empty", "$(VAR_C)_______$(", "C_______$("},
		{"operator at the end", "$(VAR_A)foobarzab$", "Afoobarzab$"},
		{"shell-escaped incomplete", `foo-\$(VAR_A`, `foo-\$(VAR_A`},
		{"many $( in the middle", "--$($($($($--", "--$($($($($--"},
		{"many $( at the start", "$($($($($--foo$(", "$($($($($--foo$("},
		{"many $( at the end", "foo0--$($($($(", "foo0--$($($($("},
		{"escaped operators in names", "$(foo$$var)", "$(foo$$var)"},
		{"newline", "\n", "\n"},
		{"empty name", "$()", "$()"},
		{"multibyte", "é$(VAR_A)ü", "éAü"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, lookup := range []lookupFunc{one, two} {
				if got := expand(tc.in, lookup); got != tc.want {
					t.Errorf("expand(%q) with %d maps = %q, want %q", tc.in, i+1, got, tc.want)
				}
			}
		})
	}
}

// TestExpandChain checks that each variable sees the ones declared before
// it already expanded, as env entries do.
func TestExpandChain(t *testing.T) {
	vals := map[string]string{}
	for _, e := range [][2]string{{"FOO", "bar"}, {"ZOO", "$(FOO)-1"}, {"BLU", "$(ZOO)-2"}} {
		vals[e[0]] = expand(e[1], lookupIn(vals))
	}
	if vals["BLU"] != "bar-1-2" || vals["ZOO"] != "bar-1" {
		t.Errorf("chained expansion = %v, want ZOO=bar-1 BLU=bar-1-2", vals)
	}
}
