// Package server runs minik's control plane: the store, the API server and
// (in later stages) the controllers, the scheduler and the node service.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/minik-dev/minik/server/apiserver"
	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/store"
)

// shutdownGrace bounds how long open requests may take once the server is
// asked to stop.
const shutdownGrace = 5 * time.Second

// Run runs the control plane until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	authority, err := pki.Ensure(cfg.DataDir, pki.Options{
		ServiceCIDR: cfg.ServiceCIDR, SANs: cfg.TLSSANs, Port: cfg.HTTPSPort,
		BindAddress: cfg.BindAddress, Token: cfg.Token, Logger: lg,
	})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	st, err := openStore(cfg, lg)
	if err != nil {
		return err
	}
	defer st.Close()

	authz := &auth.Authorizer{}
	api, err := apiserver.New(apiserver.Config{
		Store: st,
		Authenticator: auth.NewAuthenticator(authority.ClientCAPool(), map[string]auth.User{
			authority.Token():       auth.BootstrapUser,
			authority.TokenSecret(): auth.BootstrapUser,
			authority.AdminToken():  auth.AdminUser,
		}),
		Authorizer:    authz,
		Logger:        lg,
		Metrics:       apiserver.NewMetrics(st.Collectors()...),
		ServiceCIDR:   cfg.ServiceCIDR,
		NodePortRange: cfg.NodePortRange,
		Version:       cfg.Version,
	})
	if err != nil {
		return err
	}
	authz.Pods = auth.PodNodeFunc(api.PodNode)
	if err := api.EnsureNamespaces(ctx); err != nil {
		return fmt.Errorf("creating the default namespaces: %w", err)
	}
	addr := net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           api,
		TLSConfig:         authority.ServerTLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
	}
	if !cfg.DisableAgent {
		lg.Warn("the embedded agent is not available in this build; running the control plane only")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := srv.ServeTLS(ln, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	g.Go(func() error { return api.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		api.SetReady(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		return nil
	})
	api.SetReady(true)
	lg.Info("api server ready", "address", ln.Addr().String(), "kubeconfig", authority.KubeconfigPath())
	return g.Wait()
}

func openStore(cfg Config, lg *slog.Logger) (*store.Bolt, error) {
	dir := filepath.Join(cfg.DataDir, "db")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{
		KeepRevisions: cfg.CompactionWindow, Logger: lg,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	return st, nil
}
