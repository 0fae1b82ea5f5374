package controllers

import (
	"context"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Name and key of the ConfigMap that carries the cluster CA into every
// namespace, where pods read it to verify the API server.
const (
	RootCAConfigMap = "kube-root-ca.crt"
	RootCAKey       = "ca.crt"
)

// errNoCA is returned by NewRootCAPublisher without a CA to publish.
var errNoCA = errors.New("root CA publisher: no CA certificate")

// RootCAPublisher keeps a ConfigMap kube-root-ca.crt holding exactly
// ca.crt = the cluster CA (PEM) in every namespace that is not being
// deleted, and puts it back when it is edited or deleted.
type RootCAPublisher struct {
	client     kubernetes.Interface
	configMaps corelisters.ConfigMapLister
	ca         string
	*perNamespace
}

// NewRootCAPublisher returns a RootCAPublisher of caPEM fed by the given
// informers; configMaps may be narrowed to ConfigMaps named
// kube-root-ca.crt. lg may be nil.
func NewRootCAPublisher(client kubernetes.Interface, namespaces coreinformers.NamespaceInformer, configMaps coreinformers.ConfigMapInformer, caPEM []byte, lg *slog.Logger) (*RootCAPublisher, error) {
	if len(caPEM) == 0 {
		return nil, errNoCA
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &RootCAPublisher{client: client, configMaps: configMaps.Lister(), ca: string(caPEM)}
	var err error
	c.perNamespace, err = newPerNamespace("root-ca-publisher", RootCAConfigMap, namespaces, configMaps.Informer(),
		lg.With("component", "root-ca-publisher"), c.ensure)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run publishes the CA with workers goroutines until ctx ends, and
// returns after they have stopped.
func (c *RootCAPublisher) Run(ctx context.Context, workers int) error {
	return c.run(ctx, workers)
}

func (c *RootCAPublisher) ensure(ctx context.Context, namespace string) error {
	cms := c.client.CoreV1().ConfigMaps(namespace)
	cur, err := c.configMaps.ConfigMaps(namespace).Get(RootCAConfigMap)
	if apierrors.IsNotFound(err) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap, Namespace: namespace},
			Data:       map[string]string{RootCAKey: c.ca},
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if len(cur.Data) == 1 && cur.Data[RootCAKey] == c.ca && len(cur.BinaryData) == 0 {
		return nil
	}
	if cur.Immutable != nil && *cur.Immutable {
		// An immutable copy cannot be corrected, only replaced.
		return cms.Delete(ctx, RootCAConfigMap, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
	}
	cm := cur.DeepCopy()
	cm.Data = map[string]string{RootCAKey: c.ca}
	cm.BinaryData = nil
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}
