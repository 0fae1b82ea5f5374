package servicenet

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/minik-dev/minik/internal/defaults"
)

// DefaultClusterDomain is the DNS domain of services and pods.
const DefaultClusterDomain = defaults.ClusterDomain

// Upstream resolvers for names outside the cluster domain.
var (
	resolvConfPath        = "/etc/resolv.conf"
	systemdResolvConfPath = "/run/systemd/resolve/resolv.conf"
	forwardTimeout        = 2 * time.Second
)

// dnsServer answers the cluster's names on addr:53, UDP and TCP, and
// forwards other names to the node's resolvers. Its records are replaced
// as a whole by setRecords; queries read whichever set is current.
type dnsServer struct {
	addr    netip.Addr
	domain  string // lowercase, fully qualified: "cluster.local."
	records atomic.Pointer[dnsRecords]
	lg      *slog.Logger
	// exchange asks the node's resolvers; tests replace it.
	exchange func(req *dns.Msg, tcp bool) *dns.Msg
}

func newDNSServer(addr netip.Addr, domain string, lg *slog.Logger) *dnsServer {
	if domain == "" {
		domain = DefaultClusterDomain
	}
	s := &dnsServer{addr: addr, domain: dns.Fqdn(strings.ToLower(domain)), lg: lg.With("component", "dns", "addr", addr)}
	s.records.Store(newRecords(nil, nil))
	s.exchange = s.forward
	return s
}

func (s *dnsServer) setRecords(r *dnsRecords) { s.records.Store(r) }

// run serves until ctx ends. The listeners bind with IP_FREEBIND: the
// address is the bridge's, which appears only with the node's first pod.
// A node whose port 53 is taken runs without DNS; that is logged.
func (s *dnsServer) run(ctx context.Context) error {
	lc := net.ListenConfig{Control: freebind}
	ap := netip.AddrPortFrom(s.addr, 53).String()
	pc, err := lc.ListenPacket(ctx, "udp4", ap)
	if err != nil {
		s.lg.Warn("cluster DNS not available", "err", err)
		return nil
	}
	l, err := lc.Listen(ctx, "tcp4", ap)
	if err != nil {
		pc.Close()
		s.lg.Warn("cluster DNS not available", "err", err)
		return nil
	}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: l, Handler: s},
	}
	done := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { done <- srv.ActivateAndServe() }()
	}
	s.lg.Info("cluster DNS serving")
	<-ctx.Done()
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.ShutdownContext(sctx)
		cancel()
	}
	for range servers {
		<-done
	}
	return nil
}

func freebind(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// ServeDNS answers one query: names in the cluster domain and the
// reverse names of cluster addresses from the records; anything else
// from the node's resolvers.
func (s *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNotImplemented)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	tcp := isTCP(w)
	var m *dns.Msg
	if rel, ok := s.relative(name); ok {
		m = fit(req, s.answerCluster(req, q, rel, tcp), tcp)
	} else if targets, ok := s.records.Load().reverse(name); ok && len(targets) > 0 {
		m = fit(req, s.answerPTR(req, q, targets), tcp)
	} else {
		// Reverse names of other addresses are the node's resolvers' to
		// answer, as CoreDNS falls through for them.
		m = s.exchange(req, tcp)
	}
	if err := w.WriteMsg(m); err != nil {
		s.lg.Debug("dns reply not sent", "err", err)
	}
}

// fit truncates a UDP reply to what the client accepts (512 bytes, or
// its EDNS0 buffer size) and sets TC, so that it asks again over TCP: a
// headless service with many endpoints does not fit in one datagram.
func fit(req, m *dns.Msg, tcp bool) *dns.Msg {
	size := dns.MaxMsgSize
	if !tcp {
		size = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
			m.SetEdns0(uint16(size), false)
		}
	}
	m.Truncate(size)
	return m
}

// relative returns name (lowercase, fully qualified) without the cluster
// domain, and whether it is in the domain.
func (s *dnsServer) relative(name string) (string, bool) {
	if name == s.domain {
		return "", true
	}
	return strings.CutSuffix(name, "."+s.domain)
}

// answerCluster answers a name of the cluster domain: NXDOMAIN for a name
// that does not exist, NOERROR without answers (NODATA) for one with no
// record of the type asked.
func (s *dnsServer) answerCluster(req *dns.Msg, q dns.Question, rel string, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	rs, ok := s.records.Load().lookup(rel)
	if !ok {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(s.domain)}
		return m
	}
	rs.fill(m, q, s.domain)
	if rs.cname != "" && q.Qtype != dns.TypeCNAME {
		s.chase(m, q, rs.cname, tcp)
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa(s.domain)}
	}
	return m
}

// maxCNAMEChain bounds the ExternalName services followed for one answer.
const maxCNAMEChain = 8

// chase adds the records of an ExternalName service's target: from the
// records when the target is in the cluster domain, else from the node's
// resolvers.
func (s *dnsServer) chase(m *dns.Msg, q dns.Question, target string, tcp bool) {
	for range maxCNAMEChain {
		rel, ok := s.relative(target)
		if !ok {
			up := new(dns.Msg)
			up.SetQuestion(target, q.Qtype)
			up.RecursionDesired = true
			if resp := s.exchange(up, tcp); resp != nil && resp.Rcode == dns.RcodeSuccess {
				m.Answer = append(m.Answer, resp.Answer...)
			}
			return
		}
		rs, ok := s.records.Load().lookup(rel)
		if !ok {
			return
		}
		rs.fill(m, dns.Question{Name: target, Qtype: q.Qtype, Qclass: q.Qclass}, s.domain)
		if rs.cname == "" {
			return
		}
		target = rs.cname
	}
}

// answerPTR answers a reverse name of a cluster address.
func (s *dnsServer) answerPTR(req *dns.Msg, q dns.Question, targets []string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
		for _, t := range targets {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr(q.Name, dns.TypePTR), Ptr: t + "." + s.domain})
		}
	}
	if len(m.Answer) == 0 {
		zone := "in-addr.arpa."
		if strings.HasSuffix(strings.ToLower(q.Name), ".ip6.arpa.") {
			zone = "ip6.arpa."
		}
		m.Ns = []dns.RR{soa(zone)}
	}
	return m
}

func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

// forward asks the node's resolvers in turn and returns the first answer,
// or SERVFAIL.
func (s *dnsServer) forward(req *dns.Msg, tcp bool) *dns.Msg {
	c := &dns.Client{Timeout: forwardTimeout}
	if tcp {
		c.Net = "tcp"
	}
	for _, up := range upstreams() {
		if up == s.addr.String() {
			continue
		}
		resp, _, err := c.Exchange(req, net.JoinHostPort(up, "53"))
		if err == nil {
			return resp
		}
		s.lg.Debug("upstream resolver failed", "upstream", up, "err", err)
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	return m
}

// upstreams returns the node's nameservers, skipping a loopback stub
// (systemd-resolved) for the servers it uses itself.
func upstreams() []string {
	cfg, err := dns.ClientConfigFromFile(resolvConfPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, srv := range cfg.Servers {
		if ip, err := netip.ParseAddr(srv); err == nil && !ip.IsLoopback() {
			out = append(out, srv)
		}
	}
	if len(out) == 0 && len(cfg.Servers) > 0 {
		if sd, err := dns.ClientConfigFromFile(systemdResolvConfPath); err == nil {
			out = sd.Servers
		}
	}
	return out
}
