package hollow

import "net/netip"

// ipPool hands out the pod addresses of a node's podCIDR: all but the
// network address, the gateway (the first host, used as the node's IP)
// and the broadcast address.
type ipPool struct {
	prefix netip.Prefix
	first  netip.Addr
	used   map[netip.Addr]bool
	next   netip.Addr // where the next search starts
}

func newIPPool(p netip.Prefix) *ipPool {
	p = p.Masked()
	first := p.Addr().Next().Next()
	return &ipPool{prefix: p, first: first, used: map[netip.Addr]bool{}, next: first}
}

// usable reports whether ip is a pod address of the pool.
func (p *ipPool) usable(ip netip.Addr) bool {
	return p.prefix.Contains(ip) && ip.Compare(p.first) >= 0 && p.prefix.Contains(ip.Next())
}

// allocate returns a free address, or the zero Addr when none is left.
// The search goes round from where the last one ended, so that addresses
// are not reused at once.
func (p *ipPool) allocate() netip.Addr {
	ip := p.next
	wrapped := false
	for {
		if !p.usable(ip) {
			if wrapped {
				return netip.Addr{}
			}
			ip, wrapped = p.first, true
		}
		if !p.used[ip] {
			p.used[ip] = true
			p.next = ip.Next()
			return ip
		}
		ip = ip.Next()
	}
}

// reserve marks ip used; it reports false if ip is taken or not the
// pool's.
func (p *ipPool) reserve(ip netip.Addr) bool {
	if !p.usable(ip) || p.used[ip] {
		return false
	}
	p.used[ip] = true
	return true
}

func (p *ipPool) release(ip netip.Addr) { delete(p.used, ip) }
