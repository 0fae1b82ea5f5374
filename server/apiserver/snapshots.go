package apiserver

import (
	"context"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/minik-dev/minik/server/snapshot"
)

// SnapshotsPath is the non-resource path of store snapshots: POST
// SnapshotsPath?name=NAME saves a snapshot of the store in the server's
// data directory and answers 201 with its snapshot.Meta. Only users RBAC
// lets "post" the path may (cluster-admin and system:masters by default).
const SnapshotsPath = snapshot.APIPath

// Snapshotter saves snapshots of the store (the server's snapshot files).
type Snapshotter interface {
	// SaveSnapshot saves a snapshot named name: snapshot.ErrInvalidName
	// for a bad name, snapshot.ErrExists for a taken one.
	SaveSnapshot(ctx context.Context, name string) (snapshot.Meta, error)
}

// snapshotsGR names snapshots in Status errors.
var snapshotsGR = schema.GroupResource{Group: "minik.io", Resource: "snapshots"}

// serveSnapshots serves SnapshotsPath.
func (s *Server) serveSnapshots(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Snapshots == nil {
		s.writeStatus(w, r, notFoundPath(r.URL.Path), schemaGR(""), "")
		return
	}
	if r.Method != http.MethodPost {
		s.writeStatus(w, r, apierrors.NewMethodNotSupported(snapshotsGR, r.Method), snapshotsGR, "")
		return
	}
	name := r.URL.Query().Get("name")
	if err := snapshot.ValidateName(name); err != nil {
		s.writeStatus(w, r, apierrors.NewInvalid(schema.GroupKind{Group: snapshotsGR.Group, Kind: "Snapshot"}, name,
			field.ErrorList{field.Invalid(field.NewPath("name"), name, "must be a DNS-1123 subdomain (lower case letters, digits, '-' and '.')")}), snapshotsGR, name)
		return
	}
	m, err := s.cfg.Snapshots.SaveSnapshot(r.Context(), name)
	switch {
	case errors.Is(err, snapshot.ErrExists):
		s.writeStatus(w, r, apierrors.NewAlreadyExists(snapshotsGR, name), snapshotsGR, name)
		return
	case err != nil:
		s.writeStatus(w, r, err, snapshotsGR, name)
		return
	}
	m.Credentials = nil // kept in the snapshot's file, not sent
	writeJSON(w, http.StatusCreated, m)
}
