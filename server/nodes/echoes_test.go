package nodes

import "testing"

func TestEchoesTake(t *testing.T) {
	e := newEchoes()
	for _, rev := range []int64{5, 9, 12} {
		e.add("n1", rev)
	}
	e.add("n2", 9)
	steps := []struct {
		node string
		rev  int64
		want bool
	}{
		{"n1", 4, false},  // not written by n1
		{"n1", 9, true},   // 5 is passed over and forgotten
		{"n1", 5, false},  // forgotten
		{"n1", 9, false},  // taken once
		{"n2", 9, true},   // another node's own
		{"n1", 12, true},  // still held after the take of 9
		{"n3", 12, false}, // unknown node
	}
	for _, s := range steps {
		if got := e.take(s.node, s.rev); got != s.want {
			t.Errorf("take(%s, %d) = %v, want %v", s.node, s.rev, got, s.want)
		}
	}
	if len(e.revs) != 0 {
		t.Errorf("echoes left after every revision was taken or passed: %v", e.revs)
	}
}

func TestEchoesBounded(t *testing.T) {
	e := newEchoes()
	for rev := int64(1); rev <= maxEchoes+10; rev++ {
		e.add("quiet", rev)
	}
	if n := len(e.revs["quiet"]); n != maxEchoes {
		t.Fatalf("revisions kept for a node no session reads = %d, want %d", n, maxEchoes)
	}
	if e.take("quiet", 5) {
		t.Error("take of a revision dropped by the bound = true, want false")
	}
	if !e.take("quiet", maxEchoes+10) {
		t.Error("take of the newest revision = false, want true")
	}
}
