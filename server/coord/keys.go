package coord

// Keys under the store's prefix in etcd that coordinate the servers of a
// cluster. They are outside /registry/, so the REST API never serves them.
const (
	clusterDir    = "/cluster/"
	bootstrapKey  = clusterDir + "bootstrap"   // sealed pki.Shared
	leaderKey     = clusterDir + "leader"      // election prefix
	serversDir    = clusterDir + "servers/"    // servers/<host:port> → host:port, on the server's lease
	heartbeatsDir = clusterDir + "heartbeats/" // heartbeats/<node> → peerBeat, on the writer's lease
)
