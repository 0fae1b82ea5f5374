package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The ConfigMap kube-system/extension-apiserver-authentication tells
// aggregated API servers and webhooks how the API server's requests
// authenticate, with the keys kube-apiserver writes.
const (
	ExtensionAuthNamespace = metav1.NamespaceSystem
	ExtensionAuthConfigMap = "extension-apiserver-authentication"
	extensionAuthKey       = ExtensionAuthNamespace + "/" + ExtensionAuthConfigMap
)

// ExtensionAuthentication is what the ConfigMap publishes.
type ExtensionAuthentication struct {
	// ClientCA (PEM) verifies client certificates of users
	// (client-ca-file).
	ClientCA []byte
	// RequestHeaderCA (PEM) verifies the front proxy's client certificate
	// (requestheader-client-ca-file); AllowedNames are the common names it
	// may have, and the headers name the user, groups and extra values.
	RequestHeaderCA     []byte
	AllowedNames        []string
	UsernameHeaders     []string
	GroupHeaders        []string
	ExtraHeaderPrefixes []string
}

// errNoExtensionAuth is returned by NewExtensionAuthPublisher without CAs.
var errNoExtensionAuth = errors.New("extension authentication publisher: client CA and request header CA are required")

// data is the ConfigMap's data: the CAs as PEM, the lists as JSON arrays.
func (e ExtensionAuthentication) data() map[string]string {
	list := func(l []string) string {
		if l == nil {
			l = []string{}
		}
		b, _ := json.Marshal(l)
		return string(b)
	}
	return map[string]string{
		"client-ca-file":                     string(e.ClientCA),
		"requestheader-client-ca-file":       string(e.RequestHeaderCA),
		"requestheader-allowed-names":        list(e.AllowedNames),
		"requestheader-username-headers":     list(e.UsernameHeaders),
		"requestheader-group-headers":        list(e.GroupHeaders),
		"requestheader-extra-headers-prefix": list(e.ExtraHeaderPrefixes),
	}
}

// ExtensionAuthPublisher keeps the ConfigMap
// kube-system/extension-apiserver-authentication holding exactly the
// data of its ExtensionAuthentication, and puts it back when it is
// edited or deleted.
type ExtensionAuthPublisher struct {
	client     kubernetes.Interface
	configMaps corelisters.ConfigMapLister
	want       map[string]string
	loop       *loop
	synced     []cache.InformerSynced
}

// NewExtensionAuthPublisher returns an ExtensionAuthPublisher of ea fed by
// configMaps, which may be narrowed to ConfigMaps named
// extension-apiserver-authentication. lg may be nil.
func NewExtensionAuthPublisher(client kubernetes.Interface, configMaps coreinformers.ConfigMapInformer, ea ExtensionAuthentication, lg *slog.Logger) (*ExtensionAuthPublisher, error) {
	if len(ea.ClientCA) == 0 || len(ea.RequestHeaderCA) == 0 {
		return nil, errNoExtensionAuth
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "extension-auth-publisher")
	c := &ExtensionAuthPublisher{client: client, configMaps: configMaps.Lister(), want: ea.data()}
	c.loop = newLoop("extension-auth-publisher", lg, c.sync)
	changed := func(obj any) {
		if key, ok := keyOf(obj); ok && key == extensionAuthKey {
			c.loop.add(key)
		}
	}
	var err error
	c.synced, err = addHandlers(handler{configMaps.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed,
	}})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run keeps the ConfigMap until ctx ends, and returns after its workers
// have stopped.
func (c *ExtensionAuthPublisher) Run(ctx context.Context, workers int) error {
	c.loop.add(extensionAuthKey)
	return c.loop.run(ctx, workers, c.synced...)
}

// data is a copy of the ConfigMap's data.
func (c *ExtensionAuthPublisher) data() map[string]string {
	out := make(map[string]string, len(c.want))
	for k, v := range c.want {
		out[k] = v
	}
	return out
}

func (c *ExtensionAuthPublisher) sync(ctx context.Context, _ string) error {
	cms := c.client.CoreV1().ConfigMaps(ExtensionAuthNamespace)
	cur, err := c.configMaps.ConfigMaps(ExtensionAuthNamespace).Get(ExtensionAuthConfigMap)
	if apierrors.IsNotFound(err) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ExtensionAuthConfigMap, Namespace: ExtensionAuthNamespace},
			Data:       c.data(),
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // the informer brings it, and the key back
		}
		return err
	}
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(cur.Data, c.want) && len(cur.BinaryData) == 0 {
		return nil
	}
	if cur.Immutable != nil && *cur.Immutable {
		// An immutable copy cannot be corrected, only replaced.
		return cms.Delete(ctx, ExtensionAuthConfigMap, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
	}
	cm := cur.DeepCopy()
	cm.Data = c.data()
	cm.BinaryData = nil
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}
