package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Daemon is a containerd process supervised by the agent: restarted when it
// dies, stopped (with its process group) when the context given to
// StartContainerd ends.
type Daemon struct {
	dir    string
	binary string
	lg     *slog.Logger
	done   chan struct{}
	err    error // set before done is closed
}

// DaemonConfig configures StartContainerd.
type DaemonConfig struct {
	// Dir holds the socket, config and containerd's root and state.
	Dir string
	// Binary defaults to "containerd" on PATH.
	Binary string
	// ReadyTimeout bounds each wait for the socket to answer (default 20s).
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// daemon restart backoff bounds.
const (
	restartMin = 500 * time.Millisecond
	restartMax = 30 * time.Second
	stopGrace  = 10 * time.Second
)

// StartContainerd writes DIR/containerd/config.toml, starts containerd with
// its socket at DIR/containerd.sock and everything else under DIR, and
// returns once it answers. It keeps containerd running until ctx ends; then
// it stops it (SIGTERM to its process group, SIGKILL after 10s). Shims, and
// so containers, outlive containerd restarts.
func StartContainerd(ctx context.Context, cfg DaemonConfig) (*Daemon, error) {
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 20 * time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{dir: cfg.Dir, binary: cfg.Binary, lg: lg.With("component", "containerd"), done: make(chan struct{})}
	if err := d.writeConfig(); err != nil {
		return nil, err
	}
	cmd, err := d.start()
	if err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitReady(ctx, d.Address(), cfg.ReadyTimeout, exited); err != nil {
		stopProcess(cmd, exited)
		return nil, err
	}
	go d.supervise(ctx, cmd, exited, cfg.ReadyTimeout)
	return d, nil
}

// Address is the path of containerd's socket.
func (d *Daemon) Address() string { return filepath.Join(d.dir, "containerd.sock") }

// Wait blocks until the daemon has been stopped after its context ended.
func (d *Daemon) Wait() error {
	<-d.done
	return d.err
}

// Done is closed once the daemon has stopped.
func (d *Daemon) Done() <-chan struct{} { return d.done }

func (d *Daemon) configPath() string { return filepath.Join(d.dir, "containerd", "config.toml") }

func (d *Daemon) writeConfig() error {
	base := filepath.Join(d.dir, "containerd")
	if err := os.MkdirAll(base, 0o711); err != nil {
		return err
	}
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = -999
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
`, filepath.Join(base, "root"), filepath.Join(base, "state"), d.Address(), d.Address()+".ttrpc")
	return os.WriteFile(d.configPath(), []byte(conf), 0o600)
}

func (d *Daemon) start() (*exec.Cmd, error) {
	logf, err := os.OpenFile(filepath.Join(d.dir, "containerd", "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(d.binary, "--config", d.configPath())
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	d.lg.Info("containerd started", "pid", cmd.Process.Pid, "address", d.Address())
	return cmd, nil
}

// supervise restarts containerd when it exits, until ctx ends.
func (d *Daemon) supervise(ctx context.Context, cmd *exec.Cmd, exited chan error, readyTimeout time.Duration) {
	defer close(d.done)
	backoff := restartMin
	for {
		select {
		case <-ctx.Done():
			stopProcess(cmd, exited)
			d.lg.Info("containerd stopped")
			return
		case err := <-exited:
			d.lg.Warn("containerd exited, restarting", "err", err, "backoff", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, restartMax)
		next, err := d.start()
		if err != nil {
			d.lg.Error("containerd restart failed", "err", err)
			exited = make(chan error, 1)
			exited <- err
			continue
		}
		cmd, exited = next, make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, exited)
		if err := waitReady(ctx, d.Address(), readyTimeout, nil); err == nil {
			backoff = restartMin
		}
	}
}

// stopProcess stops cmd's process group: SIGTERM, then SIGKILL after stopGrace.
func stopProcess(cmd *exec.Cmd, exited <-chan error) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}

// waitReady polls the socket until containerd answers, the process exits,
// ctx ends or timeout passes.
func waitReady(ctx context.Context, address string, timeout time.Duration, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if _, err := os.Stat(address); err == nil {
			if last = ping(ctx, address); last == nil {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("containerd exited before ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("containerd at %q not ready: %w", address, errors.Join(ctx.Err(), last))
		case <-tick.C:
		}
	}
}

func ping(ctx context.Context, address string) error {
	c, err := client.New(address, client.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Version(ctx)
	return err
}
