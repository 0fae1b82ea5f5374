package controllers

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var testExtensionAuth = ExtensionAuthentication{
	ClientCA:            []byte("client CA PEM\n"),
	RequestHeaderCA:     []byte("front-proxy CA PEM\n"),
	AllowedNames:        []string{"front-proxy-client"},
	UsernameHeaders:     []string{"X-Remote-User"},
	GroupHeaders:        []string{"X-Remote-Group"},
	ExtraHeaderPrefixes: []string{"X-Remote-Extra-"},
}

// The content kube-apiserver publishes, which aggregated servers parse.
var wantExtensionAuthData = map[string]string{
	"client-ca-file":                     "client CA PEM\n",
	"requestheader-client-ca-file":       "front-proxy CA PEM\n",
	"requestheader-allowed-names":        `["front-proxy-client"]`,
	"requestheader-username-headers":     `["X-Remote-User"]`,
	"requestheader-group-headers":        `["X-Remote-Group"]`,
	"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
}

func startExtensionAuth(e *env) {
	e.t.Helper()
	cms := namedFactory(e.client, Config{}, ExtensionAuthConfigMap)
	c, err := NewExtensionAuthPublisher(e.client, cms.Core().V1().ConfigMaps(), testExtensionAuth, e.lg)
	if err != nil {
		e.t.Fatalf("NewExtensionAuthPublisher: %v", err)
	}
	e.run(func(ctx context.Context) error {
		cms.Start(ctx.Done())
		defer cms.Shutdown()
		return c.Run(ctx, 2)
	})
}

// waitExtensionAuth waits until the ConfigMap holds exactly the data, in a
// ConfigMap other than one with UID not, and returns it.
func (e *env) waitExtensionAuth(not string) *corev1.ConfigMap {
	e.t.Helper()
	var cm *corev1.ConfigMap
	e.eventually("extension-apiserver-authentication", func() error {
		var err error
		cm, err = e.client.CoreV1().ConfigMaps(ExtensionAuthNamespace).Get(e.ctx, ExtensionAuthConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if string(cm.UID) == not {
			return fmt.Errorf("still the old one")
		}
		if diff := cmp.Diff(wantExtensionAuthData, cm.Data); diff != "" || len(cm.BinaryData) > 0 {
			return fmt.Errorf("data (-want +got):\n%s", diff)
		}
		return nil
	})
	return cm
}

func TestExtensionAuthPublisher(t *testing.T) {
	e := newEnv(t)
	startExtensionAuth(e)
	cm := e.waitExtensionAuth("")
	cms := e.client.CoreV1().ConfigMaps(ExtensionAuthNamespace)

	edited := cm.DeepCopy()
	edited.Data["requestheader-allowed-names"] = `["mallory"]`
	edited.Data["extra"] = "x"
	if _, err := cms.Update(e.ctx, edited, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := e.waitExtensionAuth(""); got.UID != cm.UID {
		t.Errorf("an edited ConfigMap was replaced (uid %s, was %s), want it corrected", got.UID, cm.UID)
	}
	if err := cms.Delete(e.ctx, ExtensionAuthConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	e.waitExtensionAuth(string(cm.UID))
}

func TestExtensionAuthPublisherNeedsCAs(t *testing.T) {
	e := newEnv(t)
	noFrontProxy := testExtensionAuth
	noFrontProxy.RequestHeaderCA = nil
	if _, err := NewExtensionAuthPublisher(e.client, e.factory.Core().V1().ConfigMaps(), noFrontProxy, nil); err == nil {
		t.Error("NewExtensionAuthPublisher without a request header CA succeeded, want an error")
	}
}
