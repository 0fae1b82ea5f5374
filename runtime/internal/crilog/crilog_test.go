package crilog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStream(t *testing.T) {
	long := strings.Repeat("x", MaxLine+3)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, []string{"stdout F a", "stdout F b"}},
		{"split writes", []string{"he", "llo\nwo", "rld\n"}, []string{"stdout F hello", "stdout F world"}},
		{"unterminated", []string{"tail"}, []string{"stdout P tail"}},
		{"empty line", []string{"\n"}, []string{"stdout F "}},
		{"long line", []string{long + "\n"}, []string{"stdout P " + long[:MaxLine], "stdout F xxx"}},
		{"long pending", []string{long}, []string{"stdout P " + long[:MaxLine], "stdout P xxx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			f.now = func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC) }
			w := f.Stream("stdout")
			for _, s := range tc.writes {
				if _, err := w.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			f.Close()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				ts, rest, _ := strings.Cut(line, " ")
				if ts != "2024-01-02T03:04:05.000000006Z" {
					t.Errorf("time = %q", ts)
				}
				got = append(got, rest)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}
