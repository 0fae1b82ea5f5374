package nodes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/minik-dev/minik/server/registry"
	"github.com/minik-dev/minik/store"
)

// bindingKeyPrefix is where a node name's binding lives
// ("/registry/minik/nodepasswords/NAME"): a salted hash of the password
// the node registered the name with. No resource of the API maps there,
// so bindings are never served.
const bindingKeyPrefix = registry.NodePasswordsPrefix

// maxNodePassword bounds the node password a registration may carry.
const maxNodePassword = 256

// binding is the stored form of a name's binding.
type binding struct {
	Salt string `json:"salt"` // hex
	Hash string `json:"hash"` // hex SHA-256 of salt || password
}

func bindingKey(node string) string { return bindingKeyPrefix + node }

func newBinding(password string) binding {
	salt := make([]byte, 16)
	rand.Read(salt) // never fails (crypto/rand)
	return binding{Salt: hex.EncodeToString(salt), Hash: hashPassword(salt, password)}
}

func hashPassword(salt []byte, password string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return hex.EncodeToString(h.Sum(nil))
}

// matches reports whether password is the one b was made from. Node
// passwords are random secrets, so one round of SHA-256 suffices.
func (b binding) matches(password string) bool {
	salt, err := hex.DecodeString(b.Salt)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashPassword(salt, password)), []byte(b.Hash)) == 1
}

// bind checks that a registration of node with password may take the
// name, and records the binding. A name without a binding is bound to the
// first registration, unless its Node exists: that Node belongs to a node
// registered before bindings existed (or was created by hand), and only
// that node's certificate (hasCert) or an admin's deletion of the Node
// frees it. A name with a binding needs the same password or the node's
// certificate; with the certificate, the binding takes the new password.
//
// Bindings go when their Node is deleted (watchNodes) or when no Node
// appeared within the registration grace period (sweep), so an admin can
// hand the name to another machine by deleting its Node.
func (s *Service) bind(ctx context.Context, node, password string, hasCert bool) error {
	for range maxConflictRetries {
		kv, err := s.st.Get(ctx, bindingKey(node))
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = s.bindNew(ctx, node, password, hasCert)
		case err != nil:
			return grpcError(err)
		default:
			err = s.rebind(ctx, kv, node, password, hasCert)
		}
		if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue // a concurrent registration or sweep: look again
		}
		return err
	}
	return status.Errorf(codes.Aborted, "node %q: concurrent registrations; try again", node)
}

// bindNew records the first binding of node.
func (s *Service) bindNew(ctx context.Context, node, password string, hasCert bool) error {
	if !hasCert {
		_, err := s.st.Get(ctx, nodesPrefix+node)
		if err == nil {
			return status.Errorf(codes.PermissionDenied,
				"node %q exists and is bound to no node password: register with that node's certificate, or delete the Node to free the name", node)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return grpcError(err)
		}
	}
	value, err := json.Marshal(newBinding(password))
	if err != nil {
		return err
	}
	_, err = s.st.Create(ctx, bindingKey(node), value)
	return err
}

// rebind checks a registration of node against its binding kv.
func (s *Service) rebind(ctx context.Context, kv store.KV, node, password string, hasCert bool) error {
	var b binding
	if err := json.Unmarshal(kv.Value, &b); err != nil {
		return status.Errorf(codes.Internal, "node %q: stored binding: %v", node, err)
	}
	if b.matches(password) {
		return nil
	}
	if !hasCert {
		return status.Errorf(codes.PermissionDenied,
			"node name %q is bound to another node: register with that node's password or certificate, or delete the Node to free the name", node)
	}
	value, err := json.Marshal(newBinding(password))
	if err != nil {
		return err
	}
	_, err = s.st.Update(ctx, kv.Key, value, kv.ModRevision)
	return err
}

// validPassword checks a registration's node password.
func validPassword(p string) error {
	if p == "" || len(p) > maxNodePassword {
		return status.Errorf(codes.InvalidArgument, "node_password must be 1 to %d bytes, got %d", maxNodePassword, len(p))
	}
	return nil
}

// unbind deletes node's binding if it was written before revision
// before, so that a registration after the Node's deletion keeps its own.
func (s *Service) unbind(ctx context.Context, node string, before int64) error {
	kv, err := s.st.Get(ctx, bindingKey(node))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if kv.ModRevision >= before {
		return nil
	}
	_, _, err = s.st.Delete(ctx, kv.Key, kv.ModRevision)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %q: deleting its binding: %w", node, err)
	}
	return nil
}
