package fuse

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// mountMem mounts the filesystem over m in this process.
func mountMem(t *testing.T, m *foptest.Mem) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		msg := "needs root and /dev/fuse (modprobe fuse) to mount"
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_FUSE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	fsys := New(memVolume{m}, Options{AttrTimeout: time.Second, EntryTimeout: time.Second})
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
	return dir
}

// copy_file_range(2) on the mount reaches the brick as COPY_FILE_RANGE,
// through fds of its own opened without O_DIRECT (the application's are
// O_DIRECT here, as QEMU's cache=none), with one destination fd kept per
// destination file however many copies go into it.
func TestMemCopyFileRange(t *testing.T) {
	m := foptest.NewMem("mem-client-0")
	dir := mountMem(t, m)
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	src, dst := filepath.Join(dir, "base.img"), filepath.Join(dir, "clone.img")
	if err := os.WriteFile(src, want, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	opens := m.Calls("OPEN")
	for off := int64(0); off < int64(len(want)); {
		offIn, offOut := off, off
		n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, 256<<10, 0)
		if err != nil || n == 0 {
			t.Fatalf("copy_file_range at %d: %d, %v", off, n, err)
		}
		off += int64(n)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.Calls("COPY_FILE_RANGE"); n < 4 {
		t.Errorf("the brick got %d COPY_FILE_RANGE for 4 calls: the kernel copied", n)
	}
	// One source fd per call, one destination fd for all four.
	if n := m.Calls("OPEN") - opens; n != 5 {
		t.Errorf("%d opens for 4 copies into one file, want 5 (4 sources, 1 kept destination)", n)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the clone holds %d bytes, differing from the %d copied (%v)", len(got), len(want), err)
	}
}
