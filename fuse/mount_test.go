package fuse

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// needMount skips t unless it can mount FUSE (root and /dev/fuse); in CI,
// or with REQUIRE_FUSE set, it fails it instead.
func needMount(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		msg := "needs root and /dev/fuse (modprobe fuse) to mount"
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_FUSE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// mountMem mounts the filesystem over m in this process.
func mountMem(t *testing.T, m *foptest.Mem) (string, *FS) {
	t.Helper()
	return mountVolume(t, memVolume{m}, Options{})
}

// mountVolume mounts the filesystem over vol with opts (1 s caches) in
// this process, unmounted when t ends.
func mountVolume(t *testing.T, vol Volume, opts Options) (string, *FS) {
	t.Helper()
	dir, fsys, _ := mountServed(t, vol, opts)
	return dir, fsys
}

// mountServed is mountVolume that also returns the mount's server.
func mountServed(t *testing.T, vol Volume, opts Options) (string, *FS, *Server) {
	t.Helper()
	needMount(t)
	dir := t.TempDir()
	opts.AttrTimeout, opts.EntryTimeout = time.Second, time.Second
	fsys := New(vol, opts)
	srv, err := fsys.Mount(dir, MountConfig{FsName: "mem", Type: "brickfs-test", Flags: syscall.MS_NOSUID | syscall.MS_NODEV})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		srv.Wait()
	})
	return dir, fsys, srv
}
