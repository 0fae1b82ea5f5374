package coord

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Secrets keeps the cluster's sealed shared secrets (pki.Shared, sealed
// with the join token) where every server of the cluster reads them. Its
// methods are safe for concurrent use.
type Secrets interface {
	// Sealed returns the sealed secrets and the revision they were
	// written at; found is false when no server has stored them yet.
	Sealed(ctx context.Context) (sealed []byte, rev int64, found bool, err error)
	// Create stores sealed unless secrets are stored already; created is
	// false when another server stored them first.
	Create(ctx context.Context, sealed []byte) (created bool, err error)
	// Replace stores sealed if the stored secrets are still those of
	// revision rev; replaced is false when another server changed them.
	Replace(ctx context.Context, sealed []byte, rev int64) (replaced bool, err error)
}

// SecretsOf returns where the cluster's secrets are kept when st is a
// [SharedStore]; ok is false when st serves one server only, which keeps
// its secrets in its data directory.
func SecretsOf(st any) (s Secrets, ok bool) {
	sh, ok := st.(SharedStore)
	if !ok {
		return nil, false
	}
	return NewEtcdSecrets(sh.Client(), sh.Prefix()), true
}

// EtcdSecrets keeps the sealed secrets in one etcd key under the store's
// prefix.
type EtcdSecrets struct {
	cli *clientv3.Client
	key string
}

var _ Secrets = (*EtcdSecrets)(nil)

// NewEtcdSecrets returns the secrets kept by cli under prefix.
func NewEtcdSecrets(cli *clientv3.Client, prefix string) *EtcdSecrets {
	return &EtcdSecrets{cli: cli, key: prefix + bootstrapKey}
}

// Sealed implements Secrets.
func (s *EtcdSecrets) Sealed(ctx context.Context) ([]byte, int64, bool, error) {
	resp, err := s.cli.Get(ctx, s.key)
	if err != nil {
		return nil, 0, false, fmt.Errorf("reading the bootstrap data: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, false, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, true, nil
}

// Create implements Secrets.
func (s *EtcdSecrets) Create(ctx context.Context, sealed []byte) (bool, error) {
	txn, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.key), "=", 0)).
		Then(clientv3.OpPut(s.key, string(sealed))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("storing the bootstrap data: %w", err)
	}
	return txn.Succeeded, nil
}

// Replace implements Secrets.
func (s *EtcdSecrets) Replace(ctx context.Context, sealed []byte, rev int64) (bool, error) {
	txn, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.key), "=", rev)).
		Then(clientv3.OpPut(s.key, string(sealed))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("storing the bootstrap data: %w", err)
	}
	return txn.Succeeded, nil
}
