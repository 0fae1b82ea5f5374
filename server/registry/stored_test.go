package registry

import "testing"

func TestJSONWithResourceVersion(t *testing.T) {
	cases := []struct {
		name, stored string
		rev          int64
		want         string
	}{
		{"fields", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":{}}`, 7,
			`{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"7","name":"a"},"spec":{}}`},
		{"empty metadata", `{"kind":"Pod","metadata":{}}`, 12, `{"kind":"Pod","metadata":{"resourceVersion":"12"}}`},
		{"no metadata", `{"kind":"Pod"}`, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(JSONWithResourceVersion([]byte(tc.stored), tc.rev)); got != tc.want {
				t.Errorf("WithResourceVersion(%s, %d) = %s, want %s", tc.stored, tc.rev, got, tc.want)
			}
		})
	}
}
