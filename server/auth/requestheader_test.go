package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
)

// frontProxyRequestHeader is the configuration kube-apiserver's front
// proxy uses, with a's front-proxy CA.
func frontProxyRequestHeader(a *pki.Authority) auth.RequestHeader {
	return auth.RequestHeader{
		CA:                  a.FrontProxyCACert(),
		AllowedNames:        []string{pki.FrontProxyClientName},
		UsernameHeaders:     []string{"X-Remote-User"},
		GroupHeaders:        []string{"X-Remote-Group"},
		ExtraHeaderPrefixes: []string{"X-Remote-Extra-"},
	}
}

func TestRequestHeaderAuthentication(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.Ensure(dir, pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	c := cluster{ca: ca}
	c.admin, err = tls.LoadX509KeyPair(filepath.Join(dir, "tls", "admin.crt"), filepath.Join(dir, "tls", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	fpCA, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "front-proxy-ca.crt"), filepath.Join(dir, "tls", "front-proxy-ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	proxy, _ := ca.FrontProxyClientCertificate(nil)
	// A certificate of the front-proxy CA with a name not allowed.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "someone-else"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, fpCA.Leaf, key.Public(), fpCA.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger := pair(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key)

	plain := auth.NewAuthenticator(ca.ClientCAPool(), nil)
	withRH := plain.WithRequestHeader(frontProxyRequestHeader(ca))
	srv := serve(t, c, withRH, false)
	plainSrv := serve(t, c, plain, false)

	headers := http.Header{
		"X-Remote-User":                        {"alice"},
		"X-Remote-Group":                       {"devs", "ops"},
		"X-Remote-Extra-Scopes":                {"view", "edit"},
		"X-Remote-Extra-Example.com%2fteam":    {"blue"},
		"X-Remote-Extra-Authentication.k8s.io": {"x"},
	}
	alice := &auth.User{Name: "alice", Groups: []string{"devs", "ops", auth.GroupAuthenticated},
		Extra: map[string][]string{"scopes": {"view", "edit"}, "example.com/team": {"blue"}, "authentication.k8s.io": {"x"}}}
	admin := &auth.User{Name: "system:admin", Groups: []string{auth.GroupMasters, auth.GroupAuthenticated}}
	tests := []struct {
		name   string
		srv    string
		cert   *tls.Certificate
		header http.Header
		want   *auth.User // nil: not authenticated
	}{
		{"front proxy names the user", srv.URL, proxy, headers, alice},
		{"front proxy without a user header", srv.URL, proxy, http.Header{"X-Remote-Group": {"system:masters"}}, nil},
		{"front-proxy CA, name not allowed", srv.URL, &stranger, headers, nil},
		{"cluster certificate: headers ignored", srv.URL, &c.admin, headers, admin},
		{"no certificate: headers ignored", srv.URL, nil, headers, nil},
		{"without requestheader, front proxy is no one", plainSrv.URL, proxy, headers, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := getWithHeaders(t, ca, tc.srv, tc.cert, tc.header)
			if tc.want == nil {
				if got.OK && got.User.Name != pki.FrontProxyClientName {
					t.Fatalf("Authenticate = %+v, want not authenticated", got.User)
				}
				if got.OK {
					t.Fatalf("Authenticate = %+v: the front-proxy certificate authenticated as itself", got.User)
				}
				return
			}
			if !got.OK {
				t.Fatalf("Authenticate = not authenticated, want %+v", *tc.want)
			}
			if diff := cmp.Diff(*tc.want, got.User); diff != "" {
				t.Errorf("Authenticate user (-want +got):\n%s", diff)
			}
		})
	}
}

// getWithHeaders sends a GET to url presenting cert (if any) with header.
func getWithHeaders(t *testing.T, ca *pki.Authority, url string, cert *tls.Certificate, header http.Header) result {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.CACert())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "localhost",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url+"/", nil)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res
}
