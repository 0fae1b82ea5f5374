package server

import "log/slog"

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
	// CompactionWindow is how many revisions of history the store keeps.
	CompactionWindow int64
	Version          string
	Logger           *slog.Logger
}
