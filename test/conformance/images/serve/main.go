// Command serve is a plain-HTTP image registry holding the images of the
// OCI archives in a directory (those the images command writes), each under
// its reference's repository and tag, digest for digest as in the archive.
// Nodes mirror the images' registries to it, so specs that must pull
// (imagePullPolicy: Always) pull offline what they would import.
//
//	go run ./serve -dir out -addr 10.250.0.1:5000 -ready /tmp/ready
package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// refAnnotation names an image of an archive's index.
const refAnnotation = "org.opencontainers.image.ref.name"

func main() {
	dir := flag.String("dir", "out", "directory of OCI image archives (*.tar)")
	addr := flag.String("addr", "127.0.0.1:5000", "address to serve the registry on")
	ready := flag.String("ready", "", "file written, with the served references, once every image is in")
	flag.Parse()
	if err := run(*dir, *addr, *ready); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(dir, addr, ready string) error {
	blobs, err := os.MkdirTemp("", "serve-blobs")
	if err != nil {
		return err
	}
	defer os.RemoveAll(blobs)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs)),
		registry.Logger(log.New(io.Discard, "", 0)))
	errc := make(chan error, 1)
	go func() { errc <- http.Serve(ln, h) }()
	archives, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return err
	}
	var served []string
	for _, a := range archives {
		refs, err := push(a, ln.Addr().String())
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		served = append(served, refs...)
	}
	log.Printf("serving %d images on %s", len(served), ln.Addr())
	if ready != "" {
		if err := os.WriteFile(ready, []byte(strings.Join(served, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	return <-errc
}

// push stores every named image of the OCI archive at path in the
// registry at host, under the repository and tag of its name.
func push(path, host string) ([]string, error) {
	dir, err := os.MkdirTemp("", "serve-layout")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := untar(path, dir); err != nil {
		return nil, err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, desc := range im.Manifests {
		src := desc.Annotations[refAnnotation]
		if src == "" {
			continue
		}
		ref, err := name.NewTag(src)
		if err != nil {
			return nil, err
		}
		dst, err := name.NewTag(host+"/"+ref.RepositoryStr()+":"+ref.TagStr(), name.Insecure)
		if err != nil {
			return nil, err
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		// remote.Write sends the manifest as stored: the digest stays.
		if err := remote.Write(dst, img); err != nil {
			return nil, fmt.Errorf("push %s: %w", src, err)
		}
		refs = append(refs, src+"@"+desc.Digest.String())
	}
	return refs, nil
}

// untar extracts the regular files and directories of the tar at path
// into dir.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFile(target, tr)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
