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

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

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
// with 4 KiB blocks does (a block of zeros is a hole), records each
// COPY_FILE_RANGE's source range, and takes delay per MiB copied (a brick
// that copies instead of cloning).
type holeyVolume struct {
	memVolume
	delay  time.Duration
	mu     sync.Mutex
	ranges [][2]uint64 // offset, size
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
	v.ranges = append(v.ranges, [2]uint64{offIn, size})
	v.mu.Unlock()
	time.Sleep(v.delay * time.Duration(size>>20))
	return v.Mem.CopyFileRange(ctx, in, offIn, out, offOut, size, flags, xd)
}

func (v *holeyVolume) copies() [][2]uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([][2]uint64(nil), v.ranges...)
}

// copy-offload=auto (the default) and bricks send the range as asked to
// bricks that clone; kernel sends nothing.
func TestMemCopyFileRangePolicy(t *testing.T) {
	src := make([]byte, 4<<20)
	copy(src, bytes.Repeat([]byte("a"), 1<<20))
	copy(src[3<<20:], bytes.Repeat([]byte("b"), 1<<20-4096))
	for _, tc := range []struct {
		policy string
		want   [][2]uint64
	}{
		{"", [][2]uint64{{0, 4 << 20}}},
		{OffloadBricks, [][2]uint64{{0, 4 << 20}}},
		{OffloadKernel, nil},
	} {
		v := &holeyVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}}
		dir, _ := mountVolume(t, v, Options{CopyOffload: tc.policy})
		if err := os.WriteFile(filepath.Join(dir, "src"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		copyAll(t, filepath.Join(dir, "src"), filepath.Join(dir, "dst"), 0)
		if got, _ := os.ReadFile(filepath.Join(dir, "dst")); !bytes.Equal(got, src) {
			t.Errorf("policy %q: the copy differs from its source (%d bytes)", tc.policy, len(got))
		}
		if got := v.copies(); !slices.Equal(got, tc.want) {
			t.Errorf("policy %q: COPY_FILE_RANGE of %v, want %v", tc.policy, got, tc.want)
		}
	}
}

// Once the bricks turn out to copy rather than clone (two calls in a row
// slower than 1 GiB/s and 100 ms), copy-offload=auto cuts the next calls
// into that file to 8 MiB, which bounds how long other clients of those
// bricks wait, and goes around the source's holes of 1 MiB or more (they
// become holes, not zeros the bricks write); smaller holes are copied.
func TestMemCopyFileRangeSlowBricks(t *testing.T) {
	v := &holeyVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}, delay: 3 * time.Millisecond}
	dir, _ := mountVolume(t, v, Options{})
	const mib = 1 << 20
	src := bytes.Repeat([]byte("c"), 160*mib)
	clear(src[136*mib : 144*mib])        // a big hole
	clear(src[148*mib : 148*mib+64<<10]) // a small one
	clear(src[152*mib:])                 // a hole at the end
	if err := os.WriteFile(filepath.Join(dir, "src"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	copyAll(t, filepath.Join(dir, "src"), filepath.Join(dir, "dst"), 0)
	got := v.copies()
	if len(got) < 3 || got[0] != [2]uint64{0, cloneChunk} || got[1] != [2]uint64{cloneChunk, cloneChunk} {
		t.Fatalf("COPY_FILE_RANGE of %v; want 64 MiB twice first", got)
	}
	copied := make([]bool, 160)
	for _, r := range got[2:] {
		if r[1] > slowChunk {
			t.Errorf("a call of %d bytes after the bricks were found copying; want at most %d (calls %v)", r[1], slowChunk, got)
		}
		for m := r[0] / mib; m < (r[0]+r[1]+mib-1)/mib; m++ {
			copied[m] = true
		}
	}
	for m := 136; m < 160; m++ {
		if copied[m] && (m < 144 || m >= 152) {
			t.Errorf("MiB %d, in a hole of the source, was sent to the bricks (calls %v)", m, got)
			break
		}
	}
	if !copied[148] {
		t.Errorf("the 64 KiB hole was gone around (calls %v); it is cheaper to copy", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "dst")); !bytes.Equal(b, src) {
		t.Error("the copy differs from its source")
	}
}

// Bricks that clone are not taken for bricks that copy because a small
// call (the 1 MiB at the start of a disk image) took a few milliseconds,
// or a large one a few tens (a reflink on replica 3); a copy on ext4 is.
func TestCopyingJudged(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		took time.Duration
		want bool
	}{
		{1 << 20, 3 * time.Millisecond, false},
		{1 << 20, 500 * time.Millisecond, false}, // too small to judge
		{64 << 20, 30 * time.Millisecond, false},
		{64 << 20, 90 * time.Millisecond, false}, // holds the bricks briefly enough
		{64 << 20, 250 * time.Millisecond, true},
		{8 << 20, 200 * time.Millisecond, false},
		{1 << 30, 500 * time.Millisecond, false}, // 2 GiB/s
		{1 << 30, 2 * time.Second, true},
	} {
		if got := copying(c.n, c.took); got != c.want {
			t.Errorf("%d bytes in %v: copying %v, want %v", c.n, c.took, got, c.want)
		}
	}
}

// A copy the volume refuses (EXDEV: two replica sets) logs no line about
// a kept brick fd: none was used.
func TestMemCopyFileRangeRefusedLogsNothing(t *testing.T) {
	m := foptest.NewMem("mem-client-0")
	core, logs := observer.New(zap.InfoLevel)
	dir, _ := mountVolume(t, memVolume{m}, Options{Log: zap.New(core)})
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Refuse("COPY_FILE_RANGE", syscall.EXDEV)
	copyAll(t, src, filepath.Join(dir, "dst"), 0)
	if n := logs.FilterMessageSnippet("cloned into").Len(); n != 0 {
		t.Errorf("%d lines about a kept fd for a copy the kernel made", n)
	}
	m.Refuse("COPY_FILE_RANGE", 0)
	copyAll(t, src, filepath.Join(dir, "dst2"), 0)
	if n := logs.FilterMessageSnippet("cloned into").Len(); n != 1 {
		t.Errorf("%d lines about a kept fd for one file cloned into, want 1", n)
	}
}

// Copies whose offsets are equally misaligned are cut at block
// boundaries so the middle can be a reflink; qemu-img's chunks past 2 GiB
// start 512 bytes before a block.
func TestReflinkable(t *testing.T) {
	const g = 1 << 31
	for _, tc := range []struct {
		in, out, length, want uint64
	}{
		{0, 0, 2 << 20, 2 << 20},                          // aligned
		{g - 2<<20, g - 2<<20, 2<<20 - 512, 2<<20 - 4096}, // qemu's last chunk below 2 GiB: the end left over
		{g - 512, g - 512, 2 << 20, 512},                  // past 2 GiB: the head alone
		{g, g, 2<<20 - 512, 2<<20 - 4096},                 // then the aligned part
		{g + 2<<20 - 4096, g + 2<<20 - 4096, 3584, 3584},  // and the tail, shorter than a block
		{512, 1024, 2 << 20, 2 << 20},                     // never reflinkable: as asked
		{4096, 8192, 100, 100},                            // short and aligned
	} {
		if got := reflinkable(tc.in, tc.out, tc.length); got != tc.want {
			t.Errorf("reflinkable(%d, %d, %d) = %d, want %d", tc.in, tc.out, tc.length, got, tc.want)
		}
	}
}
