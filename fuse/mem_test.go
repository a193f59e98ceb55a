package fuse

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// memVolume is an in-memory brick as the filesystem's Volume.
type memVolume struct{ *foptest.Mem }

func (v memVolume) ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error {
	return fop.ZeroKeepSize(ctx, v.Mem, f, off, length)
}

// memPosixExcluded are the posixtest cases that test a brick's semantics
// the in-memory brick does not model, with why; the integration suite runs
// them against real bricks.
var memPosixExcluded = map[string]string{
	"FcntlFlockLocksFile": "POSIX locks are the bricks' (the in-memory brick grants every lock)",
	"FcntlFlockSetLk":     "POSIX locks are the bricks' (the in-memory brick grants every lock)",
}

// TestMemPosixtest mounts the filesystem in this process over an
// in-memory brick and runs go-fuse's posixtest suite: the FUSE layer alone,
// without GlusterFS. It needs root and /dev/fuse; in CI their absence
// fails the test.
func TestMemPosixtest(t *testing.T) {
	dir, _ := mountMem(t, foptest.NewMem("mem-client-0"))
	var names []string
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		skipped := false
		t.Run(name, func(t *testing.T) {
			if why, ok := memPosixExcluded[name]; ok {
				t.Skip(why)
			}
			defer func() { skipped = t.Skipped() }()
			d := dir + "/" + name
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, d)
		})
		if _, ok := memPosixSkipOK[name]; skipped && !ok {
			t.Errorf("posixtest %s skipped itself; only %v may", name, memPosixSkipOK)
		}
	}
}

// memPosixSkipOK are the cases that skip themselves here, as over real
// bricks (see integration's posixSkipOK).
var memPosixSkipOK = map[string]string{
	"Tmpfile":       "no O_TMPFILE fop",
	"RenameOpenDir": "fstat of an open directory a rename replaced: ENOENT, as the brick answers",
}

// The kernel's inode and open-file counts (the statedump's fuse tables)
// follow lookups, opens and releases.
func TestMemTables(t *testing.T) {
	var fsys *FS
	// Registered first, so it runs after the unmount: the root is
	// forgotten then, and was never counted.
	t.Cleanup(func() {
		if fsys == nil {
			return
		}
		if ino, _ := fsys.Tables(); ino != 0 {
			t.Errorf("after the unmount: %d inodes", ino)
		}
	})
	dir, fsys := mountMem(t, foptest.NewMem("mem-client-0"))
	var fs []*os.File
	for i := 0; i < 3; i++ {
		f, err := os.Create(dir + "/f" + string(rune('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	if ino, files := fsys.Tables(); ino != 3 || files != 3 {
		t.Errorf("3 files created and open: %d inodes, %d open", ino, files)
	}
	for _, f := range fs {
		f.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, files := fsys.Tables()
		if files == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing them: %d open", files)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Unlinked and closed, the files' inodes are forgotten by the kernel.
	for _, f := range fs {
		if err := os.Remove(f.Name()); err != nil {
			t.Fatal(err)
		}
	}
	for {
		ino, _ := fsys.Tables()
		if ino == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after unlinking them: %d inodes", ino)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
