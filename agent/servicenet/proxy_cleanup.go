package servicenet

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"

	"github.com/minik-dev/minik/network"
)

// Cleanup removes what agents made in the caller's network namespace: the
// service proxy's chains and their jumps, every other MINIK-* chain (the
// pods' masquerade chains) and the routes to other nodes' pods. Pods'
// own interfaces and the bridges stay. Run it with the agent stopped: a
// running one writes its rules again.
func Cleanup(ctx context.Context) error {
	ipt, err := network.NewIPTables(network.IPTablesConfig{})
	if err != nil {
		return err
	}
	proxier, err := network.NewProxier(network.ProxierConfig{Executor: ipt})
	if err != nil {
		return err
	}
	errs := []error{proxier.Cleanup(ctx)}
	if err := sweepChains(ctx); err != nil {
		errs = append(errs, err)
	}
	router, err := network.NewRouter(network.RouterConfig{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer router.Close()
	return errors.Join(append(errs, router.SyncRoutes(ctx, nil))...)
}

// sweepChains deletes the rules of built-in chains that jump to a MINIK-*
// chain, then every MINIK-* chain.
func sweepChains(ctx context.Context) error {
	ipt, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(5))
	if err != nil {
		return err
	}
	var errs []error
	builtin := map[string][]string{
		"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
		"filter": {"INPUT", "FORWARD", "OUTPUT"},
	}
	for _, table := range []string{"filter", "nat"} {
		for _, ch := range builtin[table] {
			rules, err := ipt.List(table, ch)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			// rules[0] is the policy; rule n is rules[n]. Delete from the
			// end so that the numbers stay valid.
			for n := len(rules) - 1; n >= 1; n-- {
				if !strings.Contains(rules[n], " -j MINIK-") {
					continue
				}
				out, err := exec.CommandContext(ctx, "iptables", "-w", "5", "-t", table, "-D", ch, strconv.Itoa(n)).CombinedOutput()
				if err != nil {
					errs = append(errs, fmt.Errorf("deleting %s %s rule %d: %v: %s", table, ch, n, err, out))
				}
			}
		}
		chains, err := ipt.ListChains(table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		chains = slices.DeleteFunc(chains, func(c string) bool { return !strings.HasPrefix(c, "MINIK-") })
		for _, c := range chains {
			errs = append(errs, ipt.ClearChain(table, c))
		}
		for _, c := range chains {
			errs = append(errs, ipt.DeleteChain(table, c))
		}
	}
	return errors.Join(errs...)
}
