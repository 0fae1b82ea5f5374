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
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/minik-dev/minik/server/auth"
	"github.com/minik-dev/minik/server/pki"
	"github.com/minik-dev/minik/server/pki/pkitest"
)

// cluster is a CA with the credentials tests present.
type cluster struct {
	ca     *pki.Authority
	caPair tls.Certificate // the CA's own certificate and key
	admin  tls.Certificate
}

func newCluster(t *testing.T) cluster {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.Ensure(dir, pki.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) tls.Certificate {
		p, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", name+".crt"), filepath.Join(dir, "tls", name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return cluster{ca: ca, caPair: load("ca"), admin: load("admin")}
}

// issue returns a certificate signed by c's CA for a new key, built from
// tmpl (serial and validity filled in when unset).
func (c cluster) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caPair.Leaf, key.Public(), c.caPair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key)
}

// node returns a node certificate issued with SignClientCert.
func (c cluster) node(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := c.ca.SignClientCert(auth.NodeUserPrefix+name, []string{auth.GroupNodes}, key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, certPEM, key)
}

func pair(t *testing.T, certPEM []byte, key *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// result is what the test server reports about a request.
type result struct {
	OK   bool
	User auth.User
}

// serve starts an HTTPS server that authenticates each request with authn
// and answers with the result. requestOnly makes the server ask for a
// client certificate without verifying it in the handshake.
func serve(t *testing.T, c cluster, authn *auth.Authenticator, requestOnly bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := authn.Authenticate(r)
		json.NewEncoder(w).Encode(result{OK: ok, User: u})
	}))
	cfg := c.ca.ServerTLSConfig()
	if requestOnly {
		cfg.ClientAuth = tls.RequestClientCert
	}
	pkitest.StartTLS(srv, cfg)
	t.Cleanup(srv.Close)
	return srv
}

// get sends a GET to srv presenting cert (if any) and header (if any).
func get(t *testing.T, c cluster, srv *httptest.Server, cert *tls.Certificate, header string) (result, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(c.ca.CACert())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:    roots,
		ServerName: "localhost",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest("GET", srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	var res result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestAuthenticate(t *testing.T) {
	c := newCluster(t)
	other := newCluster(t)
	authn := auth.NewAuthenticator(c.ca.ClientCAPool(), map[string]auth.User{
		c.ca.TokenSecret(): auth.BootstrapUser,
		c.ca.Token():       auth.BootstrapUser,
		c.ca.AdminToken():  auth.AdminUser,
		"":                 auth.AdminUser, // ignored
	})
	verified := serve(t, c, authn, false)
	requested := serve(t, c, authn, true)

	node := c.node(t, "n1")
	servingCert, err := c.ca.ServerTLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	noCN := c.issue(t, &x509.Certificate{Subject: pkix.Name{Organization: []string{auth.GroupMasters}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	expired := c.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "late", Organization: []string{auth.GroupMasters}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
	})

	admin := auth.User{Name: "system:admin", Groups: []string{auth.GroupMasters, auth.GroupAuthenticated}}
	bootstrap := auth.User{Name: "system:bootstrap", Groups: []string{auth.GroupBootstrappers, auth.GroupAuthenticated}}
	tests := []struct {
		name          string
		srv           *httptest.Server
		cert          *tls.Certificate
		header        string
		want          *auth.User // nil: not authenticated
		handshakeFail bool
	}{
		{name: "no credentials", srv: verified},
		{name: "admin certificate", srv: verified, cert: &c.admin, want: &admin},
		{name: "node certificate", srv: verified, cert: &node,
			want: &auth.User{Name: "system:node:n1", Groups: []string{auth.GroupNodes, auth.GroupAuthenticated}}},
		{name: "admin token", srv: verified, header: "Bearer " + c.ca.AdminToken(), want: &admin},
		{name: "join secret", srv: verified, header: "Bearer " + c.ca.TokenSecret(), want: &bootstrap},
		{name: "full join token", srv: verified, header: "Bearer " + c.ca.Token(), want: &bootstrap},
		{name: "lower-case scheme", srv: verified, header: "bearer " + c.ca.AdminToken(), want: &admin},
		{name: "wrong bearer token", srv: verified, header: "Bearer " + other.ca.AdminToken()},
		{name: "empty bearer token", srv: verified, header: "Bearer "},
		{name: "basic scheme", srv: verified, header: "Basic " + c.ca.AdminToken()},
		{name: "token without scheme", srv: verified, header: c.ca.AdminToken()},
		{name: "certificate from another CA", srv: verified, cert: &other.admin, handshakeFail: true},
		{name: "unverified: admin certificate", srv: requested, cert: &c.admin, want: &admin},
		{name: "unverified: certificate from another CA", srv: requested, cert: &other.admin},
		{name: "unverified: another CA, valid token", srv: requested, cert: &other.admin,
			header: "Bearer " + c.ca.AdminToken(), want: &admin},
		{name: "unverified: server certificate", srv: requested, cert: servingCert},
		{name: "unverified: expired certificate", srv: requested, cert: &expired},
		{name: "unverified: no common name", srv: requested, cert: &noCN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := get(t, c, tc.srv, tc.cert, tc.header)
			if tc.handshakeFail {
				if err == nil {
					t.Fatalf("request authenticated as %+v, want a failed handshake", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("request = %v", err)
			}
			if tc.want == nil {
				if res.OK {
					t.Errorf("Authenticate = %+v, true; want false", res.User)
				}
				return
			}
			if !res.OK {
				t.Fatalf("Authenticate = false, want %+v", *tc.want)
			}
			if diff := cmp.Diff(*tc.want, res.User); diff != "" {
				t.Errorf("Authenticate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthenticateWithoutTLS(t *testing.T) {
	c := newCluster(t)
	foreign := newCluster(t)
	leaf := foreign.admin.Leaf
	tests := []struct {
		name  string
		authn *auth.Authenticator
		state *tls.ConnectionState
		want  bool
	}{
		{"no TLS", auth.NewAuthenticator(c.ca.ClientCAPool(), nil), nil, false},
		{"unverified foreign certificate", auth.NewAuthenticator(c.ca.ClientCAPool(), nil),
			&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, false},
		{"unverified certificate, no pool", auth.NewAuthenticator(nil, nil),
			&tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.admin.Leaf}}, false},
		{"unverified own certificate", auth.NewAuthenticator(c.ca.ClientCAPool(), nil),
			&tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.admin.Leaf}}, true},
		{"chain verified by the handshake", auth.NewAuthenticator(nil, nil),
			&tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.admin.Leaf},
				VerifiedChains: [][]*x509.Certificate{{c.admin.Leaf, c.ca.CACert()}}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = tc.state
			u, ok := tc.authn.Authenticate(r)
			if ok != tc.want {
				t.Errorf("Authenticate = %+v, %v; want %v", u, ok, tc.want)
			}
		})
	}
}

func TestAuthenticateReturnsOwnGroups(t *testing.T) {
	tokens := map[string]auth.User{"t": {Name: "u", Groups: []string{"g"}}}
	authn := auth.NewAuthenticator(nil, tokens)
	tokens["t"].Groups[0] = "changed"
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer t")
	u, _ := authn.Authenticate(r)
	u.Groups[0] = "mutated"
	u2, ok := authn.Authenticate(r)
	want := auth.User{Name: "u", Groups: []string{"g", auth.GroupAuthenticated}}
	if diff := cmp.Diff(want, u2); !ok || diff != "" {
		t.Errorf("Authenticate = %v (-want +got):\n%s", ok, diff)
	}
}
