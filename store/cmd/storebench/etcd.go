package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minik-dev/minik/store"
)

// etcdURL is the client URL of the etcd the etcd column writes to.
var etcdURL string

// addEtcd adds the etcd column: at url, or, for "", on an etcd started in
// dir if the binary is installed. It returns a function that stops the
// started etcd.
func addEtcd(url, dir string) (func(), error) {
	switch url {
	case "off":
		return func() {}, nil
	case "":
		bin, err := exec.LookPath("etcd")
		if err != nil {
			fmt.Fprintln(os.Stderr, "storebench: no etcd binary, leaving etcd out")
			return func() {}, nil
		}
		var stop func()
		if url, stop, err = startEtcd(bin, filepath.Join(dir, "etcd")); err != nil {
			return nil, err
		}
		etcdURL = url
		impls = append(impls, impl{"etcd", openEtcd})
		return stop, nil
	}
	etcdURL = url
	impls = append(impls, impl{"etcd", openEtcd})
	return func() {}, nil
}

// startEtcd runs a one-member etcd on free loopback ports with its data
// in dataDir, waits until it is healthy, and returns its client URL and a
// function that kills it.
func startEtcd(bin, dataDir string) (string, func(), error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cmd := exec.Command(bin, "--name", "bench", "--data-dir", dataDir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench="+peer, "--log-level", "error", "--logger", "zap")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
	deadline := time.Now().Add(30 * time.Second)
	for !healthy(client) {
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("etcd at %s not healthy within 30s", client)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return client, stop, nil
}

func healthy(url string) bool {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"true"`)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// etcdStore writes through minik's etcd store, each measurement under a
// prefix of its own in the one etcd.
type etcdStore struct{ s *store.Etcd }

func openEtcd(path string) (putter, error) {
	s, err := store.OpenEtcd(context.Background(), store.EtcdOptions{
		Endpoints: []string{etcdURL}, Prefix: "/" + filepath.Base(path), CompactionInterval: -1,
	})
	return etcdStore{s}, err
}

func (e etcdStore) put(key string, value []byte) error {
	_, err := e.s.Create(context.Background(), key, value)
	return err
}

func (e etcdStore) close() error { return e.s.Close() }
