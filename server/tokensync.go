package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/minik-dev/minik/server/coord"
	"github.com/minik-dev/minik/server/pki"
)

// tokenPollInterval is how often a server of several reads the cluster's
// sealed secrets for a join token rotated on another server.
const tokenPollInterval = 2 * time.Second

// tokenSync keeps the join token alike on the servers of one cluster.
// `minik token rotate` writes a new token into one server's data
// directory; that server's Authority takes it (Run), and tokenSync seals
// the cluster's secrets with it in the datastore (push). The other
// servers read the record (pull), open it with the CA they hold
// (pki.UnsealForServer), write the new token into their data directories
// and take it at once: the old token is refused by every server, the new
// one accepted by every server.
type tokenSync struct {
	secrets   coord.Secrets
	authority *pki.Authority
	dataDir   string
	// changed is called after this server's token was replaced by pull.
	changed func()
	lg      *slog.Logger

	local chan struct{} // this server's token changed
	seen  int64         // revision of the record last looked at
}

func newTokenSync(secrets coord.Secrets, a *pki.Authority, dataDir string, changed func(), lg *slog.Logger) *tokenSync {
	return &tokenSync{secrets: secrets, authority: a, dataDir: dataDir, changed: changed,
		lg: lg.With("component", "tokensync"), local: make(chan struct{}, 1)}
}

// LocalChanged tells Run that this server's join token changed. It does
// not block.
func (ts *tokenSync) LocalChanged() {
	select {
	case ts.local <- struct{}{}:
	default:
	}
}

// Run pushes this server's token changes and pulls the others' until ctx
// ends. Errors are logged and retried at the next tick.
func (ts *tokenSync) Run(ctx context.Context) error {
	t := time.NewTicker(tokenPollInterval)
	defer t.Stop()
	pending := false // a push failed and is retried
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-ts.local:
			pending = true
		case <-t.C:
		}
		if pending {
			if err = ts.push(ctx); err == nil {
				pending = false
			}
		} else {
			err = ts.pull(ctx)
		}
		if err != nil && ctx.Err() == nil {
			ts.lg.Warn("sharing the join token", "err", err)
		}
	}
}

// open returns the secrets in sealed: opened with this server's CA, or,
// in data sealed by an earlier version, with its token.
func (ts *tokenSync) open(sealed []byte) (pki.Shared, error) {
	sh := ts.authority.Shared()
	out, err := pki.UnsealForServer(sealed, sh.CACert, sh.CAKey)
	if errors.Is(err, pki.ErrNotSealedForServers) {
		return pki.Unseal(sealed, sh.TokenSecret)
	}
	return out, err
}

// push seals the cluster's secrets with this server's token unless they
// already are.
func (ts *tokenSync) push(ctx context.Context) error {
	for range 5 {
		sealed, rev, found, err := ts.secrets.Sealed(ctx)
		if err != nil {
			return err
		}
		if !found {
			return errors.New("the datastore holds no bootstrap data")
		}
		cur, err := ts.open(sealed)
		if err == nil && cur.TokenSecret == ts.authority.TokenSecret() {
			ts.seen = rev
			return nil
		}
		resealed, err := pki.Seal(ts.authority.Shared())
		if err != nil {
			return err
		}
		replaced, err := ts.secrets.Replace(ctx, resealed, rev)
		if err != nil {
			return err
		}
		if replaced {
			ts.lg.Info("sealed the cluster's bootstrap data with the rotated join token")
			return nil
		}
	}
	return errors.New("the bootstrap data kept changing")
}

// pull takes the token of the cluster's record when it changed and differs
// from this server's.
func (ts *tokenSync) pull(ctx context.Context) error {
	sealed, rev, found, err := ts.secrets.Sealed(ctx)
	if err != nil || !found || rev == ts.seen {
		return err
	}
	cur, err := ts.open(sealed)
	if errors.Is(err, pki.ErrWrongToken) {
		// Sealed by an earlier version with a token this server lacks:
		// nothing to take until a server of this version seals it again.
		ts.seen = rev
		return nil
	}
	if err != nil {
		return err
	}
	if cur.TokenSecret != ts.authority.TokenSecret() {
		if _, err := pki.WriteTokenSecret(ts.dataDir, cur.TokenSecret); err != nil {
			return err
		}
		tokenChanged, err := ts.authority.Refresh()
		if err != nil {
			return err
		}
		if tokenChanged {
			ts.lg.Info("took the join token rotated on another server")
			ts.changed()
		}
	}
	ts.seen = rev
	return nil
}
