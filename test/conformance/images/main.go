// Command images writes one OCI image archive per image reference that the
// Kubernetes v1.37.2 conformance tests run, for a cluster without registry
// access: copy the archives into DATA/agent/images/ before minik starts.
//
//	cd images && go run . -o out
//
// What each image holds, and which are stand-ins, is in README.md.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The references, exactly as test/utils/image/manifest.go of v1.37.2 names them.
const (
	e2eRegistry  = "registry.k8s.io/e2e-test-images"
	agnhostRef   = e2eRegistry + "/agnhost:2.66.1"
	agnhostPrev  = e2eRegistry + "/agnhost:2.55"
	busyboxRef   = e2eRegistry + "/busybox:1.37.0-2"
	glibcDNSRef  = e2eRegistry + "/glibc-dns-testing:2.1.1"
	nginxRef     = e2eRegistry + "/nginx:1.27.0-2"
	nginxNewRef  = e2eRegistry + "/nginx:1.28.0-2"
	nonrootRef   = e2eRegistry + "/nonroot:1.5"
	nnpRef       = e2eRegistry + "/nonewprivs:1.4"
	kittenRef    = e2eRegistry + "/kitten:1.8"
	nautilusRef  = e2eRegistry + "/nautilus:1.8"
	pauseRef     = "registry.k8s.io/pause:3.10.2"
	sampleAPIRef = e2eRegistry + "/sample-apiserver:1.29.2"
	etcdRef      = "registry.k8s.io/etcd:3.7.0-0"
)

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var epoch = time.Unix(0, 0).UTC()

func main() {
	out := flag.String("o", "out", "directory to write the archives into")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary (Debian's busybox-static)")
	curl := flag.String("curl", "/usr/bin/curl", "curl binary copied, with its shared libraries, into agnhost ('' to leave out)")
	nc := flag.String("nc", "/bin/nc.openbsd", "OpenBSD netcat (Debian's netcat-openbsd) copied, with its shared libraries, into agnhost as /usr/bin/nc ('' to leave out)")
	dig := flag.String("dig", "/usr/bin/dig", "dig (Debian's bind9-dnsutils) copied, with its shared libraries and glibc's getent, into agnhost and the glibc-dns-testing stand-in ('' to leave out both)")
	sh := flag.String("sh", "/usr/bin/bash", "shell copied, with its shared libraries, into every busybox-based image as /bin/sh ('' keeps busybox's ash)")
	flag.Parse()
	if err := run(*out, *busybox, *curl, *nc, *sh, *dig); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

type file struct {
	name string // path in the image, without a leading slash
	mode int64
	data []byte
	link string // symlink target when set
	dir  bool
}

type spec struct {
	ref        string
	layers     [][]file
	entrypoint []string
	cmd        []string
	user       string
	labels     map[string]string
}

func run(out, busyboxPath, curlPath, ncPath, shPath, digPath string) error {
	tmp, err := os.MkdirTemp("", "conformance-images")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	agnhost := filepath.Join(tmp, "agnhost")
	if err := goBuild(agnhost, "k8s.io/kubernetes/test/images/agnhost"); err != nil {
		return err
	}
	pause := filepath.Join(tmp, "pause")
	if err := goBuild(pause, "./pause"); err != nil {
		return err
	}
	nnp := filepath.Join(tmp, "nnp")
	if err := goBuild(nnp, "k8s.io/kubernetes/test/images/nonewprivs"); err != nil {
		return err
	}
	// The aggregator spec runs the sample API server with etcd beside it
	// in one pod: both built from the modules (the tool lines in go.mod).
	sampleAPI := filepath.Join(tmp, "sample-apiserver")
	if err := goBuild(sampleAPI, "k8s.io/sample-apiserver"); err != nil {
		return err
	}
	etcd := filepath.Join(tmp, "etcd")
	if err := goBuild(etcd, "go.etcd.io/etcd/server/v3"); err != nil {
		return err
	}
	nnpBin, err := os.ReadFile(nnp)
	if err != nil {
		return err
	}
	k8sDir, err := moduleDir("k8s.io/kubernetes")
	if err != nil {
		return err
	}
	kitten, err := updateDemoLayer(k8sDir, "kitten")
	if err != nil {
		return err
	}
	nautilus, err := updateDemoLayer(k8sDir, "nautilus")
	if err != nil {
		return err
	}

	base, err := busyboxLayer(busyboxPath)
	if err != nil {
		return err
	}
	// Debian's static busybox runs its own applets before anything on
	// PATH (so "nc" in a script never reaches OpenBSD netcat), and its ash
	// drops environment variables whose names are not shell identifiers
	// ("data-1"), which the env-from specs read back with "sh -c env".
	// Upstream's images behave like bash in both respects.
	if shPath != "" {
		shFiles, err := binaryWithLibs(shPath, "bin/bash")
		if err != nil {
			return err
		}
		base = append(base, shFiles...)
		base = append(base, file{name: "bin/sh", link: "bash", mode: 0o777})
	}
	var curlFiles []file
	if curlPath != "" {
		if curlFiles, err = binaryWithLibs(curlPath, "usr/bin/curl"); err != nil {
			return err
		}
	}
	// The specs' exec pods run "nc -v -t -w 2 HOST PORT" and "nc -u …":
	// upstream's agnhost has OpenBSD netcat; busybox's nc knows neither
	// -t nor -u.
	if ncPath != "" {
		ncFiles, err := binaryWithLibs(ncPath, "usr/bin/nc")
		if err != nil {
			return err
		}
		for _, f := range ncFiles {
			if !slices.ContainsFunc(curlFiles, func(c file) bool { return c.name == f.name }) {
				curlFiles = append(curlFiles, f)
			}
		}
	}
	// The DNS specs query with dig from agnhost (upstream's has
	// bind-tools) and from glibc-dns-testing (Debian with dnsutils).
	var digFiles []file
	if digPath != "" {
		if digFiles, err = binaryWithLibs(digPath, "usr/bin/dig"); err != nil {
			return err
		}
		// The /etc/hosts specs look names up with getent (glibc's,
		// whose libc holds the files and dns lookups since 2.34).
		getent, err := binaryWithLibs("/usr/bin/getent", "usr/bin/getent")
		if err != nil {
			return err
		}
		for _, f := range getent {
			if !slices.ContainsFunc(digFiles, func(d file) bool { return d.name == f.name }) {
				digFiles = append(digFiles, f)
			}
		}
		for _, f := range digFiles {
			if !slices.ContainsFunc(curlFiles, func(c file) bool { return c.name == f.name }) {
				curlFiles = append(curlFiles, f)
			}
		}
	}
	agn, err := agnhostLayer(agnhost, k8sDir)
	if err != nil {
		return err
	}
	pauseBin, err := os.ReadFile(pause)
	if err != nil {
		return err
	}
	sampleAPIBin, err := os.ReadFile(sampleAPI)
	if err != nil {
		return err
	}
	etcdBin, err := os.ReadFile(etcd)
	if err != nil {
		return err
	}
	specs := []spec{
		{ref: busyboxRef, layers: [][]file{base}, cmd: []string{"sh"}},
		{ref: agnhostRef, layers: [][]file{base, curlFiles, agn},
			entrypoint: []string{"/agnhost"}, cmd: []string{"pause"}},
		{ref: agnhostPrev, layers: [][]file{base, curlFiles, agn},
			entrypoint: []string{"/agnhost"}, cmd: []string{"pause"},
			labels: map[string]string{"minik.conformance/stand-in-for": "agnhost 2.55 (built from 2.66.1 source)"}},
		{ref: nginxRef, layers: [][]file{base, nginxLayer("1.27.0")},
			cmd: []string{"nginx", "-g", "daemon off;"}, labels: map[string]string{"minik.conformance/stand-in-for": "nginx 1.27.0 (busybox httpd)"}},
		{ref: nginxNewRef, layers: [][]file{base, nginxLayer("1.28.0")},
			cmd: []string{"nginx", "-g", "daemon off;"}, labels: map[string]string{"minik.conformance/stand-in-for": "nginx 1.28.0 (busybox httpd)"}},
		{ref: nonrootRef, layers: [][]file{base}, cmd: []string{"sh"}, user: "1234"},
		// As upstream's Dockerfile: nnp set-user-ID root, printing the
		// effective uid it runs with.
		{ref: nnpRef, layers: [][]file{base, {{name: "usr/local/bin/nnp", mode: 0o4755, data: nnpBin}}}, cmd: []string{"nnp"}},
		{ref: kittenRef, layers: [][]file{base, alpineRelease, kitten}, cmd: []string{"httpd", "-f", "-p", "80", "-h", "/"},
			labels: map[string]string{"minik.conformance/stand-in-for": "kitten 1.8 (busybox httpd for test-webserver)"}},
		{ref: nautilusRef, layers: [][]file{base, alpineRelease, nautilus}, cmd: []string{"httpd", "-f", "-p", "80", "-h", "/"},
			labels: map[string]string{"minik.conformance/stand-in-for": "nautilus 1.8 (busybox httpd for test-webserver)"}},
		{ref: glibcDNSRef, layers: [][]file{base, digFiles}, cmd: []string{"sh"},
			labels: map[string]string{"minik.conformance/stand-in-for": "glibc-dns-testing 2.1.1 (busybox, bash and dig)"}},
		{ref: pauseRef, layers: [][]file{{{name: "pause", mode: 0o755, data: pauseBin}}},
			entrypoint: []string{"/pause"}, user: "65535:65535"},
		// As upstream's test/images/sample-apiserver Dockerfile: the spec
		// passes only arguments.
		{ref: sampleAPIRef, layers: [][]file{base, {{name: "sample-apiserver", mode: 0o755, data: sampleAPIBin}}},
			entrypoint: []string{"/sample-apiserver"},
			labels:     map[string]string{"minik.conformance/stand-in-for": "sample-apiserver 1.29.2 (built from k8s.io/sample-apiserver v0.37.2)"}},
		// The spec runs /usr/local/bin/etcd by its path, as upstream's
		// image holds it.
		{ref: etcdRef, layers: [][]file{{{name: "usr/local/bin/etcd", mode: 0o755, data: etcdBin}, {name: "tmp", dir: true, mode: 0o1777}}},
			cmd: []string{"/usr/local/bin/etcd"}},
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, s := range specs {
		img, err := build(s)
		if err != nil {
			return fmt.Errorf("%s: %w", s.ref, err)
		}
		dst := filepath.Join(out, archiveName(s.ref))
		if err := writeOCIArchive(tmp, dst, s.ref, img); err != nil {
			return fmt.Errorf("%s: %w", s.ref, err)
		}
		fmt.Printf("wrote %s (%s)\n", dst, s.ref)
	}
	return nil
}

func archiveName(ref string) string {
	n := ref[strings.LastIndex(ref, "/")+1:]
	return strings.NewReplacer(":", "_", "/", "_").Replace(n) + ".tar"
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func moduleDir(mod string) (string, error) {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", mod, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// busyboxLayer is /bin/busybox with a symbolic link at every applet's path
// (as `busybox --list-full` names them), the usual top-level directories and
// minimal /etc files.
func busyboxLayer(bin string) ([]file, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("busybox-static is needed: %w", err)
	}
	list, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	fs := []file{{name: "bin/busybox", mode: 0o755, data: data}}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "proc", "sys", "dev", "var", "var/www", "usr/local/bin"} {
		fs = append(fs, file{name: d, dir: true, mode: 0o755})
	}
	fs = append(fs, file{name: "tmp", dir: true, mode: 0o1777})
	// Upstream's busybox image has every applet in /bin (specs run
	// /bin/sysctl); Debian lists some only under sbin or usr.
	inBin := map[string]bool{}
	for _, a := range strings.Fields(string(list)) {
		a = strings.TrimPrefix(a, "/")
		if a == "bin/busybox" {
			continue
		}
		fs = append(fs, file{name: a, link: "/bin/busybox", mode: 0o777})
		inBin[path.Base(a)] = inBin[path.Base(a)] || path.Dir(a) == "bin"
	}
	for _, name := range slices.Sorted(maps.Keys(inBin)) {
		if !inBin[name] {
			fs = append(fs, file{name: "bin/" + name, link: "/bin/busybox", mode: 0o777})
		}
	}
	fs = append(fs,
		file{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		file{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		file{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
	)
	return fs, nil
}

// binaryWithLibs copies a dynamically linked host binary to dst together
// with every shared library ldd names, at the same paths.
func binaryWithLibs(bin, dst string) ([]file, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	fs := []file{{name: dst, mode: 0o755, data: data}}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if !strings.HasPrefix(f, "/") || seen[f] {
				continue
			}
			seen[f] = true
			lib, err := os.ReadFile(f) // follows symlinks: the file lands at the name ldd used
			if err != nil {
				return nil, err
			}
			fs = append(fs, file{name: strings.TrimPrefix(f, "/"), mode: 0o755, data: lib})
		}
	}
	return fs, nil
}

// agnhostLayer mirrors test/images/agnhost/Dockerfile: /agnhost, the
// agnhost-2 link, porter's certificate, /uploads and the image-defined
// user and group the SupplementalGroups tests look for.
func agnhostLayer(bin, k8sDir string) ([]file, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	fs := []file{
		{name: "agnhost", mode: 0o755, data: data},
		{name: "agnhost-2", link: "agnhost", mode: 0o777},
		{name: "uploads", dir: true, mode: 0o755},
		{name: "home/user-defined-in-image", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
			"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n" +
			"user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n")},
	}
	for _, n := range []string{"localhost.crt", "localhost.key"} {
		b, err := os.ReadFile(filepath.Join(k8sDir, "test/images/agnhost/porter", n))
		if err != nil {
			return nil, err
		}
		fs = append(fs, file{name: n, mode: 0o644, data: b})
	}
	return fs, nil
}

// alpineRelease is the /etc/os-release of the Alpine base upstream's
// kitten and nautilus have (through agnhost's base), which the ImageVolume
// spec reads from the mounted image. The file says which stand-in it is.
var alpineRelease = []file{{name: "etc/os-release", mode: 0o644, data: []byte(`NAME="Alpine Linux"
ID=alpine
PRETTY_NAME="Alpine Linux (minik conformance stand-in: busybox base with Alpine's os-release)"
HOME_URL="https://alpinelinux.org/"
`)}}

// updateDemoLayer is what upstream's kitten and nautilus images add to
// their web server: name.jpg and data.json at the root, from the module's
// test/images/NAME/html.
func updateDemoLayer(k8sDir, name string) ([]file, error) {
	var fs []file
	for _, n := range []string{"data.json", name + ".jpg"} {
		b, err := os.ReadFile(filepath.Join(k8sDir, "test/images", name, "html", n))
		if err != nil {
			return nil, err
		}
		fs = append(fs, file{name: n, mode: 0o644, data: b})
	}
	return fs, nil
}

// nginxLayer turns busybox into an nginx stand-in: /usr/sbin/nginx is a
// script that serves /usr/share/nginx/html on port 80 with busybox httpd.
func nginxLayer(version string) []file {
	page := "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n" +
		"<p>minik conformance stand-in (busybox httpd) for nginx " + version + ".</p>\n</body>\n</html>\n"
	script := "#!/bin/sh\n# Stand-in for nginx " + version + ": busybox httpd in the foreground on port 80.\n" +
		"mkdir -p /var/log/nginx /var/cache/nginx /var/run\n" +
		"exec /bin/httpd -f -v -p 80 -h /usr/share/nginx/html\n"
	return []file{
		{name: "usr/share/nginx/html", dir: true, mode: 0o755},
		{name: "usr/share/nginx/html/index.html", mode: 0o644, data: []byte(page)},
		{name: "etc/nginx", dir: true, mode: 0o755},
		{name: "etc/nginx/nginx.conf", mode: 0o644, data: []byte("# stand-in: busybox httpd ignores this file\n")},
		{name: "usr/sbin/nginx", mode: 0o755, data: []byte(script)},
	}
}

func layerTar(fs []file) ([]byte, error) {
	// Parents first, each path once (a later entry wins).
	byName := map[string]file{}
	for _, f := range fs {
		byName[f.name] = f
		for d := path.Dir(f.name); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byName[d]; !ok {
				byName[d] = file{name: d, dir: true, mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		f := byName[n]
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func build(s spec) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, fs := range s.layers {
		if len(fs) == 0 {
			continue
		}
		b, err := layerTar(fs)
		if err != nil {
			return nil, err
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = []string{pathEnv}
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User = s.entrypoint, s.cmd, s.user
	cf.Config.Labels = map[string]string{"minik.conformance/ref": s.ref}
	for k, v := range s.labels {
		cf.Config.Labels[k] = v
	}
	return mutate.ConfigFile(img, cf)
}

// writeOCIArchive writes img as a tar of an OCI image layout whose index
// names it ref (both annotations containerd's importer reads).
func writeOCIArchive(tmp, dst, ref string, img v1.Image) error {
	dir, err := os.MkdirTemp(tmp, "layout")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": ref, "io.containerd.image.name": ref}
	if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
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
