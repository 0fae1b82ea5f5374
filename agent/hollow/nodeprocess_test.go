package hollow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minik-dev/minik/agent/hollow"
	"github.com/minik-dev/minik/internal/procstatus"
)

// nodeProcessEnv carries, as JSON, the configuration of hollow nodes that
// a re-executed test binary runs instead of its tests: the benchmark's
// node process, so that the server's CPU and memory are measured apart
// from the simulated nodes', as they would be on separate machines.
const nodeProcessEnv = "MINIK_HOLLOW_NODE_PROCESS"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(nodeProcessEnv); cfg != "" {
		os.Exit(runNodeProcess(cfg))
	}
	os.Exit(m.Run())
}

// runNodeProcess runs the hollow nodes cfg describes until SIGTERM.
func runNodeProcess(cfg string) int {
	var c hollow.Config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintf(os.Stderr, "hollow node process: %s: %v\n", nodeProcessEnv, err)
		return 2
	}
	c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := hollow.Run(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "hollow node process: %v\n", err)
		return 1
	}
	return 0
}

// nodeProcess is the benchmark's hollow nodes running in a child process.
type nodeProcess struct{ pid int }

// startNodeProcess runs cfg's hollow nodes in a child process (its own
// process group, killed if the benchmark dies) until the benchmark ends.
func startNodeProcess(b *testing.B, cfg hollow.Config) *nodeProcess {
	cfg.Logger = nil
	data, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), nodeProcessEnv+"="+string(data))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return startChild(b, cmd, "hollow node process")
}

// startChild starts cmd in a process group of its own, killed if the
// benchmark dies, and stops it with SIGTERM (SIGKILL after testTimeout)
// when the benchmark ends; b fails if it does not exit cleanly. Cleanups
// registered before the call run after it has stopped.
func startChild(b *testing.B, cmd *exec.Cmd, what string) *nodeProcess {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("%s: %v", what, err)
			}
		case <-time.After(testTimeout):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			b.Errorf("%s did not stop on SIGTERM", what)
		}
	})
	return &nodeProcess{pid: cmd.Process.Pid}
}

// cpu is the CPU time the process has used; none for a nil p.
func (p *nodeProcess) cpu(b *testing.B) time.Duration {
	if p == nil {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command, which is in parentheses and may hold
	// spaces: utime and stime are the 12th and 13th, in clock ticks.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		b.Fatalf("/proc/%d/stat: %q", p.pid, data)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// rssMiB is the process's resident memory (VmRSS or VmHWM), in MiB.
func (p *nodeProcess) rssMiB(field string) int64 {
	return procstatus.KiB(procstatus.Of(p.pid), field) / 1024
}
