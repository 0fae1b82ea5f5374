package manifests

import (
	"fmt"
	"strings"
	"testing"
)

// manyConfigMaps is a manifest of n ConfigMaps whose data is v.
func manyConfigMaps(n int, v string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  v: %q\n", i, v)
	}
	return b.String()
}

// BenchmarkSyncChanged syncs a file of 50 ConfigMaps whose content
// changes at each iteration: parse, dry run, apply, record.
func BenchmarkSyncChanged(b *testing.B) {
	e := newEnv(b)
	i := 0
	for b.Loop() {
		i++
		e.write("many.yaml", manyConfigMaps(50, fmt.Sprint(i)))
		e.sync()
	}
	if got := e.mustConfigMap("default", "cm-49").Data["v"]; got != fmt.Sprint(i) {
		b.Fatalf("cm-49 v = %q, want %d", got, i)
	}
}

// BenchmarkSyncUnchanged is a poll that finds nothing changed in a
// directory of 10 files of 50 ConfigMaps: read and hash only.
func BenchmarkSyncUnchanged(b *testing.B) {
	e := newEnv(b)
	for i := range 10 {
		e.write(fmt.Sprintf("f%d.yaml", i), strings.ReplaceAll(manyConfigMaps(50, "x"), "name: cm-", fmt.Sprintf("name: f%d-cm-", i)))
	}
	e.sync()
	for b.Loop() {
		e.sync()
	}
}
