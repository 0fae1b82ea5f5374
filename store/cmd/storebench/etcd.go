package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
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
	c, err := storetest.RunEtcdCluster(bin, dataDir, 1, func(member, line string) {
		fmt.Fprintf(os.Stderr, "etcd %s: %s\n", member, line)
	})
	if err != nil {
		return "", nil, err
	}
	return c.Endpoints[0], c.Stop, nil
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
