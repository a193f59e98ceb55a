package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type mountKind int

const (
	nativeMount  mountKind = iota // mount -t glusterfs
	brickfsMount                  // brickfs mount
	helperMount                   // mount -t brickfs
)

type mount struct {
	kind mountKind
	bin  string // brickfs binary, for brickfsMount
	log  string
}

// MountNative mounts the volume with GlusterFS's own FUSE client: `mount -t
// glusterfs -o log-file=DIR/logs/native-N.log[,opts] 127.a.b.1:/vol MNT`.
// It is unmounted in t.Cleanup.
func (c *Cluster) MountNative(t T, volume string, opts ...string) string {
	t.Helper()
	RequireFUSE(t)
	_, err := exec.LookPath("mount.glusterfs")
	if err != nil {
		_, err = os.Stat("/sbin/mount.glusterfs")
	}
	need(t, err == nil, glusterEnvs, "mount.glusterfs not found; install glusterfs-client (bash scripts/deps.sh)")
	mnt, log := c.newMountPoint(t, "native-"+volume)
	o := append([]string{"log-file=" + log}, opts...)
	c.doMount(t, mnt, mount{kind: nativeMount, log: log}, "mount", "-t", "glusterfs", "-o", strings.Join(o, ","), c.Spec(volume), mnt)
	return mnt
}

// BrickfsBin is the brickfs binary: $BRICKFS_BIN, else bin/brickfs at the
// module root. The test is skipped (failed with REQUIRE_FUSE=1) if it is
// missing.
func BrickfsBin(t T) string {
	t.Helper()
	return binary(t, "BRICKFS_BIN", "brickfs")
}

// MountBrickfsBin is the mount.brickfs binary: $MOUNT_BRICKFS_BIN, else
// bin/mount.brickfs at the module root.
func MountBrickfsBin(t T) string {
	t.Helper()
	return binary(t, "MOUNT_BRICKFS_BIN", "mount.brickfs")
}

func binary(t T, env, name string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("find %s: %v", name, err)
		}
		path = filepath.Join(root, "bin", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	st, err := os.Stat(abs)
	need(t, err == nil && st.Mode()&0o111 != 0, fuseEnvs, "%s not built (%s: %v); run make build or set %s", name, abs, err, env)
	return abs
}

// MountBrickfs mounts spec (e.g. c.Spec("vol")) with the built brickfs:
// `brickfs mount -o OPTS SPEC MNT`, which returns once the mount is live.
// log-file=DIR/logs/brickfs-N.log and log-level=debug are added unless opts
// set them; the log is printed if the test fails. It is unmounted with
// `brickfs unmount MNT` in t.Cleanup.
func (c *Cluster) MountBrickfs(t T, spec string, opts ...string) string {
	t.Helper()
	RequireFUSE(t)
	return c.MountBrickfsWith(t, BrickfsBin(t), spec, opts...)
}

// MountBrickfsWith is MountBrickfs with the brickfs binary bin (another
// build, to compare side by side).
func (c *Cluster) MountBrickfsWith(t T, bin, spec string, opts ...string) string {
	t.Helper()
	RequireFUSE(t)
	mnt, log := c.newMountPoint(t, "brickfs")
	o := withDefaults(opts, log)
	c.doMount(t, mnt, mount{kind: brickfsMount, bin: bin, log: logOf(o)}, bin, "mount", "-o", strings.Join(o, ","), spec, mnt)
	return mnt
}

// MountHelper mounts spec through mount(8): `mount -t brickfs -o OPTS SPEC
// MNT`, which runs mount.brickfs. mount(8) looks for helpers only in /sbin,
// /sbin/fs.d and /sbin/fs, so the built bin/mount.brickfs is symlinked as
// /sbin/fs.d/mount.brickfs for as long as a helper mount of this process is
// live, and removed after (with /sbin/fs.d if this created it). A
// /sbin/mount.brickfs that is not the built binary would shadow it, so the
// test fails then. Options are as for MountBrickfs.
func (c *Cluster) MountHelper(t T, spec string, opts ...string) string {
	t.Helper()
	RequireFUSE(t)
	bin := MountBrickfsBin(t)
	if err := installHelper(bin); err != nil {
		t.Fatalf("MountHelper: %v", err)
	}
	t.Cleanup(uninstallHelper)
	mnt, log := c.newMountPoint(t, "helper")
	o := withDefaults(opts, log)
	c.doMount(t, mnt, mount{kind: helperMount, log: logOf(o)}, "mount", "-t", "brickfs", "-o", strings.Join(o, ","), spec, mnt)
	return mnt
}

func withDefaults(opts []string, log string) []string {
	var hasLog, hasLevel bool
	for _, o := range opts {
		hasLog = hasLog || strings.HasPrefix(o, "log-file=")
		hasLevel = hasLevel || strings.HasPrefix(o, "log-level=")
	}
	o := append([]string(nil), opts...)
	if !hasLog {
		o = append(o, "log-file="+log)
	}
	if !hasLevel {
		o = append(o, "log-level=debug")
	}
	return o
}

func logOf(opts []string) string {
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, "log-file="); ok {
			return v
		}
	}
	return ""
}

// newMountPoint makes DIR/mnt/NAME-SEQ and names its log DIR/logs/NAME-SEQ.log.
func (c *Cluster) newMountPoint(t T, name string) (mnt, log string) {
	t.Helper()
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	base := fmt.Sprintf("%s-%d", name, seq)
	mnt = filepath.Join(c.Dir, "mnt", base)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatalf("mount point: %v", err)
	}
	if err := os.MkdirAll(c.LogDir(), 0o755); err != nil {
		t.Fatalf("log dir: %v", err)
	}
	return mnt, filepath.Join(c.LogDir(), base+".log")
}

// doMount runs the mount command, checks that mnt is a mount point after it,
// records the FUSE daemon's pid and registers the unmount in t.Cleanup.
func (c *Cluster) doMount(t T, mnt string, m mount, name string, args ...string) {
	t.Helper()
	c.mu.Lock()
	c.mounts[mnt] = m
	c.mu.Unlock()
	t.Cleanup(func() {
		if err := c.unmount(mnt); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	start := time.Now()
	if _, err := run(2*time.Minute, name, args...); err != nil {
		if m.log != "" {
			t.Logf("client log %s:\n%s", m.log, tail(m.log, 50))
		}
		t.Fatalf("mount: %v", err)
	}
	if !mounted(mnt) {
		t.Fatalf("mount: %s returned success but %s is not in /proc/mounts", name, mnt)
	}
	for _, pid := range pidsMatching(mnt) {
		c.record(pid, "client "+mnt)
	}
	t.Logf("mounted %s on %s in %v", args[len(args)-2], mnt, time.Since(start).Round(time.Millisecond))
}

// Unmount unmounts a mount made by this cluster now rather than in
// t.Cleanup, and waits for its FUSE daemon to exit.
func (c *Cluster) Unmount(t T, mnt string) {
	t.Helper()
	if err := c.unmount(mnt); err != nil {
		t.Fatalf("unmount %s: %v", mnt, err)
	}
}

// unmount unmounts mnt the way its kind wants (brickfs unmount, or umount),
// retrying while it is busy; as a last resort it unmounts lazily and reports
// an error. Then it waits for the daemon (a process with mnt in its command
// line) to exit, killing it after 10s.
func (c *Cluster) unmount(mnt string) error {
	c.mu.Lock()
	m, ok := c.mounts[mnt]
	delete(c.mounts, mnt)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	daemons := pidsMatching(mnt)
	var errs []error
	var lastErr error
	for try := 0; try < 10 && mounted(mnt); try++ {
		if m.kind == brickfsMount {
			_, lastErr = run(time.Minute, m.bin, "unmount", mnt)
		} else {
			_, lastErr = run(time.Minute, "umount", mnt)
		}
		if lastErr == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if mounted(mnt) {
		errs = append(errs, fmt.Errorf("still mounted after 10 tries (last: %v); unmounting lazily", lastErr))
		if _, err := run(time.Minute, "umount", "-l", mnt); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range daemons {
		if !waitGone(pid, 10*time.Second, false) {
			errs = append(errs, fmt.Errorf("FUSE daemon pid %d (%s) still runs 10s after unmount; killed", pid, procCmdline(pid)))
			signalIfOurs(pid, c.Dir, syscall.SIGKILL)
		}
	}
	return errors.Join(errs...)
}

// KillClient SIGKILLs the FUSE daemon of mnt (a crashed client) and waits
// for it to go. Unmount the dead mount once nothing holds files open on
// it.
func (c *Cluster) KillClient(t T, mnt string) {
	t.Helper()
	pids := clientPids(mnt)
	if len(pids) == 0 {
		t.Fatalf("KillClient: no process serves %s", mnt)
	}
	for _, pid := range pids {
		if err := signalIfOurs(pid, c.Dir, syscall.SIGKILL); err != nil {
			t.Fatalf("KillClient %s: %v", mnt, err)
		}
		if !waitGone(pid, 10*time.Second, false) {
			t.Fatalf("KillClient: pid %d survived SIGKILL", pid)
		}
	}
	t.Logf("killed the client of %s (pid %v)", mnt, pids)
}

// The mount.brickfs symlink is shared by the tests of this process.
var helper struct {
	sync.Mutex
	refs       int
	createdDir bool
}

const (
	helperDir  = "/sbin/fs.d"
	helperLink = helperDir + "/mount.brickfs"
)

func installHelper(bin string) error {
	helper.Lock()
	defer helper.Unlock()
	if target, err := filepath.EvalSymlinks("/sbin/mount.brickfs"); err == nil && target != bin {
		return fmt.Errorf("/sbin/mount.brickfs (%s) would shadow %s for mount(8); remove it to test the built binary", target, bin)
	}
	if helper.refs > 0 {
		helper.refs++
		return nil
	}
	if _, err := os.Stat(helperDir); os.IsNotExist(err) {
		if err := os.Mkdir(helperDir, 0o755); err != nil {
			return err
		}
		helper.createdDir = true
	}
	if target, err := os.Readlink(helperLink); err == nil {
		if target != bin {
			return fmt.Errorf("%s exists and points to %s, not %s; remove it", helperLink, target, bin)
		}
	} else if err := os.Symlink(bin, helperLink); err != nil {
		return err
	}
	helper.refs = 1
	return nil
}

func uninstallHelper() {
	helper.Lock()
	defer helper.Unlock()
	if helper.refs == 0 {
		return
	}
	helper.refs--
	if helper.refs > 0 {
		return
	}
	os.Remove(helperLink)
	if helper.createdDir {
		os.Remove(helperDir) // only if empty
		helper.createdDir = false
	}
}

// Statedump has the brickfs daemon of mnt write a statedump (SIGUSR1) into
// dir (its statedump-dir mount option) and returns the figures of its
// [brickfs] section (goroutines, rss_kib, fds...).
func (c *Cluster) Statedump(t T, mnt, dir string) map[string]int64 {
	t.Helper()
	pids := clientPids(mnt)
	if len(pids) != 1 {
		t.Fatalf("Statedump: %d processes serve %s", len(pids), mnt)
	}
	seen := map[string]bool{}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			seen[e.Name()] = true
		}
	}
	if err := signalIfOurs(pids[0], c.Dir, syscall.SIGUSR1); err != nil {
		t.Fatalf("Statedump: %v", err)
	}
	var path string
	waitFor(t, 30*time.Second, "a statedump in "+dir, func() (bool, string) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !seen[e.Name()] && strings.Contains(e.Name(), ".dump.") {
				path = filepath.Join(dir, e.Name())
				return true, ""
			}
		}
		return false, "none yet"
	})
	var b []byte
	waitFor(t, 10*time.Second, "the statedump to be written whole", func() (bool, string) {
		b, _ = os.ReadFile(path)
		return strings.Contains(string(b), "[graph]"), string(b)
	})
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "[graph]" {
			break
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	t.Logf("statedump of %s: %v", mnt, out)
	return out
}
