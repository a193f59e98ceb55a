package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/fuse"
)

// Prometheus metrics (-o metrics=ADDR). The figures live in the graph's
// nodes (fop.Status); a custom collector reads them at scrape time, so
// nothing is counted twice and the fop path pays nothing for a scrape.
// Every series carries the volume label.

var (
	labVol    = []string{"volume"}
	labFop    = []string{"volume", "fop"}
	labErr    = []string{"volume", "fop", "errno"}
	labBrick  = []string{"volume", "brick"}
	labSubvol = []string{"volume", "subvol"}
	labEvent  = []string{"volume", "subvol", "brick", "reason"}
	labLag    = []string{"volume", "subvol", "brick"}

	mInfo = prometheus.NewDesc("brickfs_info", "The mount: its volume, mount point and brickfs version (always 1).", []string{"volume", "mountpoint", "version"}, nil)

	mFopDuration = prometheus.NewDesc("brickfs_fop_duration_seconds", "Time the volume took to answer each fop the mount asked (at the top of the graph).", labFop, nil)
	mFopErrors   = prometheus.NewDesc("brickfs_fop_errors_total", "Fops that failed, by errno.", labErr, nil)
	mReadBytes   = prometheus.NewDesc("brickfs_read_bytes_total", "Bytes read from the volume.", labVol, nil)
	mWriteBytes  = prometheus.NewDesc("brickfs_written_bytes_total", "Bytes written to the volume.", labVol, nil)

	mBrickUp          = prometheus.NewDesc("brickfs_brick_up", "Whether the brick is connected (1) or not (0).", labBrick, nil)
	mBrickPing        = prometheus.NewDesc("brickfs_brick_ping_rtt_seconds", "Round trip of the last ping the brick answered.", labBrick, nil)
	mBrickInflight    = prometheus.NewDesc("brickfs_brick_inflight_calls", "Fops sent to the brick and not answered yet.", labBrick, nil)
	mBrickPending     = prometheus.NewDesc("brickfs_brick_pending_calls", "Every call waiting on the brick's connection (pings and handshakes included).", labBrick, nil)
	mBrickReconnects  = prometheus.NewDesc("brickfs_brick_reconnects_total", "Connections to the brick made after the first.", labBrick, nil)
	mBrickDisconnects = prometheus.NewDesc("brickfs_brick_disconnects_total", "Connections to the brick lost (dropped for a missed deadline included).", labBrick, nil)
	mBrickCalls       = prometheus.NewDesc("brickfs_brick_calls_total", "Fops sent to the brick.", labBrick, nil)
	mBrickErrors      = prometheus.NewDesc("brickfs_brick_call_errors_total", "Fops sent to the brick that failed.", labBrick, nil)
	mBrickSent        = prometheus.NewDesc("brickfs_brick_sent_bytes_total", "Fop arguments and payloads sent to the brick.", labBrick, nil)
	mBrickReceived    = prometheus.NewDesc("brickfs_brick_received_bytes_total", "Fop replies received from the brick.", labBrick, nil)
	mBrickSince       = prometheus.NewDesc("brickfs_brick_connected_timestamp_seconds", "Unix time the brick's connection was made (0 while down).", labBrick, nil)

	mReplBricksUp   = prometheus.NewDesc("brickfs_replica_bricks_up", "Bricks of the replica set that are connected.", labSubvol, nil)
	mReplBricks     = prometheus.NewDesc("brickfs_replica_bricks", "Bricks of the replica set.", labSubvol, nil)
	mReplQuorum     = prometheus.NewDesc("brickfs_replica_quorum_met", "Whether the replica set has client quorum (1) or not (0).", labSubvol, nil)
	mReplHeal       = prometheus.NewDesc("brickfs_replica_heal_pending", "Files and directories this client marked for heal and has not healed yet.", labSubvol, nil)
	mReplSplitBrain = prometheus.NewDesc("brickfs_replica_split_brain_total", "Times a file was found in split-brain.", labSubvol, nil)
	mReplLagging    = prometheus.NewDesc("brickfs_replica_lagging", "Whether the brick is cut from the replica set's changes for lagging (1) or not (0).", labLag, nil)
	mReplInodes     = prometheus.NewDesc("brickfs_replica_inodes", "The replica set's inode table size.", labSubvol, nil)
	mReplEagerLocks = prometheus.NewDesc("brickfs_replica_eager_locks", "Eager data locks the replica set holds.", labSubvol, nil)
	mReplFds        = prometheus.NewDesc("brickfs_replica_fds", "Fds open through the replica set.", labSubvol, nil)
	mFailovers      = prometheus.NewDesc("brickfs_failover_events_total", "Events that took a brick out of its replica set's I/O: down, cut (lagging), kick (fop timeout), read-moved.", labEvent, nil)
	mFailoverStall  = prometheus.NewDesc("brickfs_failover_stall_seconds", "How long the I/O waited on a brick at the failover events where it is known (down: its calls had waited unanswered when the connection broke; cut, kick, read-moved).", labLag, nil)
	mFailoverLast   = prometheus.NewDesc("brickfs_failover_last_stall_seconds", "The stall of the brick's last failover event where it is known.", labLag, nil)

	mDhtUp         = prometheus.NewDesc("brickfs_distribute_subvolumes_up", "Subvolumes of the distribute layer that are up.", labSubvol, nil)
	mDhtSubvols    = prometheus.NewDesc("brickfs_distribute_subvolumes", "Subvolumes of the distribute layer.", labSubvol, nil)
	mDhtMigrations = prometheus.NewDesc("brickfs_distribute_migrations", "Files followed through a rebalance's migration now.", labSubvol, nil)
	mShardBacklog  = prometheus.NewDesc("brickfs_shard_remove_backlog", "Removed files whose blocks are still to delete (.shard/.remove_me).", labSubvol, nil)
	mShardOpen     = prometheus.NewDesc("brickfs_shard_open_blocks", "Block fds the shard layer keeps open.", labSubvol, nil)

	mFuseBuffers        = prometheus.NewDesc("brickfs_fuse_buffer_bytes", "The buffers FUSE requests and replies travel in: held by requests in flight and waiting readers (in_use), idle with their pages kept (warm), address space mapped (mapped).", []string{"volume", "state"}, nil)
	mFuseBufferReleases = prometheus.NewDesc("brickfs_fuse_buffer_releases_total", "Times an idle FUSE buffer's pages went back to the kernel.", labVol, nil)
)

// graphCollector reads the graph's figures at scrape time.
type graphCollector struct {
	volume, mountpoint string
	graph              func() fop.Status
	buffers            func() fuse.BufferStats // nil: not reported
}

func (c *graphCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mInfo, mFopDuration, mFopErrors, mReadBytes, mWriteBytes, mBrickUp, mBrickPing, mBrickInflight, mBrickPending,
		mBrickReconnects, mBrickDisconnects, mBrickCalls, mBrickErrors, mBrickSent, mBrickReceived, mBrickSince, mReplBricksUp, mReplBricks,
		mReplQuorum, mReplHeal, mReplSplitBrain, mReplLagging, mReplInodes, mReplEagerLocks, mReplFds, mFailovers, mFailoverStall, mFailoverLast,
		mDhtUp, mDhtSubvols, mDhtMigrations, mShardBacklog, mShardOpen, mFuseBuffers, mFuseBufferReleases} {
		ch <- d
	}
}

func b01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *graphCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.volume
	gauge := func(d *prometheus.Desc, x float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, append([]string{v}, l...)...)
	}
	counter := func(d *prometheus.Desc, x float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, x, append([]string{v}, l...)...)
	}
	ch <- prometheus.MustNewConstMetric(mInfo, prometheus.GaugeValue, 1, v, c.mountpoint, Version)
	if c.buffers != nil {
		b := c.buffers()
		gauge(mFuseBuffers, float64(b.InUse), "in_use")
		gauge(mFuseBuffers, float64(b.Warm), "warm")
		gauge(mFuseBuffers, float64(b.Mapped), "mapped")
		counter(mFuseBufferReleases, float64(b.Released))
	}
	g := c.graph()
	g.Walk(func(s *fop.Status) {
		switch {
		case s.Fops != nil:
			fs := s.Fops
			counter(mReadBytes, float64(fs.BytesRead))
			counter(mWriteBytes, float64(fs.BytesWritten))
			for _, f := range fs.Fops {
				buckets := make(map[float64]uint64, len(fs.Buckets))
				var cum uint64
				for i, bound := range fs.Buckets {
					cum += f.Buckets[i]
					buckets[bound.Seconds()] = cum
				}
				for _, n := range f.Buckets[len(fs.Buckets):] {
					cum += n
				}
				ch <- prometheus.MustNewConstHistogram(mFopDuration, cum, f.Total.Seconds(), buckets, v, f.Fop)
				for en, n := range f.Errors {
					counter(mFopErrors, float64(n), f.Fop, en)
				}
			}
		case s.Brick != nil:
			b := s.Brick
			gauge(mBrickUp, b01(b.Connected), s.Name)
			gauge(mBrickPing, b.PingRTT.Seconds(), s.Name)
			gauge(mBrickInflight, float64(b.Inflight), s.Name)
			gauge(mBrickPending, float64(b.Pending), s.Name)
			counter(mBrickReconnects, float64(b.Reconnects), s.Name)
			counter(mBrickDisconnects, float64(b.Disconnects), s.Name)
			counter(mBrickCalls, float64(b.Calls), s.Name)
			counter(mBrickErrors, float64(b.Errors), s.Name)
			counter(mBrickSent, float64(b.BytesSent), s.Name)
			counter(mBrickReceived, float64(b.BytesReceived), s.Name)
			since := 0.0
			if !b.Since.IsZero() {
				since = float64(b.Since.UnixNano()) / 1e9
			}
			gauge(mBrickSince, since, s.Name)
		case s.Replica != nil:
			r := s.Replica
			gauge(mReplBricksUp, float64(r.BricksUp), s.Name)
			gauge(mReplBricks, float64(r.Bricks), s.Name)
			gauge(mReplQuorum, b01(r.QuorumMet), s.Name)
			gauge(mReplHeal, float64(r.HealPending), s.Name)
			counter(mReplSplitBrain, float64(r.SplitBrain), s.Name)
			gauge(mReplInodes, float64(r.Inodes), s.Name)
			gauge(mReplEagerLocks, float64(r.EagerLocks), s.Name)
			gauge(mReplFds, float64(r.Fds), s.Name)
			lagging := map[string]bool{}
			for _, l := range r.Lagging {
				lagging[l] = true
			}
			for _, f := range r.Failovers {
				gauge(mReplLagging, b01(lagging[f.Brick]), s.Name, f.Brick)
				for _, reason := range []string{"down", "cut", "kick", "read-moved"} {
					counter(mFailovers, float64(f.Events[reason]), s.Name, f.Brick, reason)
				}
				ch <- prometheus.MustNewConstSummary(mFailoverStall, f.StallCount, f.Stalls.Seconds(), nil, v, s.Name, f.Brick)
				gauge(mFailoverLast, f.LastStall.Seconds(), s.Name, f.Brick)
			}
		case s.Distribute != nil:
			d := s.Distribute
			gauge(mDhtUp, float64(d.SubvolumesUp), s.Name)
			gauge(mDhtSubvols, float64(d.Subvolumes), s.Name)
			gauge(mDhtMigrations, float64(d.Migrations), s.Name)
		case s.Shard != nil:
			gauge(mShardBacklog, float64(s.Shard.RemoveBacklog), s.Name)
			gauge(mShardOpen, float64(s.Shard.OpenBlocks), s.Name)
		}
	})
}

// metricsRegistry is the mount's registry: its graph, the Go runtime and
// the process.
func metricsRegistry(c *graphCollector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsServer serves /metrics.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
	addr string
}

// scrapeTimeout bounds a scrape: past it the answer is 503, and the
// collection left running ends on its own (it never waits on a brick).
// At most scrapesInFlight scrapes run at once (two Prometheus servers of
// an HA pair); another is answered 503 at once, so scrapes that got
// stuck cannot pile up.
const (
	scrapeTimeout   = 5 * time.Second
	scrapesInFlight = 2
)

// listenMetrics listens on addr (before the mount, so that an address in
// use fails the mount) and serves reg's /metrics until Close.
func listenMetrics(addr string, reg *prometheus.Registry, log *zap.Logger) (*metricsServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: cannot serve /metrics on %s: %v; pick a free address in -o metrics=HOST:PORT, or leave the option out", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Timeout: scrapeTimeout, MaxRequestsInFlight: scrapesInFlight, ErrorHandling: promhttp.ContinueOnError,
		ErrorLog: zap.NewStdLog(log.With(zap.String("what", "metrics")))}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "brickfs serves /metrics here", http.StatusNotFound)
	})
	return serveHTTP(l, mux, 2*scrapeTimeout, "metrics: /metrics stopped", log), nil
}

// serveHTTP serves mux on l until Close; writeTimeout 0 is none. stopped
// is logged if serving ends other than by Close.
func serveHTTP(l net.Listener, mux *http.ServeMux, writeTimeout time.Duration, stopped string, log *zap.Logger) *metricsServer {
	s := &metricsServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: writeTimeout}, done: make(chan struct{}), addr: l.Addr().String()}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(stopped, zap.String("addr", s.addr), zap.Error(err))
		}
	}()
	return s
}

// listenPprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
// addr until Close: `go tool pprof http://ADDR/debug/pprof/profile?seconds=30`
// for a CPU profile of a live mount, /debug/pprof/heap for its memory.
// There is no write timeout: a CPU profile streams for as long as it was
// asked to run.
func listenPprof(addr string, log *zap.Logger) (*metricsServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: cannot serve /debug/pprof/ on %s: %v; pick a free address in -o pprof=HOST:PORT, or leave the option out", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "brickfs serves Go's profiles under /debug/pprof/ here", http.StatusNotFound)
	})
	return serveHTTP(l, mux, 0, "pprof: /debug/pprof/ stopped", log), nil
}

// Close stops serving, waiting a moment for scrapes under way.
func (s *metricsServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
