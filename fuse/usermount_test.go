package fuse

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// asUserEnv marks the copy of the test binary TestMountAsUser runs as an
// ordinary user; its value is the mountpoint.
const asUserEnv = "BRICKFS_TEST_MOUNT_AS_USER"

// An ordinary user mounts through fusermount3 (the set-uid helper hands
// brickfs the /dev/fuse descriptor over _FUSE_COMMFD), serves the mount,
// and unmounts it with fusermount3 -u: the path brickfs takes when it is
// not root, which the other tests (run as root) never take. The test runs
// a copy of its own binary as nobody.
func TestMountAsUser(t *testing.T) {
	if dir := os.Getenv(asUserEnv); dir != "" {
		mountAsUser(t, dir)
		return
	}
	needMount(t)
	if _, err := exec.LookPath("fusermount3"); err != nil {
		msg := "needs fusermount3 (apt-get install fuse3, or bash scripts/deps.sh)"
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_FUSE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	const uid, gid = 65534, 65534 // nobody, nogroup
	// fusermount3 opens /dev/fuse as the user: udev makes it 0666; some
	// containers leave it 0600. Opened up for the test, then put back.
	if fi, err := os.Stat("/dev/fuse"); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/fuse", 0o666); err != nil {
			t.Fatalf("let users open /dev/fuse: %v", err)
		}
		t.Cleanup(func() { os.Chmod("/dev/fuse", fi.Mode().Perm()) })
	}
	// Under /tmp, which every user can enter (TMPDIR may not be).
	top, err := os.MkdirTemp("/tmp", "brickfs-user-mount-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil { // MkdirTemp makes it 0700
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "fuse.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// The mountpoint and the copy's temporary directory (coverage data,
	// t.TempDir) are the user's.
	mnt, tmp := filepath.Join(top, "mnt"), filepath.Join(top, "tmp")
	for _, d := range []string{mnt, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// Only if the user's copy left it mounted.
		if mounted(t, mnt) {
			t.Errorf("%s still mounted after the user's run", mnt)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	cmd := exec.Command(bin, "-test.run=^TestMountAsUser$", "-test.v", "-test.count=1")
	cmd.Env = []string{asUserEnv + "=" + mnt, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp}
	cmd.Dir = tmp
	// Output goes through a pipe: a process the copy left holding it
	// must not hold Wait after a kill.
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		err = <-done
		t.Errorf("the user's run did not end in 2 minutes")
	}
	if err != nil || !strings.Contains(out.String(), "--- PASS: TestMountAsUser") {
		t.Errorf("mount as uid %d: %v\n%s", uid, err, out.String())
	}
}

// mountAsUser is TestMountAsUser's body in the copy run as nobody: it
// mounts an in-memory volume on dir, writes and reads a file through it,
// checks the kernel shows the mount as the user's, and unmounts.
func mountAsUser(t *testing.T, dir string) {
	if os.Geteuid() == 0 {
		t.Fatal("the user's copy runs as root")
	}
	// The volume's root is the user's (storage.owner-uid on a real one).
	m := foptest.NewMem("mem-client-0")
	root := xdr.Iatt{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if _, _, _, err := m.Setattr(context.Background(), foptest.RootGFID, &root, fop.SetAttrUID|fop.SetAttrGID, nil); err != nil {
		t.Fatal(err)
	}
	fsys := New(memVolume{m}, Options{AttrTimeout: time.Second, EntryTimeout: time.Second})
	srv, err := fsys.Mount(dir, MountConfig{FsName: "mem", Type: "brickfs-test", Flags: syscall.MS_NOSUID | syscall.MS_NODEV})
	if err != nil {
		t.Fatalf("mount as uid %d: %v", os.Geteuid(), err)
	}
	unmounted := false
	defer func() {
		if !unmounted {
			srv.Unmount()
		}
	}()
	if srv.direct {
		t.Errorf("an ordinary user's mount was made directly")
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			line = l
		}
	}
	if !strings.Contains(line, "fuse.brickfs-test") || !strings.Contains(line, "user_id="+strconv.Itoa(os.Geteuid())) || !strings.Contains(line, "nosuid") || !strings.Contains(line, "nodev") {
		t.Errorf("mountinfo of %s: %q; want a fuse.brickfs-test mount of user_id %d, nosuid, nodev", dir, line, os.Geteuid())
	}
	want := bytes.Repeat([]byte("user data "), 1000)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatalf("write through the user's mount: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read through the user's mount: %d bytes, %v; want %d", len(got), err, len(want))
	}
	if err := srv.Unmount(); err != nil {
		t.Fatalf("unmount as uid %d: %v", os.Geteuid(), err)
	}
	unmounted = true
	if mounted(t, dir) {
		t.Errorf("%s still mounted after Unmount", dir)
	}
}

// mounted reports whether dir is a mountpoint.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
