//go:build integration

package test

import (
	"os"
	"testing"
	"time"

	"github.com/minik-dev/minik/internal/procstatus"
)

// idleSettle is how long a fresh server runs before its RSS is read: long
// enough for every controller to have synced and the first lease renewals
// and namespace loops to have run.
const idleSettle = 30 * time.Second

// BenchmarkIntegrationServerIdleRSS reads the resident memory of an idle
// control plane (`minik server --disable-agent` on a fresh data dir) after
// idleSettle, for MINIK_BINARY and, beside it in the same run, for
// MINIK_BASELINE_BINARY if set (a build of earlier code).
func BenchmarkIntegrationServerIdleRSS(b *testing.B) {
	bins := map[string]string{"rss": binary(b)}
	if base := os.Getenv("MINIK_BASELINE_BINARY"); base != "" {
		bins["baseline-rss"] = base
	}
	for b.Loop() {
		for metric, bin := range bins {
			s := &serverProc{t: b, bin: bin, dataDir: b.TempDir(), port: freePort(b)}
			s.start()
			time.Sleep(idleSettle)
			status := procstatus.Of(s.cmd.Process.Pid)
			rss := procstatus.KiB(status, "VmRSS")
			anon, file := procstatus.KiB(status, "RssAnon"), procstatus.KiB(status, "RssFile")
			s.kill()
			if rss <= 0 {
				b.Fatalf("%s: no VmRSS", bin)
			}
			b.ReportMetric(float64(rss)/1024, metric+"-MiB")
			b.ReportMetric(float64(anon)/1024, metric+"-anon-MiB")
			// File pages are the binary's, shared and reclaimable.
			b.Logf("%s: idle server RSS %.1f MiB (anonymous %.1f, file %.1f)", bin,
				float64(rss)/1024, float64(anon)/1024, float64(file)/1024)
		}
	}
}
