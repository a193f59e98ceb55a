package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBrickfsUnmountWithFopInFlight: a request still waiting on a brick
// when the kernel ends the mount must not keep the daemon alive. A
// single-brick volume's brick is stopped (its calls wait for the 42 s
// ping-timeout), a reader blocks on it, and the mount is forced off, so
// the kernel ends the connection with the request still in brickfs (as an
// unmount does with a RELEASE in flight). The daemon must exit with the
// brick still stopped, saying so in its log; it used to wait for the
// brick, and an unmount under load left daemons running.
func TestBrickfsUnmountWithFopInFlight(t *testing.T) {
	c, vol := newVolume(t, "unmount")
	mnt := c.MountBrickfs(t, c.Spec(vol), "ping-timeout=42")
	dumpClientLog(t, c, mnt)
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := mountDaemon(t, mnt)
	c.StopBrick(t, vol, 0)
	t.Cleanup(func() { c.ContBrick(t, vol, 0) })
	// A reader blocks on the stopped brick: a name the kernel has not
	// cached is looked up by brickfs.
	reader := exec.Command("cat", filepath.Join(mnt, "not-cached"))
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { reader.Wait(); close(exited) }()
	// It waits for brickfs's answer once its kernel stack is in FUSE's
	// request path.
	stack := fmt.Sprintf("/proc/%d/stack", reader.Process.Pid)
	waitFor(t, 30*time.Second, "the reader to wait for brickfs", func() (bool, string) {
		b, err := os.ReadFile(stack)
		return err == nil && strings.Contains(string(b), "fuse_"), fmt.Sprintf("%s: %q %v", stack, b, err)
	})
	// The reader waiting in FUSE does not mean brickfs has read its
	// request yet (on a loaded machine it may still be in the kernel's
	// queue, and the unmount then ends it with nothing in flight): the
	// daemon's own count of fops waiting on the brick says it has.
	brick := vol + "-client-0"
	waitFor(t, 30*time.Second, "brickfs to wait on the stopped brick", func() (bool, string) {
		n := brickfsStatus(t, mnt).node(brick)
		if n == nil || n.Brick == nil {
			return false, "no brick " + brick + " in the status"
		}
		return n.Brick.Inflight > 0, fmt.Sprintf("%d fops in flight on %s", n.Brick.Inflight, brick)
	})
	// Force the unmount: the kernel aborts the connection (the reader gets
	// an error at once; a process killed while its request is with the
	// daemon would wait for the answer) and detaches the mount.
	// (umount(8) would stat the path first and wait on the brick too.)
	start := time.Now()
	if err := syscall.Unmount(mnt, syscall.MNT_FORCE|syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("the reader still waits 20 s after the forced unmount")
	}
	if !waitGone(daemon, 20*time.Second, false) {
		t.Fatalf("the daemon (pid %d) still runs 20 s after the kernel ended its mount, with the brick stopped", daemon)
	}
	t.Logf("the daemon exited %v after the mount ended", time.Since(start).Round(time.Millisecond))
	if lines := LogLines(c.MountLog(mnt), "unmounted with requests still waiting on bricks"); len(lines) != 1 {
		t.Errorf("the log does not say the unmount left a request waiting: %q", lines)
	}
}

// TestBrickfsLazyUnmountKeepsServing: after `umount -l` a file still open
// on the mount keeps working for as long as it is open (the kernel keeps
// the connection), however long that is; the daemon exits once it is
// closed. The end of the connection, not the mount's leaving the mount
// table, is what ends the daemon.
func TestBrickfsLazyUnmountKeepsServing(t *testing.T) {
	c, vol := newVolume(t, "lazy")
	mnt := c.MountBrickfs(t, c.Spec(vol))
	dumpClientLog(t, c, mnt)
	f, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	daemon := mountDaemon(t, mnt)
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	// Longer than the daemon's 2 s grace after the end of a connection
	// and its 250 ms check: the open file must still be served.
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		buf := make([]byte, 4)
		if _, err := f.WriteAt([]byte(fmt.Sprintf("%04d", i%10000)), 4); err != nil {
			t.Fatalf("write through the open file %v after the lazy unmount: %v", time.Since(deadline.Add(-4*time.Second)), err)
		}
		if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "kept" {
			t.Fatalf("read through the open file after the lazy unmount: %q, %v", buf, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if procDead(daemon) {
		t.Fatalf("the daemon exited while a file on its lazily unmounted mount was open")
	}
	f.Close()
	if !waitGone(daemon, 20*time.Second, false) {
		t.Fatalf("the daemon (pid %d) still runs 20 s after the last file on its lazily unmounted mount was closed", daemon)
	}
}

// mountDaemon returns the pid of the brickfs daemon serving mnt: its
// command line is "EXE mount SPEC MNT" (the auto_unmount watcher's names
// mnt too, with auto-unmount).
func mountDaemon(t *testing.T, mnt string) int {
	t.Helper()
	var daemons []int
	for _, pid := range pidsMatching(mnt) {
		if strings.Contains(procCmdline(pid), " mount ") {
			daemons = append(daemons, pid)
		}
	}
	if len(daemons) != 1 {
		t.Fatalf("%d daemons serve %s: %v", len(daemons), mnt, daemons)
	}
	return daemons[0]
}
