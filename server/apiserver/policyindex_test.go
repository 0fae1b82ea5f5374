package apiserver

import (
	"testing"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

func TestPolicyIndex(t *testing.T) {
	st := storetest.New(t)
	ctx := testContext(t)
	rev, err := st.Create(ctx, "/registry/resourcequotas/a/q", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	var p policyIndex
	if !p.mayHave("resourcequotas", "b") {
		t.Errorf("an unloaded index rules a namespace out")
	}
	if err := p.load(ctx, st, rev); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		do       func()
		resource string
		ns       string
		want     bool
	}{
		{"listed", func() {}, "resourcequotas", "a", true},
		{"absent", func() {}, "resourcequotas", "b", false},
		{"other kind", func() {}, "limitranges", "a", false},
		{"stored here", func() { p.stored("limitranges", "b", "l") }, "limitranges", "b", true},
		{"watched create", func() {
			p.observe(store.Event{Type: store.EventCreate, Key: "/registry/resourcequotas/c/q"})
		}, "resourcequotas", "c", true},
		{"watched delete", func() {
			p.observe(store.Event{Type: store.EventDelete, Key: "/registry/resourcequotas/a/q"})
		}, "resourcequotas", "a", false},
		{"watch down", p.unready, "resourcequotas", "z", true},
	}
	for _, s := range steps {
		s.do()
		if got := p.mayHave(s.resource, s.ns); got != s.want {
			t.Errorf("%s: mayHave(%s, %s) = %v, want %v", s.name, s.resource, s.ns, got, s.want)
		}
	}
}
