package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/fuse"
)

// DefaultStatedumpDir is where a mount writes its statedump on SIGUSR1,
// as GlusterFS processes do (server.statedump-path's default).
const DefaultStatedumpDir = "/var/run/gluster"

// statedump is what SIGUSR1 writes: the volume graph with each node's
// state and figures, the kernel's inode and open-file tables of the mount,
// each replica set's inode table, eager locks and fds, each brick's
// pending calls, and the process's own figures (goroutines, memory, fds),
// so that a leak or a stuck brick shows without a debugger.
type statedump struct {
	Graph      fop.Status
	FuseInodes int64 // inodes the kernel knows of the mount
	FuseFiles  int64 // files it holds open
	// FuseBuffers are the buffers FUSE requests and replies travel in.
	FuseBuffers fuse.BufferStats
	Goroutines  int
	RSSKiB      int64
	HeapInuse   uint64
	Sys         uint64
	Fds         int
	Uptime      time.Duration
}

// takeStatedump reads the process's figures; graph is the volume's status
// and inodes, files the FUSE layer's tables.
func takeStatedump(graph fop.Status, inodes, files int64, started time.Time) statedump {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	d := statedump{Graph: graph, FuseInodes: inodes, FuseFiles: files, Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse, Sys: ms.Sys, Uptime: time.Since(started)}
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

// String renders the dump in GlusterFS's statedump shape: [sections] of
// key=value lines, one section per translator (xlator.TYPE.NAME).
func (d statedump) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[brickfs]\nuptime=%s\ngoroutines=%d\nrss_kib=%d\nheap_inuse=%d\nsys=%d\nfds=%d\n\n[fuse]\ninode_table.active=%d\nopen_files=%d\nbuffers.in_use=%d\nbuffers.warm=%d\nbuffers.mapped=%d\nbuffers.maps=%d\nbuffers.released=%d\n\n[graph]\n%s\n",
		d.Uptime.Round(time.Second), d.Goroutines, d.RSSKiB, d.HeapInuse, d.Sys, d.Fds, d.FuseInodes, d.FuseFiles,
		d.FuseBuffers.InUse, d.FuseBuffers.Warm, d.FuseBuffers.Mapped, d.FuseBuffers.Maps, d.FuseBuffers.Released, strings.TrimSpace(d.Graph.String()))
	d.Graph.Walk(func(s *fop.Status) {
		fmt.Fprintf(&b, "\n[xlator.%s.%s]\nup=%d\n", strings.ReplaceAll(s.Type, "/", "."), s.Name, b2i(s.Up))
		kv := func(k string, v any) { fmt.Fprintf(&b, "%s=%v\n", k, v) }
		switch {
		case s.Brick != nil:
			k := s.Brick
			kv("remote", fmt.Sprintf("%s:%d:%s", k.Host, k.Port, k.Path))
			kv("connected", b2i(k.Connected))
			if !k.Since.IsZero() {
				kv("connected_since", k.Since.Format(time.RFC3339Nano))
			}
			kv("ping_rtt", k.PingRTT)
			kv("inflight_fops", k.Inflight)
			kv("pending_calls", k.Pending)
			kv("reconnects", k.Reconnects)
			kv("disconnects", k.Disconnects)
			kv("calls", k.Calls)
			kv("call_errors", k.Errors)
			kv("bytes_sent", k.BytesSent)
			kv("bytes_received", k.BytesReceived)
			if k.LastError != "" {
				kv("last_error", k.LastError)
				kv("last_error_at", k.LastErrorAt.Format(time.RFC3339Nano))
			}
		case s.Replica != nil:
			r := s.Replica
			kv("bricks_up", fmt.Sprintf("%d/%d", r.BricksUp, r.Bricks))
			kv("quorum", r.Quorum)
			kv("quorum_met", b2i(r.QuorumMet))
			kv("heal_pending", r.HealPending)
			kv("split_brain", r.SplitBrain)
			kv("lagging", strings.Join(r.Lagging, ","))
			kv("cuts", r.Cuts)
			kv("inode_table.active", r.Inodes)
			kv("fds", r.Fds)
			kv("locks.eager_inodelks_held", r.EagerLocks)
			for _, f := range r.Failovers {
				for _, k := range sortedKeys(f.Events) {
					kv("failover."+f.Brick+"."+k, f.Events[k])
				}
				if f.StallCount > 0 {
					kv("failover."+f.Brick+".last_stall", f.LastStall)
				}
			}
		case s.Distribute != nil:
			kv("subvolumes_up", fmt.Sprintf("%d/%d", s.Distribute.SubvolumesUp, s.Distribute.Subvolumes))
			kv("inode_table.active", s.Distribute.Inodes)
			kv("migrations", s.Distribute.Migrations)
		case s.Shard != nil:
			kv("block_size", s.Shard.BlockSize)
			kv("inode_table.active", s.Shard.Inodes)
			kv("open_blocks", s.Shard.OpenBlocks)
			kv("remove_backlog", s.Shard.RemoveBacklog)
		case s.Fops != nil:
			kv("bytes_read", s.Fops.BytesRead)
			kv("bytes_written", s.Fops.BytesWritten)
			for _, f := range s.Fops.Fops {
				kv("fop."+f.Fop+".count", f.Count)
				kv("fop."+f.Fop+".latency_mean", f.Total/time.Duration(f.Count))
				for _, e := range sortedKeys(f.Errors) {
					kv("fop."+f.Fop+".errors."+e, f.Errors[e])
				}
			}
		}
	})
	return b.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
