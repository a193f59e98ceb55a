package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultStatedumpDir is where a mount writes its statedump on SIGUSR1,
// as GlusterFS processes do (server.statedump-path's default).
const DefaultStatedumpDir = "/var/run/gluster"

// statedump is what SIGUSR1 writes: the volume graph with each node's
// state, and the process's own figures (goroutines, memory, fds), so that
// a leak or a stuck brick shows without a debugger.
type statedump struct {
	Graph      string
	Goroutines int
	RSSKiB     int64
	HeapInuse  uint64
	Sys        uint64
	Fds        int
	Uptime     time.Duration
}

// takeStatedump reads the process's figures; graph is the volume's status.
func takeStatedump(graph string, started time.Time) statedump {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	d := statedump{Graph: graph, Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse, Sys: ms.Sys, Uptime: time.Since(started)}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		d.Fds = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				fmt.Sscanf(strings.TrimSpace(v), "%d", &d.RSSKiB)
			}
		}
	}
	return d
}

func (d statedump) String() string {
	return fmt.Sprintf("[brickfs]\nuptime=%s\ngoroutines=%d\nrss_kib=%d\nheap_inuse=%d\nsys=%d\nfds=%d\n\n[graph]\n%s\n",
		d.Uptime.Round(time.Second), d.Goroutines, d.RSSKiB, d.HeapInuse, d.Sys, d.Fds, strings.TrimSpace(d.Graph))
}

// writeStatedump writes a statedump to dir as brickfs.PID.dump.UNIXTIME
// (GlusterFS names its own NAME.PID.dump.UNIXTIME) and logs where.
func writeStatedump(dir string, d statedump, log *zap.Logger) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Error("cannot write a statedump: make its directory or set statedump-dir", zap.String("dir", dir), zap.Error(err))
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("brickfs.%d.dump.%d", os.Getpid(), time.Now().Unix()))
	if err := os.WriteFile(path, []byte(d.String()), 0o600); err != nil {
		log.Error("cannot write a statedump", zap.String("path", path), zap.Error(err))
		return
	}
	log.Info("statedump written", zap.String("path", path), zap.Int("goroutines", d.Goroutines),
		zap.Int64("rss_kib", d.RSSKiB), zap.Int("fds", d.Fds))
}
