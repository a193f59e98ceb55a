package fuse

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// mountMem mounts the filesystem over m in this process.
func mountMem(t *testing.T, m *foptest.Mem) (string, *FS) {
	t.Helper()
	return mountVolume(t, memVolume{m}, Options{})
}

// mountVolume mounts the filesystem over vol with opts (1 s caches).
func mountVolume(t *testing.T, vol Volume, opts Options) (string, *FS) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		msg := "needs root and /dev/fuse (modprobe fuse) to mount"
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_FUSE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
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

// holeyVolume is an in-memory brick that answers SEEK as a filesystem
// with 4 KiB blocks does (a block of zeros is a hole), records the size
// of each COPY_FILE_RANGE, and takes delay per MiB copied (a brick that
// copies instead of cloning).
type holeyVolume struct {
	memVolume
	delay time.Duration
	mu    sync.Mutex
	sizes []uint64
}

func (v *holeyVolume) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	data, _ := v.Mem.Data(f.GFID)
	size := uint64(len(data))
	if off >= size {
		return 0, nil, &fop.OpError{Fop: "SEEK", Errno: syscall.ENXIO}
	}
	for b := off &^ 4095; b < size; b += 4096 {
		zero := bytes.Count(data[b:min(b+4096, size)], []byte{0}) == int(min(4096, size-b))
		if zero == (what == fop.SeekHole) {
			return max(b, off), nil, nil
		}
	}
	if what == fop.SeekHole {
		return size, nil, nil
	}
	return 0, nil, &fop.OpError{Fop: "SEEK", Errno: syscall.ENXIO}
}

func (v *holeyVolume) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	v.mu.Lock()
	v.sizes = append(v.sizes, size)
	v.mu.Unlock()
	time.Sleep(v.delay * time.Duration(size>>20))
	return v.Mem.CopyFileRange(ctx, in, offIn, out, offOut, size, flags, xd)
}

func (v *holeyVolume) copies() []uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]uint64(nil), v.sizes...)
}

// With copy-offload=auto (the default) only the source's data ranges go
// to the bricks; its holes become holes (punched, the size grown by one
// written byte), so bricks that copy in their kernel never fill them.
// copy-offload=bricks sends the range as asked; kernel sends nothing.
func TestMemCopyFileRangePolicy(t *testing.T) {
	src := make([]byte, 4<<20)
	copy(src, bytes.Repeat([]byte("a"), 1<<20))
	copy(src[3<<20:], bytes.Repeat([]byte("b"), 1<<20-4096)) // a hole at the very end too
	for _, tc := range []struct {
		policy string
		want   []uint64
	}{
		{"", []uint64{1 << 20, 1<<20 - 4096}},
		{OffloadBricks, []uint64{4 << 20}},
		{OffloadKernel, nil},
	} {
		v := &holeyVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}}
		dir, _ := mountVolume(t, v, Options{CopyOffload: tc.policy})
		if err := os.WriteFile(filepath.Join(dir, "src"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		discards := v.Calls("DISCARD")
		copyAll(t, filepath.Join(dir, "src"), filepath.Join(dir, "dst"), 0)
		if got, _ := os.ReadFile(filepath.Join(dir, "dst")); !bytes.Equal(got, src) {
			t.Errorf("policy %q: the copy differs from its source (%d bytes)", tc.policy, len(got))
		}
		if got := v.copies(); !slices.Equal(got, tc.want) {
			t.Errorf("policy %q: COPY_FILE_RANGE of %v bytes, want %v", tc.policy, got, tc.want)
		}
		if holes := v.Calls("DISCARD") - discards; tc.policy == "" && holes != 2 {
			t.Errorf("policy auto: %d holes punched, want the source's 2", holes)
		}
	}
}

// Once the bricks turn out to copy rather than clone (a call slower than
// 1 GiB/s), copy-offload=auto cuts the next calls into that file to
// 8 MiB, which bounds how long other clients of those bricks wait.
func TestMemCopyFileRangeSlowBricks(t *testing.T) {
	v := &holeyVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}, delay: 3 * time.Millisecond}
	dir, _ := mountVolume(t, v, Options{})
	if err := os.WriteFile(filepath.Join(dir, "src"), bytes.Repeat([]byte("c"), 96<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	copyAll(t, filepath.Join(dir, "src"), filepath.Join(dir, "dst"), 0)
	got := v.copies()
	if len(got) < 2 || got[0] != cloneChunk {
		t.Fatalf("COPY_FILE_RANGE of %v bytes; want 64 MiB first", got)
	}
	for _, n := range got[1:] {
		if n > slowChunk {
			t.Errorf("a call of %d bytes after the bricks were found copying; want at most %d (calls %v)", n, slowChunk, got)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "dst")); !bytes.Equal(b, bytes.Repeat([]byte("c"), 96<<20)) {
		t.Error("the copy differs from its source")
	}
}
