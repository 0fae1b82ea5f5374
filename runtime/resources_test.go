package runtime

import (
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func u64(v uint64) *uint64 { return &v }

// setResources builds a new container's cgroup settings and a resize's
// from one mapping; a resize keeps what it leaves unset.
func TestSetResources(t *testing.T) {
	given := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: u64(102), Quota: i64(20000), Period: u64(cfsPeriod), Cpus: "0"},
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
	}
	tests := []struct {
		name string
		cur  *specs.LinuxResources
		r    Resources
		want *specs.LinuxResources
	}{
		{"none: the least shares, as the kubelet gives", nil, Resources{}, &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}}},
		{"memory only", nil, Resources{MemoryLimitBytes: 32 << 20},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}, Memory: &specs.LinuxMemory{Limit: i64(32 << 20)}}},
		{"request only", nil, Resources{CPURequestMilli: 250},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(256)}}},
		{"limit only gives shares too", nil, Resources{CPULimitMilli: 500, MemoryLimitBytes: 32 << 20},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(cfsPeriod)},
				Memory: &specs.LinuxMemory{Limit: i64(32 << 20)}}},
		{"smallest", nil, Resources{CPURequestMilli: 1, CPULimitMilli: 5},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2), Quota: i64(1000), Period: u64(cfsPeriod)}}},
		{"resize keeps unset", given, Resources{CPURequestMilli: 200},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(204), Quota: i64(20000), Period: u64(cfsPeriod), Cpus: "0"},
				Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}}},
		{"resize that drops the CPU request lowers the shares", given, Resources{MemoryLimitBytes: 64 << 20},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2), Quota: i64(20000), Period: u64(cfsPeriod), Cpus: "0"},
				Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}}},
		{"resize changes limits", given, Resources{CPURequestMilli: 100, CPULimitMilli: 300, MemoryLimitBytes: 96 << 20},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(102), Quota: i64(30000), Period: u64(cfsPeriod), Cpus: "0"},
				Memory: &specs.LinuxMemory{Limit: i64(96 << 20)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &oci.Spec{}
			if tc.cur != nil {
				s.Linux = &specs.Linux{Resources: copyResources(tc.cur)}
			}
			setResources(s, tc.r)
			if diff := cmp.Diff(tc.want, s.Linux.Resources); diff != "" {
				t.Errorf("setResources(%+v) (-want +got):\n%s", tc.r, diff)
			}
		})
	}
}

func copyResources(r *specs.LinuxResources) *specs.LinuxResources {
	c := *r
	if r.CPU != nil {
		cpu := *r.CPU
		c.CPU = &cpu
	}
	if r.Memory != nil {
		mem := *r.Memory
		c.Memory = &mem
	}
	return &c
}
