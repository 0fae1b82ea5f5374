package agent

import (
	"log/slog"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minik-dev/minik/agent/pods"
	"github.com/minik-dev/minik/api"
)

// objectSetter receives the objects pods read (pods.Manager).
type objectSetter interface {
	SetObjects(objs pods.Objects)
}

// podObjects are the session's ConfigMaps, Secrets, Services and
// ClusterTrustBundles, decoded as their changes arrive, for the pod
// manager: environments and API data volumes read them. Only the session
// goroutine uses it.
type podObjects struct {
	configMaps   map[types.NamespacedName]*corev1.ConfigMap
	secrets      map[types.NamespacedName]*corev1.Secret
	services     map[types.NamespacedName]*corev1.Service
	trustBundles map[types.NamespacedName]*certificatesv1.ClusterTrustBundle
}

func newPodObjects() *podObjects {
	return &podObjects{
		configMaps:   map[types.NamespacedName]*corev1.ConfigMap{},
		secrets:      map[types.NamespacedName]*corev1.Secret{},
		services:     map[types.NamespacedName]*corev1.Service{},
		trustBundles: map[types.NamespacedName]*certificatesv1.ClusterTrustBundle{},
	}
}

// isPodObjectKind tells whether pods read objects of kind k.
func isPodObjectKind(k api.ObjectKind) bool {
	return k == api.ObjectKind_OBJECT_KIND_CONFIGMAP || k == api.ObjectKind_OBJECT_KIND_SECRET ||
		k == api.ObjectKind_OBJECT_KIND_SERVICE || k == api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE
}

// apply records one change of a kind pods read. An undecodable object is
// left out (and logged by name only: it may be a Secret).
func (o *podObjects) apply(c *api.Change, lg *slog.Logger) {
	nn := types.NamespacedName{Namespace: c.GetNamespace(), Name: c.GetName()}
	del := c.GetAction() == api.Change_DELETE
	var err error
	switch c.GetKind() {
	case api.ObjectKind_OBJECT_KIND_CONFIGMAP:
		err = put(o.configMaps, nn, c.GetObject(), del)
	case api.ObjectKind_OBJECT_KIND_SECRET:
		err = put(o.secrets, nn, c.GetObject(), del)
	case api.ObjectKind_OBJECT_KIND_SERVICE:
		err = put(o.services, nn, c.GetObject(), del)
	case api.ObjectKind_OBJECT_KIND_CLUSTERTRUSTBUNDLE:
		err = put(o.trustBundles, nn, c.GetObject(), del)
	}
	if err != nil {
		lg.Warn("undecodable object from the server", "kind", c.GetKind(), "name", nn.String(), "err", err)
	}
}

// put decodes data into a new T and stores it under nn, or removes nn.
func put[T any, PT interface {
	*T
	api.Object
}](m map[types.NamespacedName]PT, nn types.NamespacedName, data []byte, del bool) error {
	if del {
		delete(m, nn)
		return nil
	}
	obj := PT(new(T))
	if err := api.DecodeObject(data, obj); err != nil {
		delete(m, nn)
		return err
	}
	m[nn] = obj
	return nil
}

// objects returns what the pod manager needs, in new maps: later changes
// do not touch what it was given.
func (o *podObjects) objects() pods.Objects {
	out := pods.Objects{
		ConfigMaps:          make(map[types.NamespacedName]*corev1.ConfigMap, len(o.configMaps)),
		Secrets:             make(map[types.NamespacedName]*corev1.Secret, len(o.secrets)),
		Services:            make([]*corev1.Service, 0, len(o.services)),
		ClusterTrustBundles: make(map[string]*certificatesv1.ClusterTrustBundle, len(o.trustBundles)),
	}
	for k, v := range o.configMaps {
		out.ConfigMaps[k] = v
	}
	for k, v := range o.secrets {
		out.Secrets[k] = v
	}
	for _, v := range o.services {
		out.Services = append(out.Services, v)
	}
	for k, v := range o.trustBundles {
		out.ClusterTrustBundles[k.Name] = v
	}
	return out
}
