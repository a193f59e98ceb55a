package cli

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/fuse"
)

// Mount is everything a mount needs, parsed from the command line.
type Mount struct {
	Spec       string // as given: shown in /proc/mounts
	MountPoint string

	LogFile  string
	LogLevel string
	Backup   string // backup-volfile-servers, ':'-separated

	AttrTimeout, EntryTimeout, NegativeTimeout time.Duration
	PingInterval, PingTimeout                  time.Duration
	FopTimeout, PostOpDelay                    time.Duration
	LagTimeout                                 time.Duration // 0: the default; negative: off (lag-timeout=0)
	FetchTimeout                               time.Duration
	VolfileCacheDir                            string
	StatedumpDir                               string
	// Metrics is the HOST:PORT that serves Prometheus's /metrics ("": none).
	Metrics string
	// Pprof is the HOST:PORT that serves Go's profiles under /debug/pprof/
	// ("": none).
	Pprof string
	// MemoryLimit is the daemon's soft memory limit in bytes (Go's
	// runtime/debug.SetMemoryLimit): 0 the default, negative none.
	MemoryLimit int64
	// Procs is how many threads run the daemon's Go code at once (Go's
	// GOMAXPROCS): 0 the default.
	Procs int
	// MaxRequest is the largest READ or WRITE the kernel sends (0: 1 MiB).
	MaxRequest int
	ACL        bool
	Transport  string
	ServerPort int
	// CopyOffload is the copy_file_range policy (fuse.OffloadAuto, ...);
	// CopyChunk the most one call sends to the bricks (0: 64 MiB).
	CopyOffload string
	CopyChunk   int64
	// Subdir is the subdir-mount option, "/a/b"; the spec's HOST:/VOL/SUB
	// form sets it too.
	Subdir string
	// FsType is the type the mount shows as fuse.TYPE in /proc/mounts:
	// brickfs, or glusterfs when called as mount.glusterfs.
	FsType string
	// MountFlags are the VFS mount flags (MS_*) the options ask for.
	MountFlags uintptr
	// AutoUnmount unmounts the mount point if the daemon dies.
	AutoUnmount bool
	// Ignored lists options accepted for mount.glusterfs compatibility that
	// brickfs does not act on, each once.
	Ignored []string
	// BackupLegacy is backupvolfile-server, merged into Backup by finish.
	BackupLegacy string `json:"-"`
}

// Defaults as the native client has them.
func defaults() Mount {
	return Mount{
		LogLevel:        "info",
		AttrTimeout:     time.Second,
		EntryTimeout:    time.Second,
		FetchTimeout:    5 * time.Second,
		VolfileCacheDir: "/var/lib/brickfs/volfiles",
		StatedumpDir:    DefaultStatedumpDir,
		Transport:       "tcp",
		FsType:          "brickfs",
		MountFlags:      defaultMountFlags,
	}
}

// defaultMountFlags are brickfs's own defaults: nosuid, nodev, relatime,
// as for any FUSE filesystem: device nodes and setuid files written by any
// client of the volume do not take effect on this host. MS_SILENT only
// keeps the flags non-zero, which go-fuse would otherwise replace with
// nosuid,nodev.
const defaultMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RELATIME | syscall.MS_SILENT

// glusterfsMountFlags are mount(8)'s defaults (rw, suid, dev, exec,
// relatime), which the native client mounts with: brickfs standing in for
// mount.glusterfs mounts the same.
const glusterfsMountFlags = syscall.MS_RELATIME | syscall.MS_SILENT

// userFlags are what mount(8) means by user, users, owner and group:
// noexec, nosuid, nodev (unless given back later on the line).
const userFlags = syscall.MS_NOEXEC | syscall.MS_NOSUID | syscall.MS_NODEV

// vfsFlags are the options that are VFS mount flags: each sets and clears
// bits of MountFlags, as mount(8) and the kernel mean them.
var vfsFlags = map[string]struct{ set, clear uintptr }{
	"ro":            {syscall.MS_RDONLY, 0},
	"rw":            {0, syscall.MS_RDONLY},
	"nosuid":        {syscall.MS_NOSUID, 0},
	"suid":          {0, syscall.MS_NOSUID},
	"nodev":         {syscall.MS_NODEV, 0},
	"dev":           {0, syscall.MS_NODEV},
	"noexec":        {syscall.MS_NOEXEC, 0},
	"exec":          {0, syscall.MS_NOEXEC},
	"noatime":       {syscall.MS_NOATIME, syscall.MS_RELATIME | syscall.MS_STRICTATIME},
	"atime":         {0, syscall.MS_NOATIME},
	"nodiratime":    {syscall.MS_NODIRATIME, 0},
	"diratime":      {0, syscall.MS_NODIRATIME},
	"relatime":      {syscall.MS_RELATIME, syscall.MS_NOATIME | syscall.MS_STRICTATIME},
	"norelatime":    {0, syscall.MS_RELATIME},
	"strictatime":   {syscall.MS_STRICTATIME, syscall.MS_NOATIME | syscall.MS_RELATIME},
	"nostrictatime": {0, syscall.MS_STRICTATIME},
	"lazytime":      {msLazytime, 0},
	"nolazytime":    {0, msLazytime},
	// The native helper's spelling of these two (mount.glusterfs 10.3).
	"lazyatime":   {msLazytime, 0},
	"nolazyatime": {0, msLazytime},
}

// msLazytime is MS_LAZYTIME (linux/mount.h), missing from package syscall.
const msLazytime = 1 << 25

// quietFlags are value-less options that mean nothing to a mount helper:
// mount(8) and systemd act on them (auto, noauto, nofail, _netdev, user...)
// or they are the default (defaults).
var quietFlags = map[string]bool{
	"auto": true, "noauto": true, "_netdev": true, "defaults": true, "nofail": true,
	"nouser": true, "silent": true, "loud": true,
}

// ignoredFlags are value-less options mount.glusterfs accepts that brickfs
// does not act on: said once on stderr.
var ignoredFlags = map[string]bool{
	"async": true, "sync": true, "dirsync": true, "mand": true, "nomand": true,
	"iversion": true, "noiversion": true,
	"selinux": true, "worm": true, "enable-ino32": true, "mem-accounting": true, "aux-gfid-mount": true,
	"thin-client": true, "resolve-gids": true, "global-threading": true, "localtime-logging": true,
	"fopen-keep-cache": true,
}

// ignoredKeys are key=value options of mount.glusterfs that tune the native
// client's internals; brickfs accepts them so fstab lines and Cinder's
// mount options work unchanged, and notes that it does not act on them.
var ignoredKeys = map[string]bool{
	"direct-io-mode": true, "volume-name": true, "volume-id": true, "volfile-check": true,
	"gid-timeout": true, "lru-limit": true, "invalidate-limit": true, "background-qlen": true,
	"congestion-threshold": true, "fetch-attempts": true, "volfile-max-fetch-attempts": true,
	"oom-score-adj": true, "xlator-option": true, "fuse-mountopts": true, "use-readdirp": true,
	"event-history": true, "reader-thread-count": true, "auto-invalidation": true,
	"no-root-squash": true, "root-squash": true, "kernel-writeback-cache": true,
	"attr-times-granularity": true, "dump-fuse": true, "fuse-flush-handle-interrupt": true,
	"fuse-dev-eperm-ratelimit-ns": true, "context": true, "fscontext": true, "defcontext": true,
	"rootcontext": true, "halo-max-latency": true, "halo-max-replicas": true,
	"halo-min-replicas": true, "process-name": true, "fopen-keep-cache": true, "io-engine": true,
}

// byteSize reads a size as 64M, 1G, 4096 (K, M, G: powers of 1024).
func byteSize(key, v string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSuffix(strings.ToUpper(v), "B")
	switch {
	case strings.HasSuffix(num, "K"):
		mult, num = 1<<10, strings.TrimSuffix(num, "K")
	case strings.HasSuffix(num, "M"):
		mult, num = 1<<20, strings.TrimSuffix(num, "M")
	case strings.HasSuffix(num, "G"):
		mult, num = 1<<30, strings.TrimSuffix(num, "G")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("option %s=%q: want a size such as 64M", key, v)
	}
	return n * mult, nil
}

func seconds(key, v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("option %s=%q: want a number of seconds, e.g. %s=1", key, v, key)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// ignore notes an option brickfs accepts and does not act on, once.
func (m *Mount) ignore(key string) {
	if !slices.Contains(m.Ignored, key) {
		m.Ignored = append(m.Ignored, key)
	}
}

// ReadOnly reports whether the mount is read-only (ro).
func (m *Mount) ReadOnly() bool { return m.MountFlags&syscall.MS_RDONLY != 0 }

// Warnings are what the mount says on stderr about its options.
func (m *Mount) Warnings() []string {
	if len(m.Ignored) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("option%s %s: accepted for compatibility with mount.glusterfs; brickfs does not act on %s",
		map[bool]string{true: "s", false: ""}[len(m.Ignored) > 1], strings.Join(m.Ignored, ", "),
		map[bool]string{true: "them", false: "it"}[len(m.Ignored) > 1])}
}

// finish merges what several -o strings gave: backupvolfile-server joins
// backup-volfile-servers (mount.glusterfs drops it when both are given;
// volfile.ParseSpec drops a server named twice). A relative mount point
// becomes absolute: the daemon runs in /.
func (m *Mount) finish() error {
	if m.BackupLegacy != "" {
		if m.Backup != "" {
			m.Backup += ":"
		}
		m.Backup, m.BackupLegacy = m.Backup+m.BackupLegacy, ""
	}
	if m.MountPoint != "" {
		abs, err := filepath.Abs(m.MountPoint)
		if err != nil {
			return fmt.Errorf("mount point %s: %v", m.MountPoint, err)
		}
		m.MountPoint = abs
	}
	return nil
}

// parseOptions applies a comma-separated -o string to m.
func (m *Mount) parseOptions(s string) error {
	for _, opt := range strings.Split(s, ",") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		key, val, hasVal := strings.Cut(opt, "=")
		if strings.HasPrefix(key, "x-") || strings.HasPrefix(key, "X-") || key == "comment" {
			continue
		}
		if !hasVal {
			f, isFlag := vfsFlags[key]
			switch {
			case isFlag:
				m.MountFlags = m.MountFlags&^f.clear | f.set
			case key == "user" || key == "users" || key == "owner" || key == "group":
				m.MountFlags |= userFlags
			case key == "acl":
				m.ACL = true
			case key == "auto_unmount":
				m.AutoUnmount = true
			case quietFlags[key]:
			case ignoredFlags[key]:
				m.ignore(key)
			default:
				return fmt.Errorf("unknown mount option %q; see `brickfs help` for the options brickfs takes", key)
			}
			continue
		}
		var err error
		switch key {
		case "log-file":
			m.LogFile = val
		case "log-level":
			m.LogLevel, err = logLevel(val)
		case "backup-volfile-servers":
			m.Backup = val
		case "backupvolfile-server":
			m.BackupLegacy = val
		case "attribute-timeout":
			m.AttrTimeout, err = seconds(key, val)
		case "entry-timeout":
			m.EntryTimeout, err = seconds(key, val)
		case "negative-timeout":
			m.NegativeTimeout, err = seconds(key, val)
		case "ping-interval":
			m.PingInterval, err = seconds(key, val)
		case "ping-timeout":
			m.PingTimeout, err = seconds(key, val)
		case "fop-timeout":
			m.FopTimeout, err = seconds(key, val)
		case "lag-timeout":
			if m.LagTimeout, err = seconds(key, val); err == nil && m.LagTimeout == 0 {
				m.LagTimeout = -1
			}
		case "memory-limit":
			if val == "0" {
				m.MemoryLimit = -1
			} else if m.MemoryLimit, err = byteSize(key, val); err == nil && m.MemoryLimit < minMemoryLimit {
				err = fmt.Errorf("option %s=%s: too small, the garbage collector would run without end; give at least %dM, or 0 for no limit", key, val, minMemoryLimit>>20)
			}
		case "max-request":
			var n int64
			if n, err = byteSize(key, val); err == nil && (n < 128<<10 || n > 1<<20 || n&(n-1) != 0) {
				err = fmt.Errorf("option %s=%s: want a power of two from 128K to 1M (default 1M)", key, val)
			}
			m.MaxRequest = int(n)
		case "procs":
			if m.Procs, err = strconv.Atoi(val); err != nil || m.Procs < 1 || m.Procs > 1024 {
				err = fmt.Errorf("option %s=%q: want how many threads run the daemon's code at once, 1 to 1024 (default %d)", key, val, DefaultProcs)
			}
		case "post-op-delay":
			m.PostOpDelay, err = seconds(key, val)
		case "volfile-fetch-timeout":
			m.FetchTimeout, err = seconds(key, val)
		case "volfile-cache-dir":
			m.VolfileCacheDir = val
		case "statedump-dir":
			m.StatedumpDir = val
		case "metrics":
			m.Metrics, err = httpAddr(key, val, "serve Prometheus's /metrics on, e.g. metrics=127.0.0.1:9464 (or metrics=:9464 on every address)")
		case "pprof":
			m.Pprof, err = httpAddr(key, val, "serve Go's profiles (/debug/pprof/) on, e.g. pprof=127.0.0.1:6060; they show the daemon's internals, so keep it on loopback")
		case "copy-offload":
			m.CopyOffload = val
			if val != fuse.OffloadAuto && val != fuse.OffloadBricks && val != fuse.OffloadKernel {
				err = fmt.Errorf("option copy-offload=%q: want auto, bricks or kernel", val)
			}
		case "copy-chunk":
			m.CopyChunk, err = byteSize(key, val)
			if err == nil && (m.CopyChunk < 1<<20 || m.CopyChunk > 1<<30) {
				err = fmt.Errorf("option copy-chunk=%s: want 1M to 1G", val)
			}
		case "transport":
			if val != "tcp" {
				err = fmt.Errorf("option transport=%s: brickfs speaks only tcp", val)
			}
		case "server-port":
			m.ServerPort, err = strconv.Atoi(val)
			if err != nil || m.ServerPort <= 0 || m.ServerPort > 65535 {
				err = fmt.Errorf("option server-port=%q: want a TCP port number", val)
			}
		case "subdir-mount":
			m.Subdir = path.Clean("/" + val)
			if m.Subdir == "/" {
				m.Subdir = ""
			}
		default:
			if ignoredKeys[key] {
				m.ignore(key)
				continue
			}
			return fmt.Errorf("unknown mount option %q; see `brickfs help` for the options brickfs takes", key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func logLevel(v string) (string, error) {
	switch strings.ToLower(v) {
	case "trace", "debug":
		return "debug", nil
	case "info":
		return "info", nil
	case "warning", "warn":
		return "warn", nil
	case "error", "critical", "none":
		return "error", nil
	}
	return "", fmt.Errorf("option log-level=%q: want debug, info, warning or error", v)
}

// defaultLogFile mirrors the native client's /var/log/glusterfs/<mnt>.log.
func defaultLogFile(mnt string) string {
	name := strings.ReplaceAll(strings.Trim(filepath.Clean(mnt), "/"), "/", "-")
	if name == "" {
		name = "root"
	}
	return filepath.Join("/var/log/brickfs", name+".log")
}

// checkMountPoint says what is wrong with mnt as a place to mount.
func checkMountPoint(mnt string) error {
	st, err := os.Stat(mnt)
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("mount point %s does not exist; create it with `mkdir -p %s`", mnt, mnt)
		}
		return fmt.Errorf("mount point %s: %v; if a dead mount is left there, run `brickfs unmount %s`", mnt, err, mnt)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", mnt)
	}
	if err := refuseMountPoint(mnt); err != nil {
		return err
	}
	if src, typ, ok := mountedAt(mnt); ok {
		return &AlreadyMountedError{MountPoint: mnt, Source: src, Type: typ}
	}
	return nil
}

// AlreadyMountedError is a mount point that carries a mount already.
type AlreadyMountedError struct{ MountPoint, Source, Type string }

func (e *AlreadyMountedError) Error() string {
	return fmt.Sprintf("%s is already mounted (%s, type %s); unmount it first with `umount %s`", e.MountPoint, e.Source, e.Type, e.MountPoint)
}

// mountedAt reports the mount whose mount point is mnt, from /proc/mounts.
func mountedAt(mnt string) (source, fstype string, ok bool) {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return "", "", false
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && unescapeMount(f[1]) == abs {
			source, fstype, ok = unescapeMount(f[0]), f[2], true
		}
	}
	return source, fstype, ok
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// httpAddr checks the metrics and pprof options: HOST:PORT, or :PORT for
// every address of the host; port 0 takes a free one. want says what the
// address is for.
func httpAddr(key, v, want string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("option %s=%q: %s; want HOST:PORT to %s", key, v, why, want)
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", bad("not HOST:PORT")
	}
	// Port 0 takes a free port, shown in the log and by brickfs status.
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", bad("the port is not a TCP port number (0-65535; 0 takes a free one)")
	}
	if strings.ContainsAny(host, " /,") {
		return "", bad("the host is not a host name or an address")
	}
	return v, nil
}
