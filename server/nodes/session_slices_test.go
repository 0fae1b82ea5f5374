package nodes_test

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/rest"

	"github.com/minik-dev/minik/api"
	"github.com/minik-dev/minik/server/auth"
)

// An agent that asks for EndpointSlices gets them, and no Endpoints, in
// the complete set and in later batches, decoded as discovery.k8s.io/v1;
// one that does not gets Endpoints and no slices.
func TestSessionEndpointSlicesInsteadOfEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, _ := e.register("n1")
	cfg := e.api.LoopbackConfig(auth.AdminUser)
	cfg.ContentConfig = rest.ContentConfig{ContentType: "application/json"}
	disc, err := discoveryclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	if _, err := e.admin.Endpoints("default").Create(ctxT(t), ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	newSlice := func(name string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}},
		}
	}
	if _, err := disc.EndpointSlices("default").Create(ctxT(t), newSlice("web-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	open := func(slices bool) api.Node_SessionClient {
		ctx, cancel := context.WithCancel(ctxT(t))
		t.Cleanup(cancel)
		s, err := c.Session(ctx, &api.SessionRequest{AcceptProtobuf: true, EndpointSlices: slices})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kinds := []api.ObjectKind{api.ObjectKind_OBJECT_KIND_ENDPOINTS, api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE}
	withSlices, withEndpoints := open(true), open(false)
	if got, want := summary(recvT(t, withEndpoints), kinds...), []string{"PUT OBJECT_KIND_ENDPOINTS default/web"}; !slices.Contains(got, want[0]) || len(got) != countEndpoints(t, e) {
		t.Errorf("complete set without slices = %v, want %v and the other Endpoints, no slices", got, want)
	}
	first := recvT(t, withSlices)
	if got, want := summary(first, kinds...), []string{"PUT OBJECT_KIND_ENDPOINTSLICE default/web-a"}; !slices.Equal(got, want) {
		t.Fatalf("complete set with slices = %v, want %v", got, want)
	}
	for _, ch := range first.Changes {
		if ch.Kind != api.ObjectKind_OBJECT_KIND_ENDPOINTSLICE {
			continue
		}
		var got discoveryv1.EndpointSlice
		if err := api.DecodeObject(ch.Object, &got); err != nil || got.APIVersion != "discovery.k8s.io/v1" || got.Kind != "EndpointSlice" ||
			got.ResourceVersion == "" || got.Labels[discoveryv1.LabelServiceName] != "web" {
			t.Errorf("slice = %+v, %v; want a discovery.k8s.io/v1 EndpointSlice of web with a resourceVersion", got, err)
		}
	}

	// A second slice of the service, then a change of Endpoints: the
	// slice reaches only the session that asked for slices.
	if _, err := disc.EndpointSlices("default").Create(ctxT(t), newSlice("web-b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep2 := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}}
	if _, err := e.admin.Endpoints("default").Create(ctxT(t), ep2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	end, err := e.st.CurrentRevision(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	follow := func(s api.Node_SessionClient, from int64) []string {
		var got []string
		for last := from; last < end; {
			m := recvT(t, s)
			last = m.Revision
			got = append(got, summary(m, kinds...)...)
		}
		return got
	}
	if got, want := follow(withSlices, first.Revision), []string{"PUT OBJECT_KIND_ENDPOINTSLICE default/web-b"}; !slices.Equal(got, want) {
		t.Errorf("batches with slices = %v, want %v", got, want)
	}
	if got, want := follow(withEndpoints, first.Revision), []string{"PUT OBJECT_KIND_ENDPOINTS default/db"}; !slices.Equal(got, want) {
		t.Errorf("batches without slices = %v, want %v", got, want)
	}
}

// countEndpoints is the number of Endpoints objects in the cluster.
func countEndpoints(t *testing.T, e *env) int {
	t.Helper()
	l, err := e.admin.Endpoints("").List(ctxT(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}
