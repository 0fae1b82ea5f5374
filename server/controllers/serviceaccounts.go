package controllers

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// DefaultServiceAccount is the ServiceAccount every namespace has, the
// one pods run as unless they name another.
const DefaultServiceAccount = "default"

// ServiceAccountsController keeps a ServiceAccount named default in every
// namespace that is not being deleted, creating it again if it is
// deleted. It never changes an existing one: its users may.
type ServiceAccountsController struct {
	client   kubernetes.Interface
	accounts corelisters.ServiceAccountLister
	*perNamespace
}

// NewServiceAccountsController returns a ServiceAccountsController fed by
// the given informers; accounts may be narrowed to ServiceAccounts named
// default. lg may be nil.
func NewServiceAccountsController(client kubernetes.Interface, namespaces coreinformers.NamespaceInformer, accounts coreinformers.ServiceAccountInformer, lg *slog.Logger) (*ServiceAccountsController, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	c := &ServiceAccountsController{client: client, accounts: accounts.Lister()}
	var err error
	c.perNamespace, err = newPerNamespace("serviceaccount", DefaultServiceAccount, namespaces, accounts.Informer(),
		lg.With("component", "serviceaccount-controller"), c.ensure)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run keeps default ServiceAccounts with workers goroutines until ctx
// ends, and returns after they have stopped.
func (c *ServiceAccountsController) Run(ctx context.Context, workers int) error {
	return c.run(ctx, workers)
}

func (c *ServiceAccountsController) ensure(ctx context.Context, namespace string) error {
	_, err := c.accounts.ServiceAccounts(namespace).Get(DefaultServiceAccount)
	if !apierrors.IsNotFound(err) {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceAccount, Namespace: namespace}}
	_, err = c.client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	return err
}
