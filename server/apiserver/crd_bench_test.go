package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

const benchWidget = `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"%s","labels":{"app":"bench"}},` +
	`"spec":{"color":"red","replicas":2,"ports":[{"name":"http","number":80}],"extra":{"note":"benchmark"}}}`

// BenchmarkCustomObjectsBesidePods creates 10,000 Widgets (a custom kind
// with a schema, defaults and a CEL rule) and 10,000 pods through the
// HTTPS API from 32 clients, then lists each kind, and reports both
// create rates, both list times and their ratios, measured in the same
// run. One iteration is the whole run.
func BenchmarkCustomObjectsBesidePods(b *testing.B) {
	const n, clients = 10000, 32
	for i := 0; i < b.N; i++ {
		ts, s := benchServer(b)
		crd := widgetCRD(b)
		ctx := context.Background()
		crdRes, _ := s.lookupIn(schema.GroupVersion{Group: "apiextensions.k8s.io", Version: "v1"}, "customresourcedefinitions")
		if _, _, err := s.createObject(ctx, crdRes, crd, false); err != nil {
			b.Fatal(err)
		}
		for {
			if _, ok := s.lookupIn(schema.GroupVersion{Group: "example.com", Version: "v1"}, "widgets"); ok {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		client := ts.Client()
		client.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
		podRate := createMany(b, client, ts.URL+"/api/v1/namespaces/default/pods", benchPod, n, clients)
		crRate := createMany(b, client, ts.URL+"/apis/example.com/v1/namespaces/default/widgets", benchWidget, n, clients)
		podList := timeList(b, client, ts.URL+"/api/v1/namespaces/default/pods", n)
		crList := timeList(b, client, ts.URL+"/apis/example.com/v1/namespaces/default/widgets", n)
		b.ReportMetric(podRate, "pod-creates/s")
		b.ReportMetric(crRate, "cr-creates/s")
		b.ReportMetric(crRate/podRate, "cr/pod-create-ratio")
		b.ReportMetric(float64(podList.Milliseconds()), "pod-list-ms")
		b.ReportMetric(float64(crList.Milliseconds()), "cr-list-ms")
		b.ReportMetric(float64(crList)/float64(podList), "cr/pod-list-ratio")
	}
}

// createMany POSTs n objects made from format (a name goes in %s) to url
// from clients goroutines and returns the creates per second.
func createMany(b *testing.B, c *http.Client, url, format string, n, clients int) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				body := fmt.Sprintf(format, "o"+strconv.FormatInt(i, 10))
				resp, err := c.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("create = %d: %s", resp.StatusCode, data)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// timeList lists url as JSON and returns how long it took, checking it
// held n items.
func timeList(b *testing.B, c *http.Client, url string, n int) time.Duration {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if got := bytes.Count(data, []byte(`"uid":`)); got != n {
		b.Fatalf("list of %s = %d items, want %d", url, got, n)
	}
	return d
}
