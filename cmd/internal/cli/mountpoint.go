package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	switch abs {
	case "/", "/tmp":
		return &RefusedError{fmt.Sprintf("refusing to mount on %s: mount.glusterfs refuses it too, and a mount there hides the system's files; use a directory of its own, e.g. /mnt/VOLUME", abs)}
	}
	if _, err := getxattr(abs, "trusted.gfid"); err == nil {
		return &RefusedError{fmt.Sprintf("refusing to mount on %s: it is a GlusterFS brick (it has trusted.gfid); mounting there hides the brick's data from glusterfsd; use another directory", abs)}
	}
	files, _ := filepath.Glob(filepath.Join(glusterdState, "vols", "*", "bricks", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			p, ok := strings.CutPrefix(line, "path=")
			if ok && p != abs && strings.HasPrefix(p, strings.TrimSuffix(abs, "/")+"/") {
				return &RefusedError{fmt.Sprintf("refusing to mount on %s: it holds the brick %s of this host (%s); the mount would hide it from glusterfsd; use another directory", abs, p, f)}
			}
		}
	}
	return nil
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

// servedByBrickfs reports whether a brickfs daemon serves the mount of src
// at mnt: its command line is "EXE mount SRC MNT" (see daemonize). It tells
// a fuse.glusterfs mount made by brickfs from the native client's.
func servedByBrickfs(src, mnt string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		a := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(a) == 4 && a[1] == "mount" && a[2] == src && a[3] == mnt && filepath.Base(a[0]) != "glusterfs" {
			return true
		}
	}
	return false
}

// The auto_unmount watcher: a process of its own that the daemon tells
// "done" when it exits cleanly. If the daemon dies instead (killed,
// crashed), the watcher sees its pipe close and detaches the mount, so the
// mount point is not left answering ENOTCONN, as fusermount3's
// auto_unmount does for libfuse.
const watcherEnv = "BRICKFS_AUTO_UNMOUNT"

type watcherArgs struct{ MountPoint, Source, Type string }

func isWatcher() bool { return os.Getenv(watcherEnv) != "" }

type watcher struct{ w *os.File }

func startWatcher(m Mount) (*watcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(m.MountPoint)
	if err != nil {
		return nil, err
	}
	args, _ := json.Marshal(watcherArgs{MountPoint: abs, Source: m.Spec, Type: "fuse." + m.FsType})
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The arguments name the mount point so that ps and pgrep -f show
	// which mount it watches.
	cmd := exec.Command(exe, "auto-unmount", abs)
	cmd.Env = append(os.Environ(), watcherEnv+"="+string(args))
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

// done tells the watcher the daemon exits cleanly.
func (w *watcher) done() {
	_, _ = fmt.Fprintln(w.w, "done")
	_ = w.w.Close()
}

func watcherMain() int {
	var a watcherArgs
	if err := json.Unmarshal([]byte(os.Getenv(watcherEnv)), &a); err != nil {
		fmt.Fprintf(os.Stderr, "brickfs auto-unmount: bad arguments: %v\n", err)
		return ExitFail
	}
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(line) == "done" {
		return ExitOK
	}
	// The daemon died. Detach its mount if it is still the one it made.
	if src, typ, ok := mountedAt(a.MountPoint); ok && src == a.Source && typ == a.Type {
		if err := syscall.Unmount(a.MountPoint, syscall.MNT_DETACH); err != nil {
			return ExitFail
		}
	}
	return ExitOK
}
