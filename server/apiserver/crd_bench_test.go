package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
// run. A watch of each kind, opened before its creates, must receive all
// 10,000 ADDED events: the time from the first create until the last
// event arrived, the events per second, the ratio and how long after the
// last create returned the last event arrived are reported too.
// One iteration is the whole run.
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
		podWatch := watchAdded(b, ts, "/api/v1/namespaces/default/pods", n)
		podStart := time.Now()
		podRate := createMany(b, client, ts.URL+"/api/v1/namespaces/default/pods", benchPod, n, clients)
		podWatched := podWatch.wait(b, podStart)
		crWatch := watchAdded(b, ts, "/apis/example.com/v1/namespaces/default/widgets", n)
		crStart := time.Now()
		crRate := createMany(b, client, ts.URL+"/apis/example.com/v1/namespaces/default/widgets", benchWidget, n, clients)
		crWatched := crWatch.wait(b, crStart)
		podList := timeList(b, client, ts.URL+"/api/v1/namespaces/default/pods", n)
		crList := timeList(b, client, ts.URL+"/apis/example.com/v1/namespaces/default/widgets", n)
		b.ReportMetric(podRate, "pod-creates/s")
		b.ReportMetric(crRate, "cr-creates/s")
		b.ReportMetric(crRate/podRate, "cr/pod-create-ratio")
		b.ReportMetric(float64(podList.Milliseconds()), "pod-list-ms")
		b.ReportMetric(float64(crList.Milliseconds()), "cr-list-ms")
		b.ReportMetric(float64(crList)/float64(podList), "cr/pod-list-ratio")
		b.ReportMetric(float64(podWatched.Milliseconds()), "pod-watch-ms")
		b.ReportMetric(float64(crWatched.Milliseconds()), "cr-watch-ms")
		b.ReportMetric(float64(n)/podWatched.Seconds(), "pod-watch-events/s")
		b.ReportMetric(float64(n)/crWatched.Seconds(), "cr-watch-events/s")
		b.ReportMetric(float64(crWatched)/float64(podWatched), "cr/pod-watch-ratio")
		// How long after the last create returned the last event arrived
		// (negative: before its response did).
		b.ReportMetric(float64((podWatched - seconds(n, podRate)).Milliseconds()), "pod-watch-lag-ms")
		b.ReportMetric(float64((crWatched - seconds(n, crRate)).Milliseconds()), "cr-watch-lag-ms")
	}
}

// seconds is how long n creates took at rate per second.
func seconds(n int, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second))
}

// addedWatch is a watch counting ADDED events until it has seen n.
type addedWatch struct {
	done chan time.Time // receives when the nth ADDED event arrived
	errc chan error
}

// watchAdded opens a watch of path (on its own connection, so that the
// creates do not share it) and counts its ADDED events in the
// background. It returns once the server has answered the watch.
func watchAdded(b *testing.B, ts *httptest.Server, path string, n int) *addedWatch {
	tr := ts.Client().Transport.(*http.Transport).Clone()
	b.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path+"?watch=1", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("watch %s = %d", path, resp.StatusCode)
	}
	w := &addedWatch{done: make(chan time.Time, 1), errc: make(chan error, 1)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		seen := 0
		for sc.Scan() {
			if bytes.HasPrefix(sc.Bytes(), []byte(`{"type":"ADDED"`)) {
				if seen++; seen == n {
					w.done <- time.Now()
					return
				}
			}
		}
		w.errc <- fmt.Errorf("watch of %s ended after %d ADDED events, want %d: %v", path, seen, n, sc.Err())
	}()
	return w
}

// wait returns the time from start until the last event arrived.
func (w *addedWatch) wait(b *testing.B, start time.Time) time.Duration {
	select {
	case at := <-w.done:
		return at.Sub(start)
	case err := <-w.errc:
		b.Fatal(err)
	case <-time.After(10 * time.Minute):
		b.Fatal("watch did not see every ADDED event within 10 minutes")
	}
	return 0
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
