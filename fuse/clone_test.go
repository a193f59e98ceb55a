package fuse

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// mountMem mounts the filesystem over m in this process.
func mountMem(t *testing.T, m *foptest.Mem) (string, *FS) {
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
	return dir, fsys
}

// copy_file_range(2) on the mount reaches the brick as COPY_FILE_RANGE,
// through fds of its own opened without O_DIRECT (the application's are
// O_DIRECT here, as QEMU's cache=none), with one destination fd kept per
// destination file however many copies go into it.
func TestMemCopyFileRange(t *testing.T) {
	m := foptest.NewMem("mem-client-0")
	dir, _ := mountMem(t, m)
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

// copyAll copies src to dst with copy_file_range, opening dst with extra
// flags.
func copyAll(t *testing.T, src, dst string, extra int) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|extra, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	fi, _ := in.Stat()
	for off := int64(0); off < fi.Size(); {
		offIn, offOut := off, off
		n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, int(fi.Size()-off), 0)
		if err != nil || n == 0 {
			t.Fatalf("copy_file_range at %d: %d, %v", off, n, err)
		}
		off += int64(n)
	}
}

// Where the volume cannot copy (EXDEV: files on two replica sets; ENOSYS:
// bricks without the fop) the kernel copies, the kept destination fd is
// given back, and the kernel keeps asking: ENOSYS never reaches it (it
// would turn the fop off for the mount's life).
func TestMemCopyFileRangeLeftToKernel(t *testing.T) {
	m := foptest.NewMem("mem-client-0")
	dir, fsys := mountMem(t, m)
	want := bytes.Repeat([]byte("x"), 300<<10)
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, want, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, en := range []syscall.Errno{syscall.EXDEV, syscall.ENOSYS, syscall.ENOSYS} {
		m.Refuse("COPY_FILE_RANGE", en)
		calls := m.Calls("COPY_FILE_RANGE")
		dst := filepath.Join(dir, fmt.Sprintf("dst%d", i))
		copyAll(t, src, dst, 0)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
			t.Errorf("%v: the kernel's copy holds %d bytes", en, len(got))
		}
		if m.Calls("COPY_FILE_RANGE") == calls {
			t.Errorf("copy %d (after %v): the brick was not asked: the kernel stopped sending the fop", i, en)
		}
		if n := fsys.clones.count(); n != 0 {
			t.Errorf("%v: %d destination fds kept for copies that did not happen", en, n)
		}
	}
}

// A destination the application writes synchronously (O_DSYNC, QEMU's
// cache=directsync) is synced after the copy, as its writes would be.
func TestMemCopyFileRangeSyncDestination(t *testing.T) {
	m := foptest.NewMem("mem-client-0")
	dir, _ := mountMem(t, m)
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, bytes.Repeat([]byte("y"), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	syncs := m.Calls("FSYNC")
	copyAll(t, src, filepath.Join(dir, "dst"), syscall.O_DSYNC)
	if m.Calls("FSYNC") == syncs {
		t.Error("a copy into an O_DSYNC file was not synced")
	}
}
