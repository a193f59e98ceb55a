package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dropIn is a mount namespace in which /sbin/mount.glusterfs is the built
// brickfs binary, so `mount -t glusterfs` there runs brickfs as Cinder,
// os-brick and Nova would after `brickfs install --glusterfs`, while the
// host's helper is never touched.
//
// How: Dir is a directory of the run made a shared mount on the host; the
// namespace is created with propagation unchanged, so its copy of Dir is a
// peer of the host's, then the mount holding the helper is made private
// there and the binary bind-mounted over the helper. A FUSE mount made in
// the namespace under Dir appears on the host at the same path (and an
// unmount on the host reaches the namespace); the helper's bind mount
// stays inside. A holder process keeps the namespace until the test ends;
// the FUSE daemons started in it live in it too.
type dropIn struct {
	Dir string
	pid int // the holder: nsenter -t pid -m
	in  io.WriteCloser
}

func newDropIn(t *testing.T, c *Cluster) *dropIn {
	t.Helper()
	RequireRoot(t)
	bin := BrickfsBin(t)
	for _, tool := range []string{"unshare", "nsenter", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			need(t, false, bothEnvs, "%s not found; install util-linux (bash scripts/deps.sh)", tool)
		}
	}
	helperPath, err := filepath.EvalSymlinks("/sbin/mount.glusterfs")
	if err != nil {
		need(t, false, glusterEnvs, "/sbin/mount.glusterfs: %v; install glusterfs-client (bash scripts/deps.sh)", err)
	}
	d := &dropIn{Dir: filepath.Join(c.Dir, "gmnt")}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := run(time.Minute, "mount", "--bind", d.Dir, d.Dir); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the holder has gone and
	// the mounts made in the namespace have been unmounted.
	t.Cleanup(func() {
		for _, mp := range mountsUnder(d.Dir) {
			if mp != d.Dir {
				t.Errorf("%s still mounted at the end; lazy unmount", mp)
				run(time.Minute, "umount", "-l", mp)
			}
		}
		if _, err := run(time.Minute, "umount", d.Dir); err != nil {
			t.Errorf("%v", err)
			run(time.Minute, "umount", "-l", d.Dir)
		}
	})
	if _, err := run(time.Minute, "mount", "--make-shared", d.Dir); err != nil {
		t.Fatal(err)
	}
	const script = `set -e
mount --make-private "$(findmnt -n -o TARGET -T "$1")"
mount --bind "$2" "$1"
echo ready
exec cat >/dev/null`
	cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script, "sh", helperPath, bin)
	d.in, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	d.pid = cmd.Process.Pid
	c.record(d.pid, "mount namespace holder")
	t.Cleanup(func() {
		d.in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("the mount namespace did not come up: %q", line)
	}
	return d
}

// cmd runs name with args inside the namespace.
func (d *dropIn) cmd(t *testing.T, timeout time.Duration, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmd(t, timeout, "nsenter", append([]string{"-t", strconv.Itoa(d.pid), "-m", "--", name}, args...)...)
}

// Mount runs `mount -t glusterfs -o OPTS SPEC MNT` in the namespace (mnt
// under Dir), with a log file of the run; it is unmounted in t.Cleanup.
func (d *dropIn) Mount(t *testing.T, c *Cluster, spec, mnt string, opts ...string) {
	t.Helper()
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.seq++
	log := filepath.Join(c.LogDir(), fmt.Sprintf("glusterfs-%d.log", c.seq))
	c.mu.Unlock()
	o := withDefaults(opts, log)
	c.doMount(t, mnt, mount{kind: helperMount, log: logOf(o)}, "nsenter", "-t", strconv.Itoa(d.pid), "-m", "--",
		"mount", "-t", "glusterfs", "-o", strings.Join(o, ","), spec, mnt)
}

// hostHelperVersion is what the host's own mount.glusterfs -V prints.
func hostHelperVersion(t *testing.T) string {
	t.Helper()
	out, stderr, code := runCmd(t, time.Minute, "/sbin/mount.glusterfs", "-V")
	if code != 0 {
		t.Fatalf("/sbin/mount.glusterfs -V: exit %d: %s", code, stderr)
	}
	return strings.SplitN(out, "\n", 2)[0]
}

// mountInfo returns the mount options and super options of mnt from
// /proc/self/mountinfo.
func mountInfo(t *testing.T, mnt string) (opts, super string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || unescapeMount(f[4]) != mnt {
			continue
		}
		for i, x := range f {
			if x == "-" && i+3 < len(f) {
				opts, super = f[5], f[i+3]
			}
		}
	}
	if opts == "" {
		t.Fatalf("%s is not in /proc/self/mountinfo", mnt)
	}
	return opts, super
}

func hasOpt(list, o string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == o {
			return true
		}
	}
	return false
}

func fmtOpts(opts, super string) string {
	return fmt.Sprintf("mount options %s, super options %s", opts, super)
}
