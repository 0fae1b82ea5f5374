// Command busybox-image writes an OCI image archive built from the host's
// static busybox (Debian's busybox-static), for clusters without a
// registry: put the file in DATA/agent/images/ or run `minik image import`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

func main() {
	out := flag.String("o", "busybox.tar", "archive to write")
	ref := flag.String("name", "docker.io/library/busybox:latest", "image name")
	flag.Parse()
	if err := write(*out, *ref); err != nil {
		fmt.Fprintln(os.Stderr, "busybox-image:", err)
		os.Exit(1)
	}
}

func write(out, ref string) error {
	img, err := runtimetest.BusyboxImage()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "busybox-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path, err := runtimetest.WriteOCIArchive(dir, ref, img)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s)\n", filepath.Clean(out), ref)
	return nil
}
