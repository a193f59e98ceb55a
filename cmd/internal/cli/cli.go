// Package cli is the command line of brickfs and mount.brickfs: it turns
// arguments into a mount, builds the logger, daemonizes, and reports every
// failure as one line that says what to do, with a non-zero exit.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/failover"
	"github.com/brickfs/brickfs/fuse"
)

// Exit codes, as mount(8) helpers use them.
const (
	ExitOK      = 0
	ExitUsage   = 1
	ExitFail    = 1
	ExitRefused = 2 // a mount point mount.glusterfs refuses: /, /tmp, a brick
	ExitMounted = 32
)

// Run is the entry point of every brickfs binary. What it does follows the
// name it was called by (argv[0]), so that one binary can be installed
// under each: mount.glusterfs and mount.brickfs (mount(8) helpers),
// brickfs-fstab-generator (a systemd generator), brickfs (the command).
func Run(argv []string, stderr io.Writer) int {
	if isDaemonChild() {
		return daemonChild(stderr)
	}
	if isWatcher() {
		return watcherMain()
	}
	name := "brickfs"
	if len(argv) > 0 {
		name = filepath.Base(argv[0])
		argv = argv[1:]
	}
	switch {
	case strings.HasPrefix(name, "mount."):
		return HelperMain(name, argv, stderr)
	case name == generatorName:
		return GeneratorMain(argv, stderr)
	}
	return Main(argv, stderr)
}

// The volume graph is what the filesystem drives.
var _ fuse.Volume = (*failover.Volume)(nil)

// Version is set at build time.
var Version = "dev"

const usage = `brickfs: a GlusterFS client for VM volume files

Usage:
  brickfs mount [-f] [-o OPTIONS] HOST[,HOST...]:/VOLUME[/DIR] MOUNTPOINT
  brickfs unmount MOUNTPOINT
  brickfs status [MOUNTPOINT] [--json]       the mount's graph, bricks, replica sets, fops
  brickfs clone [--force] [--quiet] SRC DST   instant clone on XFS reflink bricks (brickfs clone --help)
  brickfs install [--glusterfs|--revert|--uninstall|--status] [--root DIR]
  brickfs version
  mount -t brickfs HOST[,HOST...]:/VOLUME[/DIR] MOUNTPOINT [-o OPTIONS]
  mount -t glusterfs ...        once brickfs install --glusterfs made brickfs the helper

/DIR mounts that directory of the volume as the root (as subdir-mount=DIR).

brickfs mount returns once the filesystem is live and keeps serving it in
the background (-f: in the foreground).

Options (-o, comma-separated):
  backup-volfile-servers=H2:H3  more glusterds to fetch the volfile from
  log-file=PATH                 default /var/log/brickfs/<mountpoint>.log
  log-level=LEVEL               debug, info, warning, error (default info)
  attribute-timeout=S           kernel attribute cache, seconds (default 1)
  entry-timeout=S               kernel name cache, seconds (default 1)
  negative-timeout=S            cache of failed lookups, seconds (default 0)
  ping-interval=S               how often bricks are pinged (default 0.5 replicated, 2 single)
  ping-timeout=S                silence that drops a brick with calls waiting
                                (default 1.5 replicated; single brick: the volfile's, 42)
  fop-timeout=S                 a replica brick that has not finished a fop by then is
                                dropped and marked for heal (default 10)
  lag-timeout=S                 least wait, once a quorum of a replica set took a change,
                                for a brick still working on it before it is left behind
                                and marked for heal (default 0.5; 0: wait up to fop-timeout)
  post-op-delay=S               idle time before an eager lock is released (default 1)
  memory-limit=SIZE             the daemon's soft memory limit: past it the garbage
                                collector works harder (default 96M; 0: none;
                                GOMEMLIMIT in the environment wins)
  procs=N                       threads that run the daemon's code at once (Go's GOMAXPROCS;
                                default 2, at most the CPUs; GOMAXPROCS in the environment wins)
  max-request=SIZE              largest READ/WRITE the kernel sends, 128K to 1M (default 1M);
                                smaller takes less memory and slows large sequential I/O
  volfile-fetch-timeout=S       per volfile server (default 5)
  volfile-cache-dir=DIR         last good volfiles (default /var/lib/brickfs/volfiles)
  statedump-dir=DIR             where SIGUSR1 writes a statedump (default /var/run/gluster)
  metrics=HOST:PORT             serve Prometheus metrics on http://HOST:PORT/metrics
  pprof=HOST:PORT               serve Go's profiles on http://HOST:PORT/debug/pprof/ (keep it
                                on loopback: go tool pprof http://HOST:PORT/debug/pprof/profile)
  server-port=PORT              glusterd port (default 24007)
  subdir-mount=DIR              mount that directory of the volume
  copy-offload=POLICY           copy_file_range (brickfs clone, qemu-img convert -C): auto (default:
                                by the bricks; once they turn out to copy rather than reflink, 8 MiB
                                calls around the source's holes), bricks (as asked), kernel (never)
  copy-chunk=SIZE               most bytes one copy_file_range sends to the bricks (default 64M)
  ro, rw, [no]suid, [no]dev, [no]exec, [no]atime, [no]diratime, [no]relatime,
  [no]strictatime, [no]lazytime     mount flags, as mount(8) means them
  auto_unmount                  unmount if the daemon dies
  acl                           permission checks by the bricks' POSIX ACLs
  _netdev, nofail, noauto, x-*  for mount(8) and systemd
The native client's other options (direct-io-mode, lru-limit, ...) are
accepted and have no effect; brickfs says so once.
`

// Main runs the brickfs command and returns its exit code.
func Main(args []string, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "mount":
		m, fg, err := parseMountArgs(args[1:])
		if err != nil {
			fmt.Fprintf(stderr, "brickfs: %v\n", err)
			return ExitUsage
		}
		return runMount("brickfs", m, fg, stderr)
	case "install":
		return installMain(args[1:], stderr)
	case "status":
		return statusMain(args[1:], os.Stdout, stderr)
	case "clone":
		return cloneMain(args[1:], os.Stdout, stderr)
	case "unmount", "umount":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "brickfs: usage: brickfs unmount MOUNTPOINT")
			return ExitUsage
		}
		if err := Unmount(args[1]); err != nil {
			fmt.Fprintf(stderr, "brickfs: %v\n", err)
			return ExitFail
		}
		return ExitOK
	case "version", "--version", "-V":
		fmt.Fprintf(os.Stdout, "brickfs %s\n", Version)
		return ExitOK
	case "help", "--help", "-h":
		fmt.Fprint(os.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "brickfs: unknown command %q; run `brickfs help`\n", args[0])
	return ExitUsage
}

// parseMountArgs reads `[-f] [-o OPTS] SPEC MNT` with flags anywhere.
func parseMountArgs(args []string) (Mount, bool, error) {
	m := defaults()
	fg := false
	var pos []string
	var opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" || a == "--foreground":
			fg = true
		case a == "-o":
			if i+1 >= len(args) {
				return m, fg, errors.New("-o needs a value, e.g. -o log-level=debug")
			}
			i++
			opts = append(opts, args[i])
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return m, fg, fmt.Errorf("unknown flag %q; run `brickfs help`", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return m, fg, errors.New("usage: brickfs mount [-f] [-o OPTIONS] HOST[,HOST...]:/VOLUME[/DIR] MOUNTPOINT")
	}
	m.Spec, m.MountPoint = pos[0], pos[1]
	for _, o := range opts {
		if err := m.parseOptions(o); err != nil {
			return m, fg, err
		}
	}
	return m, fg, m.finish()
}

// runMount mounts m; prog names the command in what it prints.
func runMount(prog string, m Mount, foreground bool, stderr io.Writer) int {
	if err := checkMountPoint(m.MountPoint); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		var am *AlreadyMountedError
		var re *RefusedError
		switch {
		case errors.As(err, &am):
			return ExitMounted
		case errors.As(err, &re):
			return ExitRefused
		}
		return ExitFail
	}
	spec, err := volfile.ParseSpec(m.Spec, m.Backup)
	if err == nil {
		_, err = subdirOf(m, spec)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	for _, w := range m.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", prog, w)
	}
	if foreground {
		return serve(m, nil, stderr)
	}
	return daemonize(prog, m, stderr)
}

func newLogger(m Mount, foreground bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(m.LogLevel)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Encoding = "console"
	path := m.LogFile
	if path == "" {
		path = defaultLogFile(m.MountPoint)
	}
	if path == "-" || path == "stderr" {
		cfg.OutputPaths = []string{"stderr"}
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create the log directory: %v; pass log-file=PATH", err)
		}
		cfg.OutputPaths = []string{path}
		if foreground {
			cfg.OutputPaths = append(cfg.OutputPaths, "stderr")
		}
	}
	cfg.ErrorOutputPaths = cfg.OutputPaths
	return cfg.Build()
}

// Where this host's GlusterFS TLS setup is, when not where GlusterFS keeps
// it: for tests, which cannot touch the host's files, and for hosts whose
// GlusterFS was built with another OpenSSL directory.
const (
	// envSecureAccess names the file whose existence turns management
	// TLS on (default tlsconf.SecureAccessFile).
	envSecureAccess = "BRICKFS_SECURE_ACCESS"
	// envSSLDir names the directory of glusterfs.pem, glusterfs.key and
	// glusterfs.ca (default tlsconf.DefaultDir).
	envSSLDir = "BRICKFS_SSL_DIR"
)

// hostTLS returns this host's management TLS (nil when it is off) and the
// directory of its default TLS files, as GlusterFS's client decides them.
func hostTLS(getenv func(string) string) (*tlsconf.Config, string, error) {
	secure := getenv(envSecureAccess)
	if secure == "" {
		secure = tlsconf.SecureAccessFile
	}
	dir := getenv(envSSLDir)
	if dir == "" {
		dir = tlsconf.DefaultDir()
	}
	mgmt, err := tlsconf.Management(secure, dir)
	return mgmt, dir, err
}

// loadVolfile fetches the volfile, falling back to the last good copy;
// note is set when the copy was used, for the user.
func loadVolfile(ctx context.Context, m Mount, spec volfile.Spec, mgmt *tlsconf.Config, log *zap.Logger) (g *volfile.Graph, raw []byte, used *volfileInUse, note string, err error) {
	servers := volfileServers(m, spec)
	cache := volfile.Cache{Dir: m.VolfileCacheDir}
	got, err := volfile.Fetch(ctx, servers, spec.Volume, volfile.FetchOptions{Timeout: m.FetchTimeout, TLS: mgmt})
	var b []byte
	switch {
	case err == nil:
		b = got.Volfile
		used = &volfileInUse{Source: "server", From: got.From.String(), At: time.Now()}
		log.Info("volfile fetched", zap.String("volume", spec.Volume), zap.Stringer("remote", got.From), zap.Int("bytes", len(b)))
		if _, perr := volfile.Parse(b); perr == nil {
			if serr := cache.Save(spec.Volume, servers, b); serr != nil {
				log.Warn("cannot keep a copy of the volfile", zap.Error(serr))
			}
		}
	case errors.Is(err, volfile.ErrNoVolume):
		return nil, nil, nil, "", err
	default:
		cached, at, cerr := cache.Load(spec.Volume, servers)
		if cerr != nil {
			return nil, nil, nil, "", err
		}
		log.Warn("no volfile server answered; mounting from the last good volfile",
			zap.String("volume", spec.Volume), zap.Time("saved", at), zap.Error(err))
		note = fmt.Sprintf("no volfile server answered (%v); mounted %s from the last good volfile, saved %s in %s; changes to the volume apply once a server answers",
			err, spec.Volume, at.Format(time.RFC3339), m.VolfileCacheDir)
		b = cached
		used = &volfileInUse{Source: "cache", From: m.VolfileCacheDir, At: at}
	}
	used.Text = redactVolfile(string(b))
	g, err = volfile.Parse(b)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("the volfile of %s is not valid: %w", spec.Volume, err)
	}
	if err := failover.Check(g); err != nil {
		return nil, nil, nil, "", err
	}
	return g, b, used, note, nil
}

// volfileServers lists where the volfile is fetched from: the spec's
// hosts then backup-volfile-servers, on the server-port option's port.
func volfileServers(m Mount, spec volfile.Spec) []volfile.Server {
	servers := append([]volfile.Server(nil), spec.Servers...)
	if m.ServerPort != 0 {
		for i := range servers {
			if servers[i].Port == volfile.DefaultPort {
				servers[i].Port = m.ServerPort
			}
		}
	}
	return servers
}

// subdirOf is the directory of the volume to mount: from the spec
// (HOST:/VOL/SUB) or the subdir-mount option; both must agree.
func subdirOf(m Mount, spec volfile.Spec) (string, error) {
	switch {
	case m.Subdir == "":
		return spec.Subdir, nil
	case spec.Subdir == "" || spec.Subdir == m.Subdir:
		return m.Subdir, nil
	}
	return "", fmt.Errorf("the spec names the directory %s and subdir-mount names %s; give one of them", spec.Subdir, m.Subdir)
}

// serve mounts and serves until unmounted. ready, when set, is told the
// outcome of the mount and what the user should hear of it (the
// daemonizing parent waits on it); without it both go to stderr.
func serve(m Mount, ready func(notes []string, err error), stderr io.Writer) int {
	fg := ready == nil
	if fg {
		ready = func(notes []string, err error) {
			for _, n := range notes {
				fmt.Fprintf(stderr, "brickfs: warning: %s\n", n)
			}
			if err != nil {
				fmt.Fprintf(stderr, "brickfs: %v\n", err)
			}
		}
	}
	memLimit := setMemoryLimit(m.MemoryLimit)
	procs := setProcs(m.Procs)
	var notes []string // what the user should hear, also if the mount fails
	report := func(err error) int {
		ready(notes, err)
		return ExitFail
	}
	log, err := newLogger(m, fg)
	if err != nil {
		return report(fmt.Errorf("log: %w", err))
	}
	defer func() { _ = log.Sync() }()
	log.Info("memory limit", zap.String("limit", memLimit))
	log.Info("threads running Go code", zap.String("procs", procs))
	spec, err := volfile.ParseSpec(m.Spec, m.Backup)
	if err != nil {
		return report(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subdir, err := subdirOf(m, spec)
	if err != nil {
		return report(err)
	}
	mgmt, tlsDir, err := hostTLS(os.Getenv)
	if err != nil {
		log.Error("mount failed", zap.Error(err))
		return report(err)
	}
	if mgmt != nil {
		log.Info("management TLS is on", zap.String("cert", mgmt.Files().Cert), zap.String("ca", mgmt.Files().CA), zap.Int("depth", mgmt.Files().Depth))
	}
	g, raw, used, note, err := loadVolfile(ctx, m, spec, mgmt, log)
	if note != "" {
		notes = append(notes, note)
	}
	if err != nil {
		log.Error("mount failed", zap.Error(err))
		return report(err)
	}
	vol, err := failover.Open(ctx, g, failover.Options{
		PingInterval: m.PingInterval, PingTimeout: m.PingTimeout, VolfileKey: "/" + spec.Volume,
		FopTimeout: m.FopTimeout, LagTimeout: m.LagTimeout, PostOpDelay: m.PostOpDelay, Subdir: subdir,
		MgmtTLS: mgmt, TLSDir: tlsDir,
	}, log)
	if err != nil {
		log.Error("mount failed", zap.Error(err))
		var te *tlsconf.Error
		if errors.As(err, &te) || errors.Is(err, brick.ErrAuth) {
			return report(err) // it says what to do already
		}
		return report(fmt.Errorf("%w; check `gluster volume status %s`", err, spec.Volume))
	}
	defer vol.Close()
	fsys := fuse.New(vol, fuse.Options{
		AttrTimeout: m.AttrTimeout, EntryTimeout: m.EntryTimeout, NegativeTimeout: m.NegativeTimeout,
		VolumeID: vol.ID, Log: log, CopyOffload: m.CopyOffload, CopyChunk: m.CopyChunk, MaxWrite: m.MaxRequest,
	})
	state := &mountState{m: m, volume: spec.Volume, started: time.Now(), graph: vol.Status}
	state.volfile.Store(used)
	if m.Metrics != "" {
		reg := metricsRegistry(&graphCollector{volume: spec.Volume, mountpoint: m.MountPoint, graph: vol.Status, buffers: fsys.Buffers})
		ms, err := listenMetrics(m.Metrics, reg, log)
		if err != nil {
			log.Error("mount failed", zap.Error(err))
			return report(err)
		}
		defer ms.Close()
		state.metrics = ms.addr
		log.Info("serving metrics", zap.String("addr", ms.addr))
	}
	if m.Pprof != "" {
		ps, err := listenPprof(m.Pprof, log)
		if err != nil {
			log.Error("mount failed", zap.Error(err))
			return report(err)
		}
		defer ps.Close()
		log.Info("serving Go's profiles", zap.String("addr", "http://"+ps.addr+"/debug/pprof/"))
		if host, _, _ := net.SplitHostPort(ps.addr); !net.ParseIP(host).IsLoopback() {
			log.Warn("Go's profiles are served on an address other hosts can reach, without authentication: they show the daemon's internals; give pprof=127.0.0.1:PORT", zap.String("addr", ps.addr))
		}
		state.pprof = ps.addr
	}

	state.tables = fsys.Tables
	state.buffers = fsys.Buffers
	var w *watcher
	if m.AutoUnmount {
		if w, err = startWatcher(m.MountPoint); err != nil {
			return report(fmt.Errorf("auto_unmount: %v", err))
		}
		defer w.done()
	}
	mc := fuse.MountConfig{FsName: m.Spec, Type: m.FsType, Flags: m.MountFlags, ACL: m.ACL}
	srv, err := fsys.Mount(m.MountPoint, mc)
	if err != nil {
		log.Error("mount failed", zap.Error(err))
		return report(mountError(m.MountPoint, err))
	}
	if _, err := os.Stat(m.MountPoint); err != nil {
		_ = srv.Unmount()
		return report(fmt.Errorf("the mount at %s is not answering: %v", m.MountPoint, err))
	}
	if w != nil {
		w.mounted(m.MountPoint)
	}
	// The status socket comes before the record: a recorded mount
	// answers `brickfs status`.
	closeStatus := func() {}
	if ss, err := serveStatus(statusSocket(os.Getpid()), state.snapshot, log); err != nil {
		log.Warn("brickfs status will not answer for this mount", zap.Error(err))
	} else {
		closeStatus = sync.OnceFunc(ss.Close)
		defer closeStatus()
	}
	unrecord, err := recordMount(m.MountPoint)
	if err != nil {
		log.Warn("cannot record the mount; brickfs unmount will not know it as brickfs's", zap.Error(err))
	}
	unrecord = sync.OnceFunc(unrecord)
	defer unrecord()
	log.Info("mounted", zap.String("spec", m.Spec), zap.String("mountpoint", m.MountPoint), zap.String("volume", spec.Volume),
		zap.String("type", "fuse."+m.FsType))
	ready(notes, nil)
	// Follow the volfile: a brick moved by replace-brick, or a quorum
	// changed by `gluster volume set`, takes effect without a remount.
	fctx, stopFollow := context.WithCancel(context.Background())
	followDone := make(chan struct{})
	defer func() { stopFollow(); <-followDone }() // before vol.Close
	servers := volfileServers(m, spec)
	cache := volfile.Cache{Dir: m.VolfileCacheDir}
	go func() {
		defer close(followDone)
		volfile.Watch(fctx, servers, spec.Volume, raw, volfile.WatchOptions{TLS: mgmt}, log, func(b []byte) ([]string, error) {
			g, err := volfile.Parse(b)
			if err != nil {
				return nil, err
			}
			changes, err := vol.Reconfigure(g)
			if err != nil {
				return nil, err
			}
			if err := cache.Save(spec.Volume, servers, b); err != nil {
				log.Warn("cannot keep a copy of the volfile", zap.Error(err))
			}
			state.volfile.Store(&volfileInUse{Source: "server", From: "a change glusterd announced (" + serverList(servers) + ")", At: time.Now(), Text: redactVolfile(string(b))})
			return changes, nil
		})
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	started := state.started
	var dumping atomic.Bool // one statedump at a time
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				continue
			}
			if s == syscall.SIGUSR1 {
				// Off this goroutine: a statedump must never hold up
				// the SIGTERM that follows it.
				if !dumping.CompareAndSwap(false, true) {
					log.Warn("SIGUSR1 ignored: a statedump is already being written")
					continue
				}
				go func() {
					defer dumping.Store(false)
					inodes, files := fsys.Tables()
					d := takeStatedump(vol.Status(), inodes, files, started)
					d.FuseBuffers = fsys.Buffers()
					writeStatedump(m.StatedumpDir, d, log)
				}()
				continue
			}
			log.Info("signal received, unmounting", zap.Stringer("signal", s))
			if err := srv.Unmount(); err != nil {
				log.Warn("unmount failed; the mount point is busy", zap.Error(err))
			}
		}
	}()
	waited := make(chan struct{})
	go func() { srv.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-srv.Gone():
		// The kernel ended the connection: nobody can get an answer any
		// more. Requests still waiting on a brick (a release, a delayed
		// post-op) get a moment to finish, then the bricks are closed
		// under them; what they leave undone stays marked for heal.
		select {
		case <-waited:
		case <-time.After(inFlightGrace):
			log.Warn("unmounted with requests still waiting on bricks; closing the bricks under them")
		}
	}
	log.Info("unmounted", zap.String("mountpoint", m.MountPoint))
	// The status socket and the record go now: the closing below may end
	// in os.Exit, which runs no deferred call.
	closeStatus()
	unrecord()
	// Nothing may keep an unmounted daemon alive: the deferred closing of
	// the follower, the bricks and the heal worker is bounded too (the
	// timer is never stopped: the process ends when serve returns).
	time.AfterFunc(closeLimit, func() {
		log.Error("closing the bricks took too long after the unmount; exiting")
		_ = log.Sync()
		os.Exit(ExitOK)
	})
	return ExitOK
}

// After an unmount: how long requests still in flight may finish, and how
// long closing the bricks may take, before the daemon exits anyway.
const (
	inFlightGrace = 2 * time.Second
	closeLimit    = 10 * time.Second
)

// Unmount unmounts a brickfs mount point.
func Unmount(mnt string) error {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return err
	}
	src, typ, ok := mountedAt(abs)
	if !ok {
		return fmt.Errorf("%s is not mounted", abs)
	}
	if typ != "fuse.brickfs" && (typ != "fuse.glusterfs" || !servedByBrickfs(abs)) {
		return fmt.Errorf("%s is a %s mount of %s, not brickfs; use umount", abs, typ, src)
	}
	if err := syscall.Unmount(abs, 0); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%s is busy: a process still uses it (see `fuser -vm %s`); stop it, or detach with `umount -l %s`", abs, abs, abs)
		}
		if out, ferr := exec.Command("fusermount3", "-u", abs).CombinedOutput(); ferr != nil {
			return fmt.Errorf("cannot unmount %s: %v (%s)", abs, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// helperDefaults is the helper's name and defaults for the name it was
// called by: as mount.glusterfs, the native client's type and mount flags.
func helperDefaults(name string) (string, Mount) {
	m := defaults()
	if strings.HasPrefix(name, "mount.glusterfs") {
		m.FsType, m.MountFlags = "glusterfs", glusterfsMountFlags
		return "mount.glusterfs", m
	}
	return "mount.brickfs", m
}

// HelperMain runs a mount helper as mount(8) calls it:
//
//	mount.brickfs SPEC DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
//
// Called as mount.glusterfs it stands in for GlusterFS's own helper: the
// mount shows type fuse.glusterfs, and messages, usage and -V name
// mount.glusterfs. -s (sloppy) and -n (no mtab) are accepted; -v logs
// more; -f (fake) checks the arguments and mounts nothing; -V prints the
// version; -h the usage; -N is refused (brickfs does not enter mount
// namespaces); -t must name the helper's type (TYPE, TYPE.SUBTYPE or
// fuse.TYPE).
func HelperMain(name string, args []string, stderr io.Writer) int {
	prog, m := helperDefaults(name)
	fstype := m.FsType
	usage := fmt.Sprintf("usage: %s HOST[,HOST...]:/VOLUME[/DIR] DIR [-sfnvV] [-o OPTIONS]", prog)
	var pos, opts []string
	fake, verbose := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "%s: %s needs a value\n", prog, a)
				return ExitUsage
			}
			i++
			switch a {
			case "-o":
				opts = append(opts, args[i])
			case "-t":
				if t := args[i]; t != fstype && t != "fuse."+fstype && !strings.HasPrefix(t, fstype+".") {
					fmt.Fprintf(stderr, "%s: type %q is not %s; this helper mounts only %s volumes\n", prog, t, fstype, fstype)
					return ExitUsage
				}
			case "-N":
				fmt.Fprintf(stderr, "%s: -N (mount namespace) is not supported; run mount inside the namespace instead\n", prog)
				return ExitUsage
			}
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			opts = append(opts, a[2:])
		case a == "-V" || a == "--version":
			fmt.Fprintf(os.Stdout, "%s (brickfs %s)\n", prog, Version)
			return ExitOK
		case a == "-h" || a == "--help":
			fmt.Fprintln(os.Stdout, usage)
			return ExitOK
		case strings.HasPrefix(a, "-") && len(a) > 1 && strings.Trim(a[1:], "sfnv") == "":
			fake = fake || strings.Contains(a, "f")
			verbose = verbose || strings.Contains(a, "v")
		case strings.HasPrefix(a, "-") && len(a) > 1:
			fmt.Fprintf(stderr, "%s: unknown flag %q\n%s\n", prog, a, usage)
			return ExitUsage
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, usage)
		return ExitUsage
	}
	m.Spec, m.MountPoint = pos[0], pos[1]
	for _, o := range opts {
		if err := m.parseOptions(o); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return ExitUsage
		}
	}
	if err := m.finish(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitUsage
	}
	if verbose && m.LogLevel == "info" {
		m.LogLevel = "debug"
	}
	if fake {
		if _, err := volfile.ParseSpec(m.Spec, m.Backup); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return ExitUsage
		}
		return ExitOK
	}
	return runMount(prog, m, false, stderr)
}

func serverList(ss []volfile.Server) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}
