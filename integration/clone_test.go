package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// copyRange copies size bytes from src to dst with copy_file_range(2),
// through O_DIRECT fds as QEMU (cache=none) opens its disks, looping on
// short counts as cp and qemu-img do.
func copyRange(t *testing.T, src, dst string, size int64) {
	t.Helper()
	copyChunks(t, src, dst, size, size, size, os.O_TRUNC)
}

// copyChunks is copyRange in calls of at most chunk bytes, the first one
// of first bytes (qemu-img convert -C past 2 GiB: 2 MiB chunks starting
// 512 bytes before a block), without O_TRUNC unless trunc says so.
func copyChunks(t *testing.T, src, dst string, size, first, chunk int64, trunc int) {
	t.Helper()
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|trunc|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for off, end := int64(0), first; off < size; end = min(off+chunk, size) {
		for off < end {
			offIn, offOut := off, off
			n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, int(end-off), 0)
			if err != nil || n == 0 {
				t.Fatalf("copy_file_range %s -> %s at %d: %d, %v", src, dst, off, n, err)
			}
			off += int64(n)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCopyFileRange: copy_file_range(2) on a brickfs mount of a replica 3
// volume reaches every brick as COPY_FILE_RANGE (a reflink on XFS bricks,
// an in-kernel copy on these), as one data transaction per round: every
// brick holds the same copy, nothing is left to heal, and the native
// client reads it identical to its source. On a 2x3 volume a copy into an
// empty file on the other replica set moves that file beside its source
// first (data there, a linkto file where its name hashes) and is the
// bricks' too; one into a file with data there is left to the kernel
// (EXDEV) and is as correct.
func TestCopyFileRange(t *testing.T) {
	for _, kind := range []Kind{Replica3, Dist2Replica3} {
		t.Run(fmt.Sprint(kind.Subvolumes(), "x", kind.Set()), func(t *testing.T) {
			c, vol := newDistVolume(t, "cfr", kind)
			mnt := c.MountBrickfs(t, c.Spec(vol))
			dumpClientLog(t, c, mnt)
			native := c.MountNative(t, vol)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			const size = 64 << 20
			var names []string
			byKernel := 0
			for i := range 5 {
				src := fmt.Sprintf("base%d.img", i)
				if r := FioFill(ctx, filepath.Join(mnt, src), "64M"); !r.Clean() {
					t.Fatalf("fill %s: %v\n%s", src, r, r.Stderr)
				}
				// On 2x3 the first two copies go to a name on the source's
				// set, the others to one on the other set; the last one
				// into a file holding 2 MiB already.
				dst := fmt.Sprintf("clone%d.img", i)
				if kind.Subvolumes() > 1 {
					on := c.CheckDHT(t, vol, ".").Data[src]
					layout := c.Layout(t, vol, ".")
					for k := 0; ; k++ {
						dst = fmt.Sprintf("clone%d-%d.img", i, k)
						if (HashedSubvolume(layout, dst) == on) == (i < 2) {
							break
						}
					}
				}
				trunc := os.O_TRUNC
				if i == 4 {
					if r := FioFill(ctx, filepath.Join(mnt, dst), "2M"); !r.Clean() {
						t.Fatalf("fill %s: %v\n%s", dst, r, r.Stderr)
					}
					trunc = 0
					if kind.Subvolumes() > 1 {
						byKernel++
					}
				}
				start := time.Now()
				copyChunks(t, filepath.Join(mnt, src), filepath.Join(mnt, dst), size, size, size, trunc)
				t.Logf("CLONE %s: 64 MiB %s -> %s in %v", kind, src, dst, time.Since(start).Round(time.Millisecond))
				names = append(names, dst)
			}
			byBricks := len(LogLines(c.MountLog(mnt), "copy_file_range done by the bricks"))
			if byBricks != len(names)-byKernel {
				t.Errorf("%d copies done by the bricks, want %d (%d into a file with data on the other set is the kernel's)", byBricks, len(names)-byKernel, byKernel)
			}
			if kind.Subvolumes() > 1 {
				p := c.CheckDHT(t, vol, ".")
				for i, dst := range names[:4] {
					if src := fmt.Sprintf("base%d.img", i); p.Data[dst] != p.Data[src] {
						t.Errorf("%s's data is on set %d, its source %s's on %d: copied, not cloned", dst, p.Data[dst], src, p.Data[src])
					}
				}
			}
			for i, dst := range names {
				src := fmt.Sprintf("base%d.img", i)
				a, _, err := Sum(filepath.Join(native, src))
				if err != nil {
					t.Fatal(err)
				}
				b, _, err := Sum(filepath.Join(native, dst))
				if err != nil || a != b {
					t.Errorf("%s through the native client: sha256 %.16s (%v), its source %.16s", dst, b, err, a)
				}
				if kind.Subvolumes() == 1 {
					c.CheckBackends(t, vol, kind, dst, mnt, native)
				}
				if r := FioCheck(ctx, filepath.Join(native, dst), "64M"); !r.Clean() {
					t.Errorf("verify %s through the native client: %v\n%s", dst, r, r.Stderr)
				}
			}
			if why := c.PendingHeal(t, vol, names); len(why) > 0 {
				t.Errorf("clones left for heal: %v", why)
			}
		})
	}
}
