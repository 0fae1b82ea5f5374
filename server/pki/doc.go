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
//	    └── admin.token                admin bearer token (0600)
//
// Keys are written 0600 and every file is replaced atomically.
//
// # Join token
//
// The token pins the CA: an agent fetches the CA bundle from the server,
// checks it with VerifyCAHash against the hash from ParseToken, and only
// then trusts the server. The secret part authenticates the agent while it
// has no certificate of its own; SignClientCert then issues its node
// identity (CN system:node:NAME, O system:nodes).
package pki
