// Package pki keeps the cluster's certificates and credentials: a CA, the
// API server's serving certificate, the admin client certificate and
// kubeconfig, the join token and an admin bearer token.
//
// # Files
//
// Ensure creates what is missing under the data directory and reuses the
// rest on later starts:
//
//	DATA/
//	├── admin.kubeconfig   admin kubeconfig, certificate data embedded (0600)
//	├── token              join token K10<sha256 of ca.crt>::server:<secret> (0600)
//	└── tls/               (0700)
//	    ├── ca.crt, ca.key             CA, ECDSA P-256, 10 years
//	    ├── serving.crt, serving.key   API serving certificate, 1 year
//	    ├── admin.crt, admin.key       CN system:admin, O system:masters, 1 year
//	    ├── front-proxy-ca.crt, .key   front-proxy CA, ECDSA P-256, 10 years
//	    ├── front-proxy-client.crt, .key  CN front-proxy-client, 1 year
//	    ├── admin.token                admin bearer token (0600)
//	    └── .lock                      flocked while leaves are replaced
//
// Keys are written 0600 and every file is replaced atomically.
//
// # Renewal
//
// Every leaf (serving, admin, front-proxy client, node certificates) is renewed at
// api.RenewalTime, two thirds into its lifetime (Options.LeafLifetime,
// one year unless shortened for tests), while the server runs: Run calls
// Refresh at the next renewal time and every few seconds, which reissues
// what is due, reloads what `minik certificate rotate` or `minik token
// rotate` replaced on disk, and rewrites the admin kubeconfig. The TLS
// configuration takes the serving certificate at each handshake
// (GetCertificate), so open connections and watches go on while new ones
// get the new certificate. Agents renew their own certificate through
// the node protocol (Register over a connection that presents it, which
// needs no join token). The CA is not renewed.
//
// # Join token
//
// The token pins the CA: an agent fetches the CA bundle from the server,
// checks it with api.VerifyCAHash against the hash from api.ParseToken
// (the token format is the node protocol's, in api/token.go), and only
// then trusts the server. The secret part authenticates the agent while it
// has no certificate of its own; SignClientCert then issues its node
// identity (CN system:node:NAME, O system:nodes).
//
// # Several servers
//
// Servers of one cluster share Shared: the CA with its key, the token
// secret, the admin token, the service account key and the front-proxy
// CA with its key. The first server keeps them in the datastore
// sealed by Seal (AES-256-GCM under a PBKDF2-SHA256 key from the token
// secret, the CA hash in clear as additional data); a joining server
// opens them with Unseal, writes them with Install and runs Ensure, which
// issues its own serving and admin certificates from that CA. Seal also
// encrypts them under an HKDF-SHA256 key from the CA's private key, which
// UnsealForServer opens: servers that hold the CA read the data whatever
// token sealed it, which is how a token rotated on one server reaches the
// others (WriteTokenSecret, then Refresh).
//
// Snapshots carry Shared sealed the same way (server/snapshot), so a
// restore brings back the CA and the join token of the snapshot's time.
package pki
