package controllers

import (
	"context"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// buildNamespaceControllers makes the controllers that make a namespace
// usable: its default ServiceAccount, its root CA ConfigMap and, in
// default, the kubernetes Service; and the default ServiceCIDR. They watch only the objects they keep,
// through informer factories narrowed to one name, returned for the
// caller to start and shut down: a cluster's ConfigMaps and
// ServiceAccounts are not cached for their sake.
func buildNamespaceControllers(client kubernetes.Interface, factory informers.SharedInformerFactory, lg *slog.Logger, cfg Config) ([]func(context.Context, int) error, []informers.SharedInformerFactory, error) {
	core := factory.Core().V1()
	accounts := namedFactory(client, cfg, DefaultServiceAccount)
	sa, err := NewServiceAccountsController(client, core.Namespaces(), accounts.Core().V1().ServiceAccounts(), lg)
	if err != nil {
		return nil, nil, err
	}
	runs := []func(context.Context, int) error{sa.Run}
	named := []informers.SharedInformerFactory{accounts}
	if len(cfg.ClusterCA) > 0 {
		cms := namedFactory(client, cfg, RootCAConfigMap)
		ca, err := NewRootCAPublisher(client, core.Namespaces(), cms.Core().V1().ConfigMaps(), cfg.ClusterCA, lg)
		if err != nil {
			return nil, nil, err
		}
		runs, named = append(runs, ca.Run), append(named, cms)
	}
	if cfg.ExtensionAuth != nil {
		cms := namedFactory(client, cfg, ExtensionAuthConfigMap)
		ea, err := NewExtensionAuthPublisher(client, cms.Core().V1().ConfigMaps(), *cfg.ExtensionAuth, lg)
		if err != nil {
			return nil, nil, err
		}
		runs, named = append(runs, ea.Run), append(named, cms)
	}
	if cfg.APIService.Servers != nil {
		api, err := NewAPIServiceController(client, core.Services(), core.Endpoints(), lg, cfg.APIService)
		if err != nil {
			return nil, nil, err
		}
		runs = append(runs, api.Run)
	}
	if cfg.ServiceCIDR != "" {
		cidrs := namedFactory(client, cfg, DefaultServiceCIDRName)
		sc, err := NewDefaultServiceCIDRController(client, cidrs.Networking().V1().ServiceCIDRs(), cfg.ServiceCIDR, lg)
		if err != nil {
			return nil, nil, err
		}
		runs, named = append(runs, sc.Run), append(named, cidrs)
	}
	return runs, named, nil
}

// namedFactory is an informer factory whose informers see only objects
// called name.
func namedFactory(client kubernetes.Interface, cfg Config, name string) informers.SharedInformerFactory {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return informers.NewSharedInformerFactoryWithOptions(client, cfg.ResyncPeriod,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = sel }))
}
