package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/minik-dev/minik/api"
)

// pollInterval is how often Run looks at the files under the data
// directory for credentials replaced by hand (minik certificate rotate,
// minik token rotate), at most.
const pollInterval = 10 * time.Second

// lockFile, under TLSDir, is flocked while the leaves are read or
// replaced, so that a server's renewal and a rotation by hand never see
// one half of a new pair with the other half of the old one.
const lockFile = ".lock"

// Run keeps the credentials current until ctx ends: at each leaf's renewal
// time (api.RenewalTime), and every pollInterval (a sixth of the leaf
// lifetime when shorter) for changes made on disk, it calls Refresh.
// changed, if not nil, is called after each Refresh that replaced the
// join token. Errors are logged and retried at the next tick.
func (a *Authority) Run(ctx context.Context, changed func()) error {
	for {
		t := time.NewTimer(a.nextCheck())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		tokenChanged, err := a.Refresh()
		if err != nil {
			a.lg.Warn("refreshing certificates", "err", err)
			continue
		}
		if tokenChanged && changed != nil {
			changed()
		}
	}
}

// nextCheck is how long Run waits before its next Refresh.
func (a *Authority) nextCheck() time.Duration {
	wait := min(pollInterval, a.lifetime/6)
	c := a.cur.Load()
	for _, kp := range []*keyPair{c.serving, c.admin, c.frontProxy} {
		if due := api.RenewalTime(kp.cert).Sub(now()); due < wait {
			wait = due
		}
	}
	return max(wait, 100*time.Millisecond)
}

// Refresh loads the serving and admin certificates and the join token
// from the data directory, picking up what was replaced there, issues the
// certificates that are due for renewal, and rewrites the admin
// kubeconfig when its certificate changed. New TLS handshakes use the
// new serving certificate at once. It reports whether the join token
// changed. It is safe to call concurrently.
func (a *Authority) Refresh() (tokenChanged bool, err error) {
	return a.refresh("")
}

// refresh is Refresh with the --token flag given, which wins over the
// stored token (only at Ensure).
func (a *Authority) refresh(givenToken string) (tokenChanged bool, err error) {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	tlsDir := filepath.Join(a.dataDir, TLSDir)
	unlock, err := lockDir(tlsDir)
	if err != nil {
		return false, err
	}
	defer unlock()
	next := &credentials{}
	if next.serving, err = ensureServing(tlsDir, a.ca, a.want, a.lifetime, a.lg); err != nil {
		return false, err
	}
	if next.admin, err = ensureAdmin(tlsDir, a.ca, a.lifetime, a.lg); err != nil {
		return false, err
	}
	if next.frontProxy, err = ensureFrontProxyClient(tlsDir, a.frontProxyCA, a.lifetime, a.lg); err != nil {
		return false, err
	}
	if next.token, next.secret, err = ensureToken(filepath.Join(a.dataDir, TokenFile), a.ca.certPEM, givenToken, a.lg); err != nil {
		return false, err
	}
	next.servingTLS = &tls.Certificate{
		Certificate: [][]byte{next.serving.cert.Raw},
		PrivateKey:  next.serving.key,
		Leaf:        next.serving.cert,
	}
	next.frontProxyTLS = &tls.Certificate{
		Certificate: [][]byte{next.frontProxy.cert.Raw},
		PrivateKey:  next.frontProxy.key,
		Leaf:        next.frontProxy.cert,
	}
	kc := Kubeconfig(a.serverURL, a.ca.certPEM, next.admin.certPEM, next.admin.keyPEM)
	if err := WriteKubeconfig(a.kubeconfig, kc); err != nil {
		return false, err
	}
	prev := a.cur.Load()
	if prev != nil && sameCert(prev.serving, next.serving) && sameCert(prev.admin, next.admin) &&
		sameCert(prev.frontProxy, next.frontProxy) && prev.token == next.token {
		return false, nil
	}
	a.cur.Store(next)
	if prev != nil {
		a.lg.Info("credentials refreshed",
			"servingExpires", next.serving.cert.NotAfter, "adminExpires", next.admin.cert.NotAfter,
			"tokenChanged", prev.token != next.token)
	}
	return prev != nil && prev.token != next.token, nil
}

func sameCert(a, b *keyPair) bool { return a.cert.Equal(b.cert) }

// lockDir takes an exclusive flock on dir/lockFile and returns its
// release.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// Certificate describes one certificate kept under a data directory.
type Certificate struct {
	// Name says what the certificate is for: "ca", "serving", "admin",
	// "node".
	Name string
	// Path is the certificate's file.
	Path    string
	Subject string
	// NotAfter is when it expires; RenewAt when its holder renews it
	// (zero for the CA, which is not renewed).
	NotAfter, RenewAt time.Time
}

// certFiles are the certificates Check reports, by name, relative to the
// data directory. agent/tls/node.crt is the embedded agent's node
// certificate, DATA/tls/node.crt a separate agent's.
var certFiles = []struct{ name, path string }{
	{"ca", filepath.Join(TLSDir, "ca.crt")},
	{"serving", filepath.Join(TLSDir, "serving.crt")},
	{"admin", filepath.Join(TLSDir, "admin.crt")},
	{"front-proxy-ca", filepath.Join(TLSDir, frontProxyCAFile+".crt")},
	{"front-proxy-client", filepath.Join(TLSDir, frontProxyLeafFile+".crt")},
	{"node", filepath.Join("tls", "node.crt")},
	{"node", filepath.Join("agent", "tls", "node.crt")},
}

// Check returns the certificates found under dataDir, a server's or an
// agent's, in a fixed order. Missing files are skipped; a file that does
// not parse is an error.
func Check(dataDir string) ([]Certificate, error) {
	var out []Certificate
	for _, f := range certFiles {
		path := filepath.Join(dataDir, f.path)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		cert, err := parseCertPEM(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c := Certificate{Name: f.name, Path: path, Subject: cert.Subject.String(), NotAfter: cert.NotAfter}
		if !cert.IsCA {
			c.RenewAt = api.RenewalTime(cert)
		}
		out = append(out, c)
	}
	return out, nil
}

// Rotate issues new serving and admin certificates under dataDir now,
// valid for lifetime (LeafValidity if not positive), from the CA kept
// there; the serving certificate keeps the names of the one it replaces.
// It rewrites the admin kubeconfig's client certificate when the file
// exists. A running server picks the new ones up within pollInterval
// (Run). The CA must exist.
func Rotate(dataDir string, lifetime time.Duration, lg *slog.Logger) error {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if lifetime <= 0 {
		lifetime = LeafValidity
	}
	tlsDir := filepath.Join(dataDir, TLSDir)
	ca, err := loadKeyPair(filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "ca.key"))
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	unlock, err := lockDir(tlsDir)
	if err != nil {
		return err
	}
	defer unlock()
	want := newSANs()
	if old, err := loadKeyPair(filepath.Join(tlsDir, "serving.crt"), filepath.Join(tlsDir, "serving.key")); err == nil {
		want.addCert(old.cert)
	}
	if _, err := issueServing(tlsDir, ca, want, lifetime, "rotated by hand", lg); err != nil {
		return err
	}
	admin, err := issueAdmin(tlsDir, ca, lifetime, "rotated by hand", lg)
	if err != nil {
		return err
	}
	return rewriteKubeconfigUser(filepath.Join(dataDir, KubeconfigFile), admin)
}
