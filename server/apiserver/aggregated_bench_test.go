package apiserver

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/minik-dev/minik/store/storetest"
)

// BenchmarkDiscovery measures what a client pays to learn the whole API:
// two aggregated documents, or the classic /api, /apis and one document
// per group-version. Requests are served in process, without a network.
func BenchmarkDiscovery(b *testing.B) {
	s, err := New(Config{Store: storetest.New(b), Logger: slog.New(slog.DiscardHandler), ServiceCIDR: "10.43.0.0/16"})
	if err != nil {
		b.Fatal(err)
	}
	get := func(path, accept string) []byte {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s = %d", path, w.Code)
		}
		return w.Body.Bytes()
	}
	b.Run("aggregated", func(b *testing.B) {
		for b.Loop() {
			get("/api", acceptAggregated)
			get("/apis", acceptAggregated)
		}
	})
	b.Run("classic", func(b *testing.B) {
		paths := []string{"/api/v1"}
		for _, g := range s.apiGroupList().Groups {
			for _, v := range g.Versions {
				paths = append(paths, "/apis/"+v.GroupVersion)
			}
		}
		for b.Loop() {
			get("/api", "application/json")
			get("/apis", "application/json")
			for _, p := range paths {
				get(p, "application/json")
			}
		}
		b.ReportMetric(float64(len(paths)+2), "requests/op")
	})
}
