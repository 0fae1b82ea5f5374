// Package runtimetest helps test code that uses package runtime: a busybox
// image built from the host's busybox-static, an in-process registry serving
// it, an in-memory Fake runtime and a conformance Suite.
package runtimetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// BusyboxRef is the name the images built here carry.
const BusyboxRef = "docker.io/minik/busybox:test"

// Applets are the busybox commands linked into the image's /bin.
var Applets = []string{
	"sh", "sleep", "echo", "cat", "wget", "nc", "httpd", "hostname", "ls",
	"true", "false", "env", "id", "ps", "kill", "mkdir", "rm", "touch", "pwd",
	"grep", "test", "[", "seq", "head", "tail", "wc", "date", "ip", "ifconfig",
}

// BusyboxImage returns an OCI image holding busybox (from BusyboxPath) with
// a symbolic link per applet, PATH set and "sh" as its command.
func BusyboxImage() (v1.Image, error) {
	layerTar, err := busyboxLayer()
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"sh"}
	return mutate.ConfigFile(img, cf)
}

func busyboxLayer() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("busybox-static is needed: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(0, 0)
	for _, d := range []string{"bin/", "etc/", "tmp/", "var/", "var/www/", "root/", "proc/", "sys/", "dev/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode, ModTime: mod}); err != nil {
			return nil, err
		}
	}
	files := map[string][]byte{
		"bin/busybox": bin,
		"etc/passwd":  []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
		"etc/group":   []byte("root:x:0:\nnogroup:x:65534:\n"),
	}
	for _, n := range []string{"bin/busybox", "etc/passwd", "etc/group"} {
		mode := int64(0o644)
		if n == "bin/busybox" {
			mode = 0o755
		}
		hdr := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(files[n])), ModTime: mod}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	for _, a := range Applets {
		hdr := &tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mod}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteDockerArchive writes img as a docker-archive tar (docker save
// format) named ref into dir and returns its path.
func WriteDockerArchive(dir, ref string, img v1.Image) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "image-docker.tar")
	return path, tarball.WriteToFile(path, tag, img)
}

// WriteOCIArchive writes img as a tar of an OCI image layout whose index
// names it ref, into dir, and returns its path.
func WriteOCIArchive(dir, ref string, img v1.Image) (string, error) {
	layoutDir, err := os.MkdirTemp(dir, "oci-layout")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(layoutDir)
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return "", err
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": ref, "io.containerd.image.name": ref}
	if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "image-oci.tar")
	return path, tarDir(layoutDir, path)
}

// tarDir writes the regular files and directories under dir into a tar.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
