package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names used inside the kubeconfigs Kubeconfig builds.
const (
	// KubeconfigCluster names the cluster entry.
	KubeconfigCluster = "minik"
	// KubeconfigUser names the user (auth info) entry.
	KubeconfigUser = "minik-admin"
	// KubeconfigContext names the context, which is also the current one.
	KubeconfigContext = "minik"
)

// ServerURL returns the URL clients on this host use to reach the API
// server: https://127.0.0.1:PORT, or the bind address in place of
// 127.0.0.1 when it is a specific address. Port 0 means DefaultPort.
func ServerURL(bindAddress string, port int) string {
	if port == 0 {
		port = DefaultPort
	}
	host := "127.0.0.1"
	if bindAddress != "" {
		if ip, err := netip.ParseAddr(bindAddress); err != nil || !ip.IsUnspecified() {
			host = bindAddress
		}
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// Kubeconfig returns a kubeconfig with one cluster (serverURL, trusting the
// CA in caPEM), one user authenticating with the client certificate certPEM
// and its key keyPEM, and one context joining them, which is current. The
// PEM data is embedded, so the file stands alone.
func Kubeconfig(serverURL string, caPEM, certPEM, keyPEM []byte) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = serverURL
	cluster.CertificateAuthorityData = caPEM
	cfg.Clusters[KubeconfigCluster] = cluster

	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificateData = certPEM
	user.ClientKeyData = keyPEM
	cfg.AuthInfos[KubeconfigUser] = user

	ctx := clientcmdapi.NewContext()
	ctx.Cluster = KubeconfigCluster
	ctx.AuthInfo = KubeconfigUser
	cfg.Contexts[KubeconfigContext] = ctx
	cfg.CurrentContext = KubeconfigContext
	return cfg
}

// WriteKubeconfig writes cfg to path with mode 0600, as clientcmd.WriteToFile
// would, but atomically (a kubectl reading the file while the server
// starts sees the old or the new one) and only if the content changed.
func WriteKubeconfig(path string, cfg *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeIfChanged(path, data, 0o600)
}

// rewriteKubeconfigUser replaces the client certificate and key of the
// admin user in the kubeconfig at path with admin's, keeping the rest. A
// missing file is left missing: the server writes it when it starts.
func rewriteKubeconfigUser(path string, admin *keyPair) error {
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	user, ok := cfg.AuthInfos[KubeconfigUser]
	if !ok {
		return fmt.Errorf("%s: no user %q", path, KubeconfigUser)
	}
	user.ClientCertificateData = admin.certPEM
	user.ClientKeyData = admin.keyPEM
	return WriteKubeconfig(path, cfg)
}
