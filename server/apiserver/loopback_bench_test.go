package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/store/storetest"
)

// pipeLoopback serves s over HTTP/1.1 on net.Pipe connections, the
// loopback's former transport, kept to compare with the in-process one.
type pipeLoopback struct {
	conns chan net.Conn
	done  <-chan struct{}
}

type pipeUserConn struct {
	net.Conn
	user auth.User
}

func (l *pipeLoopback) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeLoopback) Close() error   { return nil }
func (l *pipeLoopback) Addr() net.Addr { return &net.UnixAddr{Name: "loopback", Net: "pipe"} }

func (l *pipeLoopback) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- pipeUserConn{Conn: server, user: LoopbackUser}:
		return client, nil
	case <-l.done:
		return nil, errors.New("loopback stopped")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// servePipeLoopback returns a configuration like LoopbackConfig's whose
// requests go over pipes until ctx ends.
func servePipeLoopback(ctx context.Context, s *Server) *rest.Config {
	l := &pipeLoopback{conns: make(chan net.Conn), done: ctx.Done()}
	srv := &http.Server{
		Handler: s,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, loopbackKey{}, c.(pipeUserConn).user)
		},
	}
	go srv.Serve(l)
	context.AfterFunc(ctx, func() { srv.Close() })
	cfg := s.LoopbackConfig(LoopbackUser)
	cfg.Transport, cfg.Dial = nil, l.dial
	return cfg
}

// BenchmarkLoopback compares the loopback's in-process transport with
// HTTP/1.1 over pipes for a small GET and a create, through client-go in
// protobuf, from one client and from parallel ones.
func BenchmarkLoopback(b *testing.B) {
	s, err := New(Config{Store: storetest.New(b), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.EnsureNamespaces(ctx); err != nil {
		b.Fatal(err)
	}
	s.ServeLoopback(ctx)
	transports := []struct {
		name string
		cfg  *rest.Config
	}{
		{"pipe", servePipeLoopback(ctx, s)},
		{"inprocess", s.LoopbackConfig(LoopbackUser)},
	}
	var seq atomic.Int64
	for _, tr := range transports {
		cs := kubernetes.NewForConfigOrDie(tr.cfg)
		pods := cs.CoreV1().Pods("default")
		if _, err := pods.Create(ctx, testPod("get-"+tr.name, nil), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		ops := []struct {
			name string
			do   func() error
		}{
			{"get", func() error { _, err := pods.Get(ctx, "get-"+tr.name, metav1.GetOptions{}); return err }},
			{"create", func() error {
				name := "p" + strconv.FormatInt(seq.Add(1), 10)
				_, err := pods.Create(ctx, testPod(name, nil), metav1.CreateOptions{})
				return err
			}},
		}
		for _, op := range ops {
			b.Run(tr.name+"/"+op.name, func(b *testing.B) {
				b.ReportAllocs()
				start := processCPU(b)
				for b.Loop() {
					if err := op.do(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
			})
			// Bursts from many goroutines, as informers and workers make.
			b.Run(tr.name+"/"+op.name+"-parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8)
				start := processCPU(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := op.do(); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
