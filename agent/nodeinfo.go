package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minik-dev/minik/api"
)

// maxPods is the pod capacity every node reports, as the kubelet's
// default.
const maxPods = 110

// nodeCapacity is what the node offers: its CPUs, memory and maxPods. It
// is also its allocatable amount (nothing is reserved).
func nodeCapacity() corev1.ResourceList {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:  *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods: *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	if mem := memTotal(); mem > 0 {
		capacity[corev1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
	}
	return capacity
}

// nodeReport describes this node: addresses, capacity and system info.
// runtimeVersion is e.g. "containerd://1.6.20".
func (a *agent) nodeReport(runtimeVersion func(context.Context) string) func(context.Context) (*api.NodeReport, error) {
	return func(ctx context.Context) (*api.NodeReport, error) {
		capacity := nodeCapacity()
		st := corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: a.cfg.NodeName}},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem:         goruntime.GOOS,
				Architecture:            goruntime.GOARCH,
				KernelVersion:           readTrimmed("/proc/sys/kernel/osrelease"),
				OSImage:                 osImage(),
				MachineID:               readTrimmed("/etc/machine-id"),
				BootID:                  readTrimmed("/proc/sys/kernel/random/boot_id"),
				ContainerRuntimeVersion: runtimeVersion(ctx),
				KubeletVersion:          a.cfg.Version,
			},
		}
		if a.cfg.NodeIP != "" {
			st.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP}}, st.Addresses...)
		}
		data, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		labels := map[string]string{
			"kubernetes.io/hostname":  a.cfg.NodeName,
			"kubernetes.io/os":        goruntime.GOOS,
			"kubernetes.io/arch":      goruntime.GOARCH,
			"beta.kubernetes.io/os":   goruntime.GOOS,
			"beta.kubernetes.io/arch": goruntime.GOARCH,
		}
		for k, v := range a.cfg.Labels {
			labels[k] = v
		}
		return &api.NodeReport{Status: data, Labels: labels}, nil
	}
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// memTotal returns MemTotal from /proc/meminfo in bytes, 0 if unknown.
func memTotal() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// osImage is PRETTY_NAME from /etc/os-release.
func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
