package pods

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/minik-dev/minik/runtime"
)

// EventFailedToRetrieveImagePullSecret is the kubelet's event for
// imagePullSecrets the node does not have; the pull goes on without them.
const EventFailedToRetrieveImagePullSecret = "FailedToRetrieveImagePullSecret"

// dockerAuth is one registry's entry of a .dockerconfigjson or .dockercfg.
type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Auth is base64 "username:password", used when those are empty.
	Auth string `json:"auth"`
}

// pullAuth returns the registry credentials of the pod's
// imagePullSecrets (types kubernetes.io/dockerconfigjson and
// kubernetes.io/dockercfg), in the order listed. The names of secrets the
// node lacks or cannot read are returned apart, for an event; their
// contents never appear in errors.
func pullAuth(pod *corev1.Pod, objs *Objects) (auth []runtime.RegistryAuth, missing []string) {
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := objs.secret(pod.Namespace, ref.Name)
		if err != nil {
			missing = append(missing, ref.Name)
			continue
		}
		entries, err := dockerEntries(s)
		if err != nil {
			missing = append(missing, ref.Name)
			continue
		}
		for _, host := range sortedKeys(entries) {
			a := entries[host]
			user, pass := a.Username, a.Password
			if user == "" && pass == "" && a.Auth != "" {
				if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					user, pass, _ = strings.Cut(string(dec), ":")
				}
			}
			auth = append(auth, runtime.RegistryAuth{Host: registryHost(host), Username: user, Password: pass})
		}
	}
	return auth, missing
}

// dockerEntries reads the registry entries of a pull secret.
func dockerEntries(s *corev1.Secret) (map[string]dockerAuth, error) {
	if data, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if json.Unmarshal(data, &cfg) != nil {
			return nil, fmt.Errorf("secret %q: %s is not a docker config: %w", s.Name, corev1.DockerConfigJsonKey, errUnsupported)
		}
		return cfg.Auths, nil
	}
	if data, ok := s.Data[corev1.DockerConfigKey]; ok {
		var cfg map[string]dockerAuth
		if json.Unmarshal(data, &cfg) != nil {
			return nil, fmt.Errorf("secret %q: %s is not a docker config: %w", s.Name, corev1.DockerConfigKey, errUnsupported)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("secret %q holds no docker config: %w", s.Name, errUnsupported)
}

// registryHost reduces a docker config key ("https://index.docker.io/v1/",
// "registry.example:5000") to the registry's host.
func registryHost(key string) string {
	for _, scheme := range []string{"https://", "http://"} {
		key = strings.TrimPrefix(key, scheme)
	}
	host, _, _ := strings.Cut(key, "/")
	return host
}

// missingPullSecrets words the kubelet's event about secrets it lacks.
func missingPullSecrets(names []string) string {
	return fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.",
		strings.Join(slices.Compact(names), ", "))
}
