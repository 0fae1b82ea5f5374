package server

import (
	"log/slog"
	"time"
)

// Config is everything `minik server` is started with.
type Config struct {
	DataDir     string
	HTTPSPort   int
	BindAddress string   // "" = all addresses
	TLSSANs     []string // extra names and addresses for the serving certificate
	Token       string   // join token or its secret; "" = generated
	ClusterCIDR string
	ServiceCIDR string
	// NodePortRange is where NodePorts come from ("30000-32767").
	NodePortRange string
	NodeName      string
	NodeIP        string
	DisableAgent  bool
	// NodeMonitorGracePeriod is how long a node may go without a
	// heartbeat before it is marked Ready=Unknown (default 40s).
	NodeMonitorGracePeriod time.Duration
	// PodEvictionTimeout is how long pods stay on a node that stopped
	// answering before they are deleted (default 5m; a pod's shorter
	// toleration of the unreachable taint wins).
	PodEvictionTimeout time.Duration
	// TerminatedPodGCThreshold is how many terminated pods may exist
	// before the oldest are deleted (0 or less: no limit, as
	// kube-controller-manager's --terminated-pod-gc-threshold).
	TerminatedPodGCThreshold int
	// RestartBackoff is the embedded agent's first CrashLoopBackOff delay.
	RestartBackoff time.Duration
	// RegistriesConfig is the embedded agent's registries file ("" =
	// DATA/agent/registries.yaml if it exists).
	RegistriesConfig string
	// HeartbeatInterval is the embedded agent's (default 10s).
	HeartbeatInterval time.Duration
	// NodeRegistrationRate and NodeRegistrationBurst limit node
	// registrations per join token (registrations a second, and how many
	// at once; defaults nodes.DefaultRegistrationRate and
	// nodes.DefaultRegistrationBurst; a negative rate = no limit).
	NodeRegistrationRate  float64
	NodeRegistrationBurst int
	// CompactionWindow is how many revisions of history the store keeps.
	CompactionWindow int64
	// Memory bounds (0 = the default of each). WatchWindowBytes bounds
	// the store's in-memory window of recent changes (64 MiB);
	// WatchCacheBytes each of the API's three caches of recent changes,
	// decoded and encoded for watchers (32 MiB); WatchBufferBytes what
	// one API watch may have waiting for a client that reads slowly
	// before it is cut off (16 MiB).
	WatchWindowBytes int
	WatchCacheBytes  int
	WatchBufferBytes int
	// DatastoreEndpoint lists etcd client URLs, comma-separated; set, it
	// replaces the embedded bbolt store. The files below are PEM files
	// for https endpoints.
	DatastoreEndpoint string
	DatastoreCAFile   string
	DatastoreCertFile string
	DatastoreKeyFile  string
	// JoinServer is another server of the cluster ("https://HOST:PORT",
	// --server): a server started with it joins that cluster, whose
	// credentials it reads from the shared datastore with Token.
	JoinServer string
	// CertLifetime is the lifetime of the serving, admin and node
	// certificates the server issues (zero: pki.LeafValidity); each is
	// renewed two thirds into it. Short values are for tests.
	CertLifetime time.Duration
	// AdvertiseAddress is the address agents and other servers reach
	// this server at (default: see advertiseHost).
	AdvertiseAddress string
	// SnapshotSchedule is when the server saves a snapshot of its store
	// into DATA/server/snapshots, a five-field cron expression in UTC
	// ("" = never); SnapshotRetention how many of those it keeps.
	SnapshotSchedule  string
	SnapshotRetention int
	// DisableManifests turns off applying the manifest files of
	// DATA/server/manifests (server/manifests).
	DisableManifests bool
	// ManifestsInterval is how often that directory is read for changes
	// (zero: manifests.DefaultInterval).
	ManifestsInterval time.Duration
	// DisableControllers names controllers (controllers.Names) the
	// server does not run, as kube-controller-manager's
	// --controllers=-NAME: another process may run them instead.
	DisableControllers []string
	Version            string
	Logger             *slog.Logger
}
