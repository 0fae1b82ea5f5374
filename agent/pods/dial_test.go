package pods

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/runtime"
	"github.com/minik-dev/minik/runtime/runtimetest"
)

// netFake gives the Fake's pods an IP and a network namespace: the
// loopback and this process' own namespace, where the test's listener
// stands in for the pod's server.
type netFake struct {
	*runtimetest.Fake
	ip, netns string
}

func (f *netFake) PodStatus(ctx context.Context, uid string) (*runtime.PodStatus, error) {
	st, err := f.Fake.PodStatus(ctx, uid)
	if err != nil {
		return nil, err
	}
	st.IP, st.NetNSPath = f.ip, f.netns
	return st, nil
}

// echoListener answers each connection with its input reversed in case,
// after the input ends.
func echoListener(t *testing.T) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			in, _ := io.ReadAll(c)
			c.Write(bytes.ToUpper(in))
			c.Close()
		}
	}()
	return lis.Addr().(*net.TCPAddr).Port
}

func TestDialPod(t *testing.T) {
	port := echoListener(t)
	for _, tc := range []struct {
		name     string
		loopback bool
	}{{"pod IP", false}, {"pod loopback", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLogEnv(t, time.Now())
			e.m.cfg.Runtime = &netFake{Fake: e.fake, ip: "127.0.0.1", netns: "/proc/self/ns/net"}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := e.m.DialPod(ctx, e.name, port, tc.loopback)
			if err != nil {
				t.Fatalf("DialPod: %v", err)
			}
			defer c.Close()
			io.WriteString(c, "ping")
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "PING" {
				t.Errorf("answer = %q, %v; want PING", got, err)
			}
		})
	}
}

func TestDialPodErrors(t *testing.T) {
	e := newLogEnv(t, time.Now())
	ctx := context.Background()
	if _, err := e.m.DialPod(ctx, types.NamespacedName{Namespace: "ns", Name: "x"}, 80, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("DialPod of an unknown pod = %v, want ErrNotFound", err)
	}
	e.m.cfg.Runtime = &netFake{Fake: e.fake}
	for _, loopback := range []bool{false, true} {
		if _, err := e.m.DialPod(ctx, e.name, 80, loopback); !errors.Is(err, ErrNotFound) {
			t.Errorf("DialPod (loopback %v) of a pod without network = %v, want ErrNotFound", loopback, err)
		}
	}
	e.m.cfg.Runtime = &netFake{Fake: e.fake, netns: t.TempDir() + "/missing"}
	if _, err := e.m.DialPod(ctx, e.name, 80, true); err == nil || !strings.Contains(err.Error(), "network namespace") {
		t.Errorf("DialPod into a missing namespace = %v, want a network namespace error", err)
	}
}
