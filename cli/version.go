package cli

import (
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
)

// ServerVersion returns the GitVersion the API server reports at /version,
// using the kubeconfig at kubeconfigPath or, if that is "", the one
// [ResolveKubeconfig] picks (falling back to ~/.kube/config).
func ServerVersion(kubeconfigPath string) (string, error) {
	if kubeconfigPath == "" {
		kubeconfigPath = ResolveKubeconfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfigPath
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return "", err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}
