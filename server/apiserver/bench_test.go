package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minik-dev/minik/store/storetest"
)

// benchServer serves the API over real TLS from a store in a temp dir.
func benchServer(b *testing.B) (*httptest.Server, *Server) {
	st := storetest.New(b)
	s, err := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler), ServiceCIDR: "10.43.0.0/16"})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.EnsureNamespaces(context.Background()); err != nil {
		b.Fatal(err)
	}
	// The server's own loops run, as in a server.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	ts := httptest.NewUnstartedServer(s)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	b.Cleanup(ts.Close)
	return ts, s
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

const benchPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{"app":"bench"}},` +
	`"spec":{"containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"],` +
	`"resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}`

// BenchmarkAPICreatePods creates pods through the HTTPS API from 32
// concurrent clients and reports creates/s and latency percentiles, beside
// the store's own create rate measured in the same run (ratio).
func BenchmarkAPICreatePods(b *testing.B) {
	const clients = 32
	ts, _ := benchServer(b)
	// Each client has a connection of its own, as 32 client processes would.
	conns := make([]*http.Client, clients)
	for i := range conns {
		tr := ts.Client().Transport.(*http.Transport).Clone()
		conns[i] = &http.Client{Transport: tr}
	}
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body := fmt.Sprintf(benchPod, "p"+strconv.FormatInt(i, 10))
				t0 := time.Now()
				resp, err := conns[c].Post(ts.URL+"/api/v1/namespaces/default/pods", "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("create = %d", resp.StatusCode)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "creates/s")
	b.ReportMetric(float64(percentile(all, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
	// Baseline: the store alone, 32 writers, same object size.
	st := storetest.New(b)
	value := []byte(fmt.Sprintf(benchPod, "baseline-pod-name"))
	next.Store(0)
	t0 := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				st.Create(context.Background(), "/bench/"+strconv.FormatInt(i, 10), value)
			}
		}()
	}
	wg.Wait()
	storeRate := float64(b.N) / time.Since(t0).Seconds()
	b.ReportMetric(rate/storeRate, "api/store")
}

// BenchmarkWatchFanout keeps 1,000 watches open on pods and measures, for
// every delivered event, the time from the write being sent to its arrival
// at each watcher.
func BenchmarkWatchFanout(b *testing.B) {
	const watchers = 1000
	ts, _ := benchServer(b)
	client := ts.Client()
	tr := client.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = watchers
	tr.MaxConnsPerHost = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	acked := map[string]time.Time{} // pod name → write sent
	lat := make([][]time.Duration, watchers)
	var delivered atomic.Int64
	var ready sync.WaitGroup
	var done sync.WaitGroup
	for i := 0; i < watchers; i++ {
		ready.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/namespaces/default/pods?watch=1&resourceVersion=1", nil)
			resp, err := client.Do(req)
			ready.Done()
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				now := time.Now()
				var ev struct {
					Object metav1.PartialObjectMetadata `json:"object"`
				}
				if json.Unmarshal(sc.Bytes(), &ev) != nil {
					continue
				}
				mu.Lock()
				t, ok := acked[ev.Object.Name]
				mu.Unlock()
				if ok {
					lat[i] = append(lat[i], now.Sub(t))
				}
				delivered.Add(1)
			}
		}(i)
	}
	ready.Wait()
	time.Sleep(200 * time.Millisecond)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		name := "w" + strconv.Itoa(n)
		body := fmt.Sprintf(benchPod, name)
		// The clock starts before the write is sent, so each figure
		// covers the commit too and is an upper bound.
		mu.Lock()
		acked[name] = time.Now()
		mu.Unlock()
		resp, err := client.Post(ts.URL+"/api/v1/namespaces/default/pods", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(2 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < int64(watchers*b.N) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	done.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	b.ReportMetric(float64(delivered.Load())/float64(watchers*b.N), "delivered-ratio")
	b.ReportMetric(float64(percentile(all, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkListPods lists 1,000 pods in protobuf, as client-go does,
// made from the stored bytes ("stored") beside the same pods stored as
// JSON by an earlier version, which the server decodes and encodes
// ("decoded", as every protobuf list was served before objects were
// stored in protobuf), and reports the ratio of the two.
func BenchmarkListPods(b *testing.B) {
	const pods = 1000
	_, s := benchServer(b)
	ctx := context.Background()
	for i := range pods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%04d", i), Namespace: "default", Labels: map[string]string{"app": "bench"}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "main", Image: "busybox:1.36",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}}}
		out, _, err := s.createObject(ctx, podsResource, pod, false)
		if err != nil {
			b.Fatal(err)
		}
		stored := out.(*corev1.Pod)
		stored.ResourceVersion = ""
		old, err := json.Marshal(stored)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.store.Create(ctx, "/registry/pods/old/"+stored.Name, old); err != nil {
			b.Fatal(err)
		}
	}
	list := func(b *testing.B, ns string) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", "/api/v1/namespaces/"+ns+"/pods", nil)
			r = r.WithContext(context.WithValue(r.Context(), loopbackKey{}, LoopbackUser))
			r.Header.Set("Accept", protobufType)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != protobufType {
				b.Fatalf("list %s: %d %s", ns, w.Code, w.Header().Get("Content-Type"))
			}
		}
	}
	var stored float64
	b.Run("stored", func(b *testing.B) { list(b, "default"); stored = float64(b.Elapsed()) / float64(b.N) })
	b.Run("decoded", func(b *testing.B) {
		list(b, "old")
		if stored > 0 {
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/stored, "x-stored")
		}
	})
}

// BenchmarkListPages lists 20,000 pods of one namespace in pages of 50,
// each page from the continue token of the one before, as client-go's
// pager does; one op is the whole list (400 pages).
func BenchmarkListPages(b *testing.B) {
	const pods, limit, writers = 20000, 50, 64
	_, s := benchServer(b)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := next.Add(1); i <= pods; i = next.Add(1) {
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: "default"},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox:1.36"}}}}
				if _, _, err := s.createObject(ctx, podsResource, pod, false); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportAllocs()
	for b.Loop() {
		cont, n := "", 0
		for {
			r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods?limit="+strconv.Itoa(limit)+"&continue="+cont, nil)
			r = r.WithContext(context.WithValue(r.Context(), loopbackKey{}, LoopbackUser))
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			var list metav1.PartialObjectMetadataList
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &list) != nil {
				b.Fatalf("page after %d pods: %d %s", n, w.Code, w.Body.Bytes())
			}
			n += len(list.Items)
			if cont = list.Continue; cont == "" {
				break
			}
		}
		if n != pods {
			b.Fatalf("pages held %d pods, want %d", n, pods)
		}
	}
}
