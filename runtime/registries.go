package runtime

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"go.yaml.in/yaml/v3"
)

// RegistriesFile is the name of the registries file in an agent's data
// directory.
const RegistriesFile = "registries.yaml"

// Registries says where images are pulled from: mirrors to try before a
// registry, and the TLS settings and credentials of hosts. It is the
// subset of k3s's registries.yaml minik reads:
//
//	mirrors:
//	  registry.k8s.io:                # or "*": every registry without its own entry
//	    endpoint: ["http://10.0.0.5:5000", "https://mirror.example:5443"]
//	configs:
//	  "mirror.example:5443":          # a mirror's or a registry's host[:port]
//	    tls: {insecure_skip_verify: true, ca_file: /ca.crt, cert_file: /c.crt, key_file: /c.key}
//	    auth: {username: u, password: p}
//
// A pull tries the endpoints in order, then the registry itself. The zero
// value has no mirrors: every image comes from the registry it names.
type Registries struct {
	Mirrors map[string]Mirror         `yaml:"mirrors"`
	Configs map[string]RegistryConfig `yaml:"configs"`

	clients map[string]*http.Client // by configs key with a tls entry
}

// Mirror lists the endpoints tried before a registry, as URLs
// ("http://10.0.0.5:5000"); http:// endpoints are reached over plain HTTP.
type Mirror struct {
	Endpoints []string `yaml:"endpoint"`
}

// RegistryConfig holds a host's TLS settings and credentials.
type RegistryConfig struct {
	TLS  *RegistryTLS   `yaml:"tls"`
	Auth *RegistryLogin `yaml:"auth"`
}

// RegistryTLS is how a host's certificate is checked, and the client
// certificate shown to it. Files are PEM.
type RegistryTLS struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
}

// RegistryLogin is a host's user name and password.
type RegistryLogin struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// LoadRegistries reads the registries file at path. A missing file is
// returned as an error wrapping os.ErrNotExist; a file that does not
// parse, has an unknown key or a bad endpoint wraps ErrInvalid and names
// the file and the key.
func LoadRegistries(path string) (Registries, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Registries{}, err
	}
	r, err := ParseRegistries(data)
	if err != nil {
		return Registries{}, fmt.Errorf("registries file %q: %w", path, err)
	}
	return r, nil
}

// ParseRegistries parses a registries file's contents; see LoadRegistries.
func ParseRegistries(data []byte) (Registries, error) {
	var r Registries
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return Registries{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var errs []error
	for reg, m := range r.Mirrors {
		for i, ep := range m.Endpoints {
			if _, err := parseEndpoint(ep); err != nil {
				errs = append(errs, fmt.Errorf("mirrors[%q].endpoint[%d] %q: %w", reg, i, ep, err))
			}
		}
	}
	r.clients = map[string]*http.Client{}
	for host, c := range r.Configs {
		if c.TLS == nil {
			continue
		}
		cl, err := c.TLS.client()
		if err != nil {
			errs = append(errs, fmt.Errorf("configs[%q].tls: %w", host, err))
			continue
		}
		r.clients[host] = cl
	}
	if err := errors.Join(errs...); err != nil {
		return Registries{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return r, nil
}

// parseEndpoint checks a mirror endpoint: an http or https URL with a
// host, no query and no fragment.
func parseEndpoint(ep string) (*url.URL, error) {
	u, err := url.Parse(ep)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("scheme must be http or https")
	case u.Host == "":
		return nil, errors.New("host must be set")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must have no query or fragment")
	}
	return u, nil
}

func (t *RegistryTLS) client() (*http.Client, error) {
	cfg := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q: no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file and key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}

// hosts returns the hosts a pull asks for an image of a registry: the
// mirror endpoints in order, then the registry itself (localhost over
// plain HTTP). auth are credentials from the pod, used for a host with
// none in Configs.
func (r Registries) hosts(auth []RegistryAuth) docker.RegistryHosts {
	podCreds := credentialsFor(auth)
	authorizer := docker.NewDockerAuthorizer(docker.WithAuthCreds(func(host string) (string, string, error) {
		if c, ok := r.Configs[host]; ok && c.Auth != nil {
			return c.Auth.Username, c.Auth.Password, nil
		}
		return podCreds(host)
	}))
	upstream := docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost), docker.WithAuthorizer(authorizer))
	return func(registry string) ([]docker.RegistryHost, error) {
		m, ok := r.Mirrors[registry]
		if !ok {
			m = r.Mirrors["*"]
		}
		var hosts []docker.RegistryHost
		for _, ep := range m.Endpoints {
			u, err := parseEndpoint(ep)
			if err != nil {
				return nil, fmt.Errorf("mirror of %q: %w", registry, err)
			}
			path := strings.TrimSuffix(u.Path, "/")
			if !strings.HasSuffix(path, "/v2") {
				path += "/v2"
			}
			hosts = append(hosts, docker.RegistryHost{
				Client: r.client(u.Host), Authorizer: authorizer,
				Host: u.Host, Scheme: u.Scheme, Path: path,
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			})
		}
		up, err := upstream(registry)
		if err != nil {
			return nil, err
		}
		for i := range up {
			if c := r.clients[up[i].Host]; c != nil {
				up[i].Client = c
			}
		}
		return append(hosts, up...), nil
	}
}

// client is the HTTP client for host: its tls config's, else the default.
func (r Registries) client(host string) *http.Client {
	if c := r.clients[host]; c != nil {
		return c
	}
	return http.DefaultClient
}
