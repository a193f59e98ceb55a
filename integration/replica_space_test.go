package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bricks on filesystems of their own that fill up or go read-only under
// them: one brick's failure is AFR's to absorb (the others take the
// writes and blame it, the VM sees nothing, heal follows once it is
// fixed); when too few bricks can take a write, the application gets
// the bricks' own errno, as from AFR.

// loggedOn reports whether the mount's log has a line with every word.
func loggedOn(e *repEnv, words ...string) bool {
	for _, l := range LogLines(e.c.MountLog(e.mnt), words[0]) {
		all := true
		for _, w := range words[1:] {
			all = all && strings.Contains(l, w)
		}
		if all {
			return true
		}
	}
	return false
}

// writeNew writes size bytes to a new file at path, then fsyncs and
// closes it, returning the first error.
func writeNew(path string, size int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n := 0; n < size && err == nil; n += len(buf) {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestReplicaFullBrick: brick 2's filesystem fills up (ENOSPC there while
// the others have room) under a verifying fio run that allocates (a new
// file): no error reaches fio, the others blame brick 2, and once the
// space is back the heal makes the copies identical. Then bricks 1 and 2
// are full (quorum cannot hold): a write fails with ENOSPC, AFR's errno,
// and so it does on a volume full everywhere. Nothing written before is
// lost.
func TestReplicaFullBrick(t *testing.T) {
	var fss []*BackingFS
	e := newRepEnvFS(t, "rfull", Replica3, false, func(c *Cluster) []*BackingFS {
		for n := 1; n <= 3; n++ {
			fss = append(fss, c.MakeFS(t, n, "xfs", 400))
		}
		// A brick whose filesystem is full kills itself at its next
		// health check (storage.health-check-interval, 30 s), as
		// GlusterFS's posix does when it cannot write its health_check
		// file: off here, so that what the bricks answer is ENOSPC, not
		// a brick gone down at a random moment (the down brick is
		// another test's subject). Set before the bricks start: set on
		// a running brick, it leaves the check thread already running.
		c.SetAtStart("rfull", "storage.health-check-interval", "0")
		return fss
	})
	e.fill("data")
	e.c.FillFS(t, fss[2])
	e.faultRun("full", filepath.Join(e.mnt, "data2"), repFioRun, func() {
		start := time.Now()
		e.requirePendingOn(2, "data2")
		holdFault(start, 5*time.Second)
		e.c.UnfillFS(t, fss[2])
	})
	if !loggedOn(e, "no space left on device", e.vol+"-client-2") {
		t.Errorf("brickfs never heard ENOSPC from brick 2 while its filesystem was full")
	}
	e.waitBrickUsed(2, 60*time.Second)
	e.healAndCheck("data", "data2")

	// Two of three full: no quorum for the write.
	e.c.FillFS(t, fss[1])
	e.c.FillFS(t, fss[2])
	if err := writeNew(filepath.Join(e.mnt, "nospace"), 16<<20); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a write that two of three bricks have no room for: %v, want ENOSPC", err)
	}
	// All full.
	e.c.FillFS(t, fss[0])
	if err := writeNew(filepath.Join(e.mnt, "nospace2"), 16<<20); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a write to a full volume: %v, want ENOSPC", err)
	}
	for i, f := range fss {
		e.c.UnfillFS(t, f)
		e.restartIfDown(i)
	}
	for _, n := range []string{"nospace", "nospace2"} {
		if err := os.Remove(filepath.Join(e.mnt, n)); err != nil && !os.IsNotExist(err) {
			t.Errorf("remove %s once there is room again: %v", n, err)
		}
	}
	for _, n := range []string{"data", "data2"} {
		if r := FioCheck(context.Background(), filepath.Join(e.mnt, n), repFileSize); !r.Clean() {
			t.Errorf("verify %s after the volume was full: %v\n%s", n, r, r.Stderr)
		}
	}
	e.healAndCheck("data", "data2")
}

// TestReplicaReadOnlyBrick: brick 2's ext4 filesystem goes read-only under
// it (a disk error with errors=remount-ro: every write fails with EROFS)
// during a verifying fio run: fio sees no error, the others blame brick
// 2; the filesystem is checked and mounted again, the brick restarted,
// and the heal makes the copies identical.
func TestReplicaReadOnlyBrick(t *testing.T) {
	var fss []*BackingFS
	e := newRepEnvFS(t, "rro", Replica3, false, func(c *Cluster) []*BackingFS {
		for n := 1; n <= 3; n++ {
			fss = append(fss, c.MakeFS(t, n, "ext4", 256))
		}
		return fss
	})
	file := e.fill("data")
	e.faultRun("ro", file, repFioRun, func() {
		start := time.Now()
		e.c.BreakFS(t, fss[2])
		e.requirePending(2)
		holdFault(start, 5*time.Second)
		// The brick may have stopped itself (its health check writes).
		if b := e.c.Brick(t, e.vol, 2); b.PID > 0 {
			e.c.KillBrick(t, e.vol, 2)
		} else {
			t.Logf("brick 2 stopped itself on the read-only filesystem")
		}
		e.c.RepairFS(t, fss[2])
		e.c.RestartBrick(t, e.vol, 2)
	})
	if !loggedOn(e, "read-only file system", e.vol+"-client-2") {
		t.Errorf("brickfs never heard EROFS from brick 2 while its filesystem was read-only")
	}
	e.waitBrickUsed(2, 60*time.Second)
	e.healAndCheck("data")
}
