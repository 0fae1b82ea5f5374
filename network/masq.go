package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// masqChain masquerades traffic from the node's pods that leaves the
// cluster CIDR. The bridge plugin's own ipMasq would also masquerade traffic
// to other nodes' pods, hiding pod source addresses across nodes.
//
//	-A POSTROUTING -s <podCIDR> -m comment --comment ... -j MINIK-MASQ-<bridge>
//	-A MINIK-MASQ-<bridge> -d <clusterCIDR> -j RETURN
//	-A MINIK-MASQ-<bridge> -d 224.0.0.0/4 -j RETURN
//	-A MINIK-MASQ-<bridge> -j MASQUERADE
type masqChain struct {
	bridge      string
	podCIDR     netip.Prefix
	clusterCIDR netip.Prefix
}

func (m masqChain) name() string { return "MINIK-MASQ-" + m.bridge }

func (m masqChain) jump() []string {
	return []string{"-s", m.podCIDR.String(), "-m", "comment", "--comment",
		"minik: masquerade pods on " + m.bridge + " leaving the cluster", "-j", m.name()}
}

// restore returns the chain as iptables-restore lines.
func (m masqChain) restore() []byte {
	c := &chain{name: m.name()}
	c.add("-d %s -j RETURN", m.clusterCIDR)
	c.add("-d 224.0.0.0/4 -j RETURN")
	c.add("-j MASQUERADE")
	return []byte(":" + c.name + " - [0:0]\n" + strings.Join(c.rules, "\n") + "\n")
}

// ensure writes the chain in one transaction (pods keep being masqueraded
// throughout) and adds the jump to it.
func (m masqChain) ensure(ctx context.Context, x *IPTables) error {
	if err := x.Restore(ctx, "nat", m.restore()); err != nil {
		return fmt.Errorf("chain %q: %w", m.name(), err)
	}
	if err := x.EnsureRule(ctx, "nat", "POSTROUTING", m.jump()...); err != nil {
		return fmt.Errorf("jump to %q: %w", m.name(), err)
	}
	return nil
}

// remove deletes the jump and the chain; missing ones are fine.
func (m masqChain) remove(ipt *iptables.IPTables) error {
	if ok, err := ipt.ChainExists("nat", m.name()); err != nil || !ok {
		return err // without the chain there can be no jump to it
	}
	if err := ipt.DeleteIfExists("nat", "POSTROUTING", m.jump()...); err != nil {
		return fmt.Errorf("jump to %q: %w", m.name(), err)
	}
	if err := ipt.ClearAndDeleteChain("nat", m.name()); err != nil {
		return fmt.Errorf("chain %q: %w", m.name(), err)
	}
	return nil
}

// portmapJumps are the rules through which the portmap plugin's shared
// chains are reached. The plugin creates them on first use and never
// removes them.
var portmapJumps = []struct {
	chain string
	rule  []string
}{
	{"PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"}},
	{"OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"}},
	{"POSTROUTING", []string{"-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"}},
}

// removeIdlePortmap deletes portmap's shared chains if no pod on the node
// (of any CNI user) still has a port mapping.
func removeIdlePortmap(ipt *iptables.IPTables) error {
	if ok, err := ipt.ChainExists("nat", "CNI-HOSTPORT-DNAT"); err != nil || !ok {
		return err
	}
	rules, err := ipt.List("nat", "CNI-HOSTPORT-DNAT")
	if err != nil || len(rules) > 1 { // the first line is the chain itself
		return err
	}
	var errs []error
	for _, j := range portmapJumps {
		errs = append(errs, ipt.DeleteIfExists("nat", j.chain, j.rule...))
	}
	for _, c := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
		errs = append(errs, ipt.ClearAndDeleteChain("nat", c))
	}
	return errors.Join(errs...)
}
