package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RefusedError is a mount point that mount.glusterfs refuses, and so does
// brickfs: exit 2.
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

// glusterdState is where glusterd keeps its volumes; its brick files name
// the bricks of this host (brick path=...).
var glusterdState = "/var/lib/glusterd"

// refuseMountPoint mirrors mount.glusterfs's checks (10.3): never / or
// /tmp, never a brick directory (it carries trusted.gfid) nor a directory
// holding one of this host's bricks, since the mount would hide the brick
// from glusterfsd or write into it behind GlusterFS's back.
func refuseMountPoint(mnt string) error {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return nil
	}
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	for _, p := range []string{abs, real} {
		if p == "/" || p == "/tmp" {
			return &RefusedError{fmt.Sprintf("refusing to mount on %s: GlusterFS's own helper refuses it too, and a mount there hides the system's files; use a directory of its own, e.g. /mnt/VOLUME", p)}
		}
	}
	if _, err := getxattr(real, "trusted.gfid"); err == nil {
		return &RefusedError{fmt.Sprintf("refusing to mount on %s: it is a GlusterFS brick (it has trusted.gfid); mounting there hides the brick's data from glusterfsd; use another directory", abs)}
	}
	if b := brickBelow(real); b != "" {
		return &RefusedError{fmt.Sprintf("refusing to mount on %s: it holds %s, a brick of this host; the mount would hide it from glusterfsd; use another directory", abs, b)}
	}
	return nil
}

// brickBelow returns a brick of this host's glusterd (its brick files under
// vols/*/bricks name them: path=...) that lies below dir: one that exists
// here, carries trusted.gfid, and has dir among its parents, compared by
// device and inode as mount.glusterfs does, so symlinks do not hide it.
func brickBelow(dir string) string {
	top, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(glusterdState, "vols", "*", "bricks", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			p, ok := strings.CutPrefix(line, "path=")
			if !ok || !filepath.IsAbs(p) {
				continue
			}
			if _, err := getxattr(p, "trusted.gfid"); err != nil {
				continue // not a brick of this host
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue
			}
			for d := filepath.Dir(real); ; d = filepath.Dir(d) {
				if st, err := os.Stat(d); err == nil && os.SameFile(st, top) {
					return p
				}
				if d == "/" {
					break
				}
			}
		}
	}
	return ""
}

func getxattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// mountError says why the kernel refused the FUSE mount and what to do.
func mountError(mnt string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM):
		return fmt.Errorf("cannot mount FUSE at %s: %v; mounting needs root (run it with sudo)", mnt, err)
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("cannot mount FUSE at %s: the kernel refused the mount (%v); check the -o options, or the kernel log (dmesg) for the one it rejects", mnt, err)
	}
	if _, serr := os.Stat("/dev/fuse"); serr != nil {
		return fmt.Errorf("cannot mount FUSE at %s: %v; /dev/fuse is missing: load the module with `modprobe fuse`", mnt, err)
	}
	return fmt.Errorf("cannot mount FUSE at %s: %v", mnt, err)
}

// mountDev returns the device (MAJOR:MINOR, from /proc/self/mountinfo) of
// the topmost mount at mnt: a FUSE mount's device names its connection.
func mountDev(mnt string) (string, bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	dev, ok := "", false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == mnt {
			dev, ok = f[2], true
		}
	}
	return dev, ok
}

// mountRecords is where each mount daemon records the mount it serves, by
// device: brickfs unmount tells its own fuse.glusterfs mounts from the
// native client's by it.
var mountRecords = "/run/brickfs/mounts"

// recordMount notes that this process serves the mount at mnt and returns
// a function that removes the note.
func recordMount(mnt string) (func(), error) {
	dev, ok := mountDev(mnt)
	if !ok {
		return func() {}, fmt.Errorf("%s is not in /proc/self/mountinfo", mnt)
	}
	if err := os.MkdirAll(mountRecords, 0o755); err != nil {
		return func() {}, err
	}
	p := filepath.Join(mountRecords, dev)
	if err := os.WriteFile(p, []byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), mnt)), 0o644); err != nil {
		return func() {}, err
	}
	mine := fmt.Sprintf("%d\n%s\n", os.Getpid(), mnt)
	// A remount at the same place may get the device back: remove the
	// record only while it is still this process's.
	return func() {
		if b, err := os.ReadFile(p); err == nil && string(b) == mine {
			_ = os.Remove(p)
		}
	}, nil
}

// servedByBrickfs reports whether a live brickfs daemon recorded the mount
// at mnt (see recordMount).
func servedByBrickfs(mnt string) bool {
	dev, ok := mountDev(mnt)
	if !ok {
		return false
	}
	b, err := os.ReadFile(filepath.Join(mountRecords, dev))
	if err != nil {
		return false
	}
	f := strings.Split(string(b), "\n")
	if len(f) < 2 || f[1] != mnt {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

// The auto_unmount watcher: a process of its own, started before the
// mount (so it holds no /dev/fuse descriptor), to which the daemon says
// "dev MAJOR:MINOR" once mounted and "done" when it exits cleanly. When
// the daemon is gone (its pipe closed, killed or crashed) or done, a mount
// of that device still at the mount point is detached, so the mount point
// is not left answering ENOTCONN, as fusermount3's auto_unmount does for
// libfuse. Another mount made at the same place since has another device
// and is left alone.
const watcherEnv = "BRICKFS_AUTO_UNMOUNT"

func isWatcher() bool { return os.Getenv(watcherEnv) != "" }

type watcher struct{ w *os.File }

func startWatcher(mnt string) (*watcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The arguments name the mount point so that ps and pgrep -f show
	// which mount it watches.
	cmd := exec.Command(exe, "auto-unmount", mnt)
	cmd.Env = append(os.Environ(), watcherEnv+"="+mnt)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot start the watcher: %v", err)
	}
	_ = cmd.Process.Release()
	return &watcher{w: w}, nil
}

// mounted tells the watcher which mount to watch.
func (w *watcher) mounted(mnt string) {
	if dev, ok := mountDev(mnt); ok {
		_, _ = fmt.Fprintf(w.w, "dev %s\n", dev)
	}
}

// done tells the watcher the daemon exits cleanly.
func (w *watcher) done() {
	_, _ = fmt.Fprintln(w.w, "done")
	_ = w.w.Close()
}

func watcherMain() int {
	mnt := os.Getenv(watcherEnv)
	dev := ""
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "dev "); ok {
			dev = d
		}
		if sc.Text() == "done" {
			break
		}
	}
	if dev == "" {
		return ExitOK // never mounted
	}
	if now, ok := mountDev(mnt); ok && now == dev {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			return ExitFail
		}
	}
	return ExitOK
}
