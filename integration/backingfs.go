package integration

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
	"time"
)

// BackingFS is a filesystem made for bricks: a sparse image file in the run
// directory, loop-mounted under its node's directory. XFS ones
// are made with reflink=1, so a brick on them clones extents on
// COPY_FILE_RANGE, and can be frozen (fsfreeze) to stall a brick's I/O
// while it stays connected. The cluster's teardown thaws, unmounts and
// detaches every one, also after a failure.
type BackingFS struct {
	Node  int    // 1-based node whose bricks it holds
	Type  string // "xfs" (reflink=1) or "ext4"
	Dir   string // mount point
	Image string // backing image file

	frozen bool // GUARDED_BY(Cluster.mu)
}

func (f *BackingFS) String() string { return fmt.Sprintf("%s %s", f.Type, f.Dir) }

// MakeFS makes a filesystem of fstype ("xfs" or "ext4") of sizeMiB on node
// n and mounts it. XFS needs at least 300 MiB.
func (c *Cluster) MakeFS(t T, n int, fstype string, sizeMiB int) *BackingFS {
	t.Helper()
	RequireRoot(t)
	var mkfs []string
	switch fstype {
	case "xfs":
		needTool(t, "mkfs.xfs", "xfsprogs")
		mkfs = []string{"mkfs.xfs", "-q", "-m", "reflink=1"}
	case "ext4":
		needTool(t, "mkfs.ext4", "e2fsprogs")
		mkfs = []string{"mkfs.ext4", "-q", "-F"}
	default:
		t.Fatalf("MakeFS: filesystem type %q; want xfs or ext4", fstype)
	}
	c.mu.Lock()
	c.seq++
	name := fmt.Sprintf("fs%d-%s", c.seq, fstype)
	c.mu.Unlock()
	f := &BackingFS{Node: n, Type: fstype,
		Dir:   filepath.Join(c.node(n).dir, name),
		Image: filepath.Join(c.node(n).dir, name+".img")}
	img, err := os.Create(f.Image)
	if err == nil {
		err = img.Truncate(int64(sizeMiB) << 20)
		if cerr := img.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("MakeFS: image: %v", err)
	}
	if out, err := run(2*time.Minute, mkfs[0], append(mkfs[1:], f.Image)...); err != nil {
		t.Fatalf("MakeFS: %s %s: %v: %s", mkfs[0], f.Image, err, out)
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		t.Fatalf("MakeFS: %v", err)
	}
	// Recorded before the mount, so teardown unmounts it; a loop mount
	// detaches its device when unmounted (autoclear), also after a lazy
	// unmount of a run that died.
	c.mu.Lock()
	c.fss = append(c.fss, f)
	c.mu.Unlock()
	if out, err := run(30*time.Second, "mount", "-o", f.mountOpts(), f.Image, f.Dir); err != nil {
		t.Fatalf("MakeFS: mount -o loop %s on %s: %v: %s", f.Image, f.Dir, err, out)
	}
	t.Logf("made %s (%d MiB) on node %d", f, sizeMiB, n)
	return f
}

// Freeze freezes f (fsfreeze): every write and sync on it blocks until
// Thaw, while the brick process stays up and answers pings.
func (c *Cluster) Freeze(t T, f *BackingFS) {
	t.Helper()
	c.mu.Lock()
	f.frozen = true // set first: teardown thaws even if fsfreeze was half done
	c.mu.Unlock()
	if out, err := run(30*time.Second, "fsfreeze", "--freeze", f.Dir); err != nil {
		t.Fatalf("fsfreeze --freeze %s: %v: %s", f.Dir, err, out)
	}
}

// Thaw undoes Freeze.
func (c *Cluster) Thaw(t T, f *BackingFS) {
	t.Helper()
	if err := c.thaw(f); err != nil {
		t.Fatalf("%v", err)
	}
}

func (c *Cluster) thaw(f *BackingFS) error {
	c.mu.Lock()
	frozen := f.frozen
	c.mu.Unlock()
	if !frozen {
		return nil
	}
	if out, err := run(30*time.Second, "fsfreeze", "--unfreeze", f.Dir); err != nil && !strings.Contains(out, "Invalid argument") {
		return fmt.Errorf("fsfreeze --unfreeze %s: %v: %s", f.Dir, err, out)
	}
	c.mu.Lock()
	f.frozen = false
	c.mu.Unlock()
	return nil
}

// mountOpts: ext4 goes read-only on an error (as Debian's bricks are
// usually mounted), so BreakFS can make it read-only under the brick.
func (f *BackingFS) mountOpts() string {
	if f.Type == "ext4" {
		return "loop,errors=remount-ro"
	}
	return "loop"
}

// fillerName is the file FillFS fills a filesystem with, beside its bricks.
const fillerName = "brickfs-filler"

// FillFS fills f until writes to it fail with ENOSPC: a full brick
// filesystem. UnfillFS gives the space back.
func (c *Cluster) FillFS(t T, f *BackingFS) {
	t.Helper()
	// 1 MiB blocks, then 4 KiB ones for what is left.
	for i, bs := range []string{"1M", "4k"} {
		out, err := run(5*time.Minute, "dd", "if=/dev/zero", "of="+filepath.Join(f.Dir, fmt.Sprintf("%s.%d", fillerName, i)), "bs="+bs, "conv=fsync")
		if err == nil || !strings.Contains(out, "No space left") {
			t.Fatalf("FillFS %s: dd bs=%s ended without ENOSPC: %v: %s", f, bs, err, out)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(f.Dir, &st); err == nil {
		t.Logf("filled %s: %d KiB free", f, st.Bavail*uint64(st.Bsize)>>10)
	}
}

// UnfillFS removes what FillFS wrote.
func (c *Cluster) UnfillFS(t T, f *BackingFS) {
	t.Helper()
	for i := 0; i < 2; i++ {
		if err := os.Remove(filepath.Join(f.Dir, fmt.Sprintf("%s.%d", fillerName, i))); err != nil && !os.IsNotExist(err) {
			t.Fatalf("UnfillFS %s: %v", f, err)
		}
	}
	t.Logf("gave %s its space back", f)
}

// BreakFS makes the ext4 filesystem f go read-only under its users, as on a
// disk error (ext4's trigger_fs_error with errors=remount-ro): every write
// fails with EROFS until RepairFS.
func (c *Cluster) BreakFS(t T, f *BackingFS) {
	t.Helper()
	if f.Type != "ext4" {
		t.Fatalf("BreakFS: %s is not ext4", f)
	}
	dev, err := run(30*time.Second, "findmnt", "-no", "SOURCE", f.Dir)
	if err != nil {
		t.Fatalf("BreakFS: findmnt %s: %v: %s", f.Dir, err, dev)
	}
	trigger := filepath.Join("/sys/fs/ext4", filepath.Base(strings.TrimSpace(dev)), "trigger_fs_error")
	if err := os.WriteFile(trigger, []byte("brickfs test: disk error\n"), 0o200); err != nil {
		t.Fatalf("BreakFS: %v", err)
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "brickfs-probe"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("BreakFS: a write to %s after the error: %v, want EROFS", f, err)
	}
	t.Logf("%s is read-only after a filesystem error", f)
}

// RepairFS unmounts the broken f (nothing may use it: stop its bricks
// first), checks it and mounts it again.
func (c *Cluster) RepairFS(t T, f *BackingFS) {
	t.Helper()
	if out, err := run(time.Minute, "umount", f.Dir); err != nil {
		t.Fatalf("RepairFS: umount %s: %v: %s", f.Dir, err, out)
	}
	// e2fsck: 0 clean, 1 errors corrected, 2 corrected, reboot advised.
	out, err := run(5*time.Minute, "e2fsck", "-fy", f.Image)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() <= 2) {
		t.Fatalf("RepairFS: e2fsck %s: %v: %s", f.Image, err, out)
	}
	if out, err := run(30*time.Second, "mount", "-o", f.mountOpts(), f.Image, f.Dir); err != nil {
		t.Fatalf("RepairFS: mount %s: %v: %s", f.Dir, err, out)
	}
	t.Logf("repaired and mounted %s again", f)
}

// Used is the space in use on f, in bytes (what df shows as Used).
func (f *BackingFS) Used(t T) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(f.Dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", f.Dir, err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// thawAll thaws every frozen filesystem: first in teardown, as a brick
// blocked on a frozen filesystem cannot even be killed.
func (c *Cluster) thawAll() {
	c.mu.Lock()
	fss := append([]*BackingFS(nil), c.fss...)
	c.mu.Unlock()
	for _, f := range fss {
		if err := c.thaw(f); err != nil {
			c.t.Errorf("teardown: %v", err)
		}
	}
}

// removeFSs unmounts every filesystem MakeFS made (which detaches its
// loop device), once no process uses them.
func (c *Cluster) removeFSs() {
	c.mu.Lock()
	fss := c.fss
	c.fss = nil
	c.mu.Unlock()
	for i := len(fss) - 1; i >= 0; i-- {
		f := fss[i]
		if !mounted(f.Dir) {
			continue
		}
		if out, err := run(time.Minute, "umount", f.Dir); err != nil {
			c.t.Errorf("teardown: umount %s: %v: %s; lazy unmount", f.Dir, err, out)
			run(30*time.Second, "umount", "-l", f.Dir)
		}
	}
}

// Extents sums the extents of a file on a brick's filesystem as filefrag
// -v lists them: the bytes it has allocated and how many of them are
// shared with another file (reflinked).
func Extents(t T, path string) (allocated, shared int64) {
	t.Helper()
	needTool(t, "filefrag", "e2fsprogs")
	out, err := run(time.Minute, "filefrag", "-s", "-v", "-b4096", path)
	if err != nil {
		t.Fatalf("filefrag -s -v %s: %v: %s", path, err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		// "   0:        0..    2047:         24..      2071:   2048:             last,shared,eof"
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 5 {
			continue
		}
		if _, err := strconv.Atoi(strings.TrimSpace(fields[0])); err != nil {
			continue
		}
		blocks, err := strconv.ParseInt(strings.TrimSpace(fields[3]), 10, 64)
		if err != nil {
			t.Fatalf("filefrag -s -v %s: cannot read %q", path, sc.Text())
		}
		allocated += blocks * 4096
		if strings.Contains(fields[len(fields)-1], "shared") {
			shared += blocks * 4096
		}
	}
	return allocated, shared
}
