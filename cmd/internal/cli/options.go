package cli

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
	FetchTimeout                               time.Duration
	VolfileCacheDir                            string
	ReadOnly                                   bool
	ACL                                        bool
	Transport                                  string
	ServerPort                                 int
	// Subdir is the subdir-mount option, "/a/b"; the spec's HOST:/VOL/SUB
	// form sets it too.
	Subdir string
	// KernelFlags are mount flags the kernel understands (noatime, nodev...).
	KernelFlags []string
	// Warnings collects options accepted but not acted on.
	Warnings []string
}

// Defaults as the native client has them.
func defaults() Mount {
	return Mount{
		LogLevel:        "info",
		AttrTimeout:     time.Second,
		EntryTimeout:    time.Second,
		FetchTimeout:    5 * time.Second,
		VolfileCacheDir: "/var/lib/brickfs/volfiles",
		Transport:       "tcp",
	}
}

// ignoredFlags are value-less options mount.glusterfs accepts and either
// ignores or only warns about.
var ignoredFlags = map[string]bool{
	"rw": true, "auto": true, "noauto": true, "_netdev": true, "defaults": true,
	"async": true, "sync": true, "dirsync": true, "mand": true, "nomand": true, "silent": true,
	"loud": true, "iversion": true, "noiversion": true, "nofail": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true,
	"selinux": true, "worm": true, "enable-ino32": true, "mem-accounting": true, "aux-gfid-mount": true,
	"thin-client": true, "resolve-gids": true, "global-threading": true, "localtime-logging": true,
	"fopen-keep-cache": true,
}

// kernelFlags go to the kernel mount as they are.
var kernelFlags = map[string]bool{
	"atime": true, "noatime": true, "diratime": true, "nodiratime": true, "relatime": true,
	"norelatime": true, "strictatime": true, "nostrictatime": true, "lazyatime": true,
	"nolazyatime": true, "dev": true, "nodev": true, "exec": true, "noexec": true, "suid": true,
	"nosuid": true,
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

func seconds(key, v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("option %s=%q: want a number of seconds, e.g. %s=1", key, v, key)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseOptions applies a comma-separated -o string to m.
func (m *Mount) parseOptions(s string) error {
	var backupLegacy string
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
			switch {
			case key == "ro":
				m.ReadOnly = true
			case key == "acl":
				m.ACL = true
			case kernelFlags[key]:
				m.KernelFlags = append(m.KernelFlags, key)
			case ignoredFlags[key]:
				if key != "rw" && key != "auto" && key != "noauto" && key != "_netdev" && key != "defaults" {
					m.Warnings = append(m.Warnings, "option "+key+" is accepted but has no effect in brickfs")
				}
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
			backupLegacy = val
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
		case "post-op-delay":
			m.PostOpDelay, err = seconds(key, val)
		case "volfile-fetch-timeout":
			m.FetchTimeout, err = seconds(key, val)
		case "volfile-cache-dir":
			m.VolfileCacheDir = val
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
				m.Warnings = append(m.Warnings, "option "+key+" is accepted but has no effect in brickfs")
				continue
			}
			return fmt.Errorf("unknown mount option %q; see `brickfs help` for the options brickfs takes", key)
		}
		if err != nil {
			return err
		}
	}
	if m.Backup == "" && backupLegacy != "" {
		m.Backup = backupLegacy
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
