package runtime

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// ImportTar imports every image of an OCI or docker-archive tar and unpacks
// it into the snapshotter (containerd's import alone does not unpack).
func (c *Containerd) ImportTar(ctx context.Context, path string) ([]string, error) {
	return importTar(c.ctx(ctx), c.client, c.cfg.Snapshotter, path)
}

// ImportArchive imports the images of the tar at path into the containerd
// at address, in namespace, and unpacks them for snapshotter ("" =
// overlayfs). It is `minik image import`: it needs no running agent.
func ImportArchive(ctx context.Context, address, namespace, snapshotter, path string) ([]string, error) {
	if snapshotter == "" {
		snapshotter = "overlayfs"
	}
	cl, err := client.New(address, client.WithDefaultNamespace(namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %q: %w", address, err)
	}
	defer cl.Close()
	return importTar(namespaces.WithNamespace(ctx, namespace), cl, snapshotter, path)
}

func importTar(ctx context.Context, cl *client.Client, snapshotter, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := cl.Import(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		if err := client.NewImage(cl, img).Unpack(ctx, snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %q from %q: %w", img.Name, path, err)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// NormalizeImage returns the full reference for an image name as Docker
// and Kubernetes read it ("busybox" is docker.io/library/busybox:latest).
func NormalizeImage(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w: %v", ref, ErrInvalid, err)
	}
	return named.String(), nil
}

// Pull makes ref present as policy says, through the mirrors of
// Config.Registries. Registries on localhost are reached over plain HTTP.
func (c *Containerd) Pull(ctx context.Context, ref string, policy PullPolicy, auth ...RegistryAuth) error {
	_, err := c.ensureImage(c.ctx(ctx), ref, policy, auth)
	return err
}

// ensureImage returns the unpacked image ref, pulling it as policy says
// with the credentials of auth.
func (c *Containerd) ensureImage(ctx context.Context, ref string, policy PullPolicy, auth []RegistryAuth) (client.Image, error) {
	name, err := NormalizeImage(ref)
	if err != nil {
		return nil, err
	}
	if policy != PullAlways {
		img, err := c.client.GetImage(ctx, name)
		switch {
		case err == nil:
			return img, c.unpack(ctx, img)
		case !errdefs.IsNotFound(err):
			return nil, err
		case policy == PullNever:
			return nil, fmt.Errorf("image %q: %w", name, ErrImageNeverPull)
		}
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: c.cfg.Registries.hosts(auth)})
	img, err := c.client.Pull(ctx, name,
		client.WithResolver(resolver),
		client.WithPullUnpack,
		client.WithPullSnapshotter(c.cfg.Snapshotter))
	if err != nil {
		return nil, fmt.Errorf("pull %q: %w: %v", name, ErrImagePull, err)
	}
	return img, nil
}

func (c *Containerd) unpack(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, c.cfg.Snapshotter)
	if err != nil || ok {
		return err
	}
	return img.Unpack(ctx, c.cfg.Snapshotter)
}

// dockerHubHosts are the names Docker Hub credentials are kept under; the
// resolver asks for registry-1.docker.io.
var dockerHubHosts = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// credentialsFor answers the resolver's questions for credentials with
// the first entry of auth for the host (Docker Hub under any of its
// names); none is anonymous.
func credentialsFor(auth []RegistryAuth) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		for _, a := range auth {
			if a.Host == host || dockerHubHosts[a.Host] && dockerHubHosts[host] {
				return a.Username, a.Password, nil
			}
		}
		return "", "", nil
	}
}
