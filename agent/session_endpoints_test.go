package agent

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/minik-dev/minik/agent/servicenet"
	"github.com/minik-dev/minik/api"
)

// Service networking reads the EndpointSlices a session carries or, from
// a server of an earlier version that sends Endpoints in their place,
// the Endpoints.
func TestNetObjectsFallBackToEndpoints(t *testing.T) {
	put := func(kind api.ObjectKind, name string) *api.Change {
		return &api.Change{Action: api.Change_PUT, Kind: kind, Namespace: "default", Name: name, Object: []byte(`{}`)}
	}
	svc := put(api.ObjectKind_OBJECT_KIND_SERVICE, "web")
	eps := put(api.ObjectKind_OBJECT_KIND_ENDPOINTS, "web")
	slice := put(api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE, "web-abcde")
	complete := func(rev int64, changes ...*api.Change) *api.SessionMessage {
		return &api.SessionMessage{Type: api.SessionMessage_COMPLETE, Revision: rev, Changes: changes}
	}
	incremental := func(prev, rev int64, changes ...*api.Change) *api.SessionMessage {
		return &api.SessionMessage{Type: api.SessionMessage_INCREMENTAL, PrevRevision: prev, Revision: rev, Changes: changes}
	}
	svcKey := servicenet.Key{Kind: servicenet.KindService, Namespace: "default", Name: "web"}
	epsKey := servicenet.Key{Kind: servicenet.KindEndpoints, Namespace: "default", Name: "web"}
	sliceKey := servicenet.Key{Kind: servicenet.KindEndpointSlice, Namespace: "default", Name: "web-abcde"}
	tests := []struct {
		name string
		msgs []*api.SessionMessage
		want []servicenet.Key
	}{
		{"a server that sends slices", []*api.SessionMessage{complete(1, svc, slice)}, []servicenet.Key{svcKey, sliceKey}},
		{"a server that sends Endpoints", []*api.SessionMessage{complete(1, svc, eps)}, []servicenet.Key{svcKey, epsKey}},
		{"Endpoints after a complete set without any", []*api.SessionMessage{complete(1, svc), incremental(1, 2, eps)}, []servicenet.Key{svcKey, epsKey}},
		{"slices from the next server", []*api.SessionMessage{complete(1, svc, eps), complete(5, svc, slice)}, []servicenet.Key{svcKey, sliceKey}},
		{"Endpoints from the next server", []*api.SessionMessage{complete(1, svc, slice), complete(5, svc, eps)}, []servicenet.Key{svcKey, epsKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &agent{lg: slog.New(slog.DiscardHandler), pods: &fakePods{kick: make(chan struct{}, 1)}}
			st := &state{objects: map[objKey][]byte{}}
			for _, m := range tc.msgs {
				if err := a.apply(st, m); err != nil {
					t.Fatalf("apply() = %v", err)
				}
			}
			var got []servicenet.Key
			for k := range st.netObjects() {
				got = append(got, k)
			}
			less := func(a, b servicenet.Key) int { return int(a.Kind) - int(b.Kind) }
			slices.SortFunc(got, less)
			slices.SortFunc(tc.want, less)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("netObjects() keys (-want +got):\n%s", diff)
			}
		})
	}
}
