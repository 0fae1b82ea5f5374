package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/api/nodeclient"
	"github.com/minik-dev/minik/server/coord"
	"github.com/minik-dev/minik/server/pki"
)

// ErrWrongToken: the join token does not open the cluster's bootstrap
// data in the datastore.
var ErrWrongToken = errors.New("server: the token does not match the cluster in the datastore")

// pkiOptions are the certificate options cfg asks for.
func pkiOptions(cfg Config, advertise string, lg *slog.Logger) pki.Options {
	sans := cfg.TLSSANs
	if advertise != "" {
		sans = append(sans[:len(sans):len(sans)], advertise)
	}
	return pki.Options{
		ServiceCIDR: cfg.ServiceCIDR, SANs: sans, Port: cfg.HTTPSPort,
		BindAddress: cfg.BindAddress, Token: cfg.Token, LeafLifetime: cfg.CertLifetime, Logger: lg,
	}
}

// bootstrap sets up the server's credentials. Alone (secrets nil) it
// keeps them under the data directory. Among servers sharing a datastore
// the cluster's CA and secrets (pki.Shared) live sealed in secrets: the
// first server stores them, create-if-absent, and every other server —
// joining with --server and --token, restarting, or losing a race to
// initialise — reads and installs them before issuing its own serving
// and admin certificates. A record sealed before servers shared the
// service account key or the front-proxy CA gets the first joining
// server's (the server that wrote it keeps its own until it restarts and
// reads the record again).
func bootstrap(ctx context.Context, cfg Config, secrets coord.Secrets, advertise string, lg *slog.Logger) (*pki.Authority, error) {
	opts := pkiOptions(cfg, advertise, lg)
	if secrets == nil {
		if cfg.JoinServer != "" {
			return nil, errors.New("--server needs --datastore-endpoint: servers of one cluster share an etcd datastore")
		}
		return pki.Ensure(cfg.DataDir, opts)
	}
	for range 3 {
		sealed, rev, found, err := secrets.Sealed(ctx)
		if err != nil {
			return nil, err
		}
		if found {
			a, err := joinSharingKey(ctx, cfg, secrets, sealed, rev, opts, lg)
			if a != nil || err != nil {
				return a, err
			}
			continue
		}
		if cfg.JoinServer != "" {
			return nil, fmt.Errorf("--server %s: the datastore holds no cluster yet; start the first server without --server", cfg.JoinServer)
		}
		a, err := pki.Ensure(cfg.DataDir, opts)
		if err != nil {
			return nil, err
		}
		sealed, err = pki.Seal(a.Shared())
		if err != nil {
			return nil, err
		}
		created, err := secrets.Create(ctx, sealed)
		if err != nil {
			return nil, err
		}
		if created {
			lg.Info("initialised the cluster in the datastore", "caHash", api.CAHash(a.CAPEM()))
			return a, nil
		}
		// Another server initialised the datastore first: use its CA,
		// which the same token opens.
		if cfg.Token == "" {
			return nil, errors.New("another server initialised the datastore at the same time: start this server with that cluster's --token")
		}
		lg.Info("another server initialised the datastore first; adopting its CA")
	}
	return nil, errors.New("bootstrap data vanished from the datastore")
}

// joinCluster installs the cluster's shared credentials from sealed and
// issues this server's own certificates. The token is --token, else the
// one kept from an earlier start. With --server, the CA that server
// presents must be the one the token pins and the one in the datastore.
// keyShared is false when sealed holds no service account key or no
// front-proxy CA.
func joinCluster(ctx context.Context, cfg Config, sealed []byte, opts pki.Options, lg *slog.Logger) (a *pki.Authority, keyShared bool, err error) {
	token := cfg.Token
	if token == "" {
		data, err := os.ReadFile(filepath.Join(cfg.DataDir, pki.TokenFile))
		if err != nil {
			return nil, false, errors.New("the datastore already holds a cluster: start this server with its --token")
		}
		token = strings.TrimSpace(string(data))
	}
	pin, secret, err := api.ParseToken(token)
	if err != nil {
		return nil, false, fmt.Errorf("--token: %w", err)
	}
	clusterHash, err := pki.SealedCAHash(sealed)
	if err != nil {
		return nil, false, err
	}
	if pin != "" && pin != clusterHash {
		return nil, false, fmt.Errorf("the token pins CA %s, the datastore's cluster has CA %s: %w", pin, clusterHash, ErrWrongToken)
	}
	if cfg.JoinServer != "" {
		if err := checkJoinServer(ctx, cfg, token, clusterHash, lg); err != nil {
			return nil, false, err
		}
	}
	sh, err := pki.Unseal(sealed, secret)
	if errors.Is(err, pki.ErrWrongToken) {
		// A server that has been in the cluster opens the data with the
		// CA it keeps: the token was rotated since it last started.
		if sh, err = unsealWithKeptCA(cfg.DataDir, sealed); err != nil {
			return nil, false, fmt.Errorf("the token's secret does not decrypt the datastore's bootstrap data (wrong --token?): %w", ErrWrongToken)
		}
		lg.Info("the cluster's join token was rotated; using the current one instead of the one given or kept")
		opts.Token = ""
	}
	if err != nil {
		return nil, false, err
	}
	if err := pki.Install(cfg.DataDir, sh); err != nil {
		return nil, false, err
	}
	if a, err = pki.Ensure(cfg.DataDir, opts); err != nil {
		return nil, false, err
	}
	lg.Info("joined the cluster", "caHash", clusterHash, "via", cfg.JoinServer)
	return a, len(sh.ServiceAccountKey) > 0 && len(sh.FrontProxyCACert) > 0, nil
}

// joinSharingKey joins the cluster whose data, stored at revision rev,
// is sealed. In data sealed before servers shared the service account
// key, this server's own becomes the cluster's, unless another server's
// got there first: then it returns nil, nil, to read the data again and
// adopt that key. Data sealed before it was also sealed for the servers
// is sealed again, so that servers open it after a token rotation.
func joinSharingKey(ctx context.Context, cfg Config, secrets coord.Secrets, sealed []byte, rev int64, opts pki.Options, lg *slog.Logger) (*pki.Authority, error) {
	a, keyShared, err := joinCluster(ctx, cfg, sealed, opts, lg)
	if err != nil || (keyShared && pki.SealedForServers(sealed)) {
		return a, err
	}
	resealed, err := pki.Seal(a.Shared())
	if err != nil {
		return nil, err
	}
	stored, err := secrets.Replace(ctx, resealed, rev)
	if err != nil || !stored {
		return nil, err
	}
	return a, nil
}

// unsealWithKeptCA opens sealed with the CA kept in dataDir by an earlier
// start of this server.
func unsealWithKeptCA(dataDir string, sealed []byte) (pki.Shared, error) {
	tlsDir := filepath.Join(dataDir, pki.TLSDir)
	caCert, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		return pki.Shared{}, err
	}
	caKey, err := os.ReadFile(filepath.Join(tlsDir, "ca.key"))
	if err != nil {
		return pki.Shared{}, err
	}
	return pki.UnsealForServer(sealed, caCert, caKey)
}

// checkJoinServer verifies the CA served at --server against the token,
// as an agent does, and that it is the datastore's cluster CA.
func checkJoinServer(ctx context.Context, cfg Config, token, clusterHash string, lg *slog.Logger) error {
	dir := filepath.Join(cfg.DataDir, "join")
	if _, err := nodeclient.TrustCA(ctx, cfg.JoinServer, token, dir, lg); err != nil {
		return fmt.Errorf("--server %s: %w", cfg.JoinServer, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, nodeclient.CAFile))
	if err != nil {
		return err
	}
	if got := api.CAHash(caPEM); got != clusterHash {
		return fmt.Errorf("--server %s serves CA %s, the datastore's cluster has CA %s: %w", cfg.JoinServer, got, clusterHash, ErrWrongToken)
	}
	return nil
}
