package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// growFioRun is how long the fio job that runs through the whole of
// TestDistributeGrowShrink writes; the graph changes happen inside it.
const growFioRun = 100 * time.Second

// TestDistributeGrowShrink: a replica 3 volume grows and shrinks while
// brickfs has it mounted and fio writes a VM disk with verification:
// add-brick (the distribute layer takes over from the single replica set),
// rebalance fix-layout (new files land on the new set), rebalance (files
// move; the open disk is skipped, as force-migration off wants), a third
// set, a rebalance with force-migration on that moves a disk fio writes
// through brickfs, and remove-brick of the middle set (its files moved
// off, the set after it renumbered). Every file written before reads back
// the same through brickfs and the native client after each step, the
// bricks hold what DHT leaves, and fio sees no error and no mismatch.
func TestDistributeGrowShrink(t *testing.T) {
	c, vol := newDistVolume(t, "grow", Replica3)
	mnt := c.MountBrickfs(t, c.Spec(vol))
	dumpClientLog(t, c, mnt)
	native := c.MountNative(t, vol)
	want := distTree(t, mnt, "tree")
	check := func(step string) {
		t.Helper()
		readTree(t, "brickfs after "+step, mnt, "tree", want)
		readTree(t, "native after "+step, native, "tree", want)
		c.CheckDHT(t, vol, "tree")
		c.CheckDHT(t, vol, ".")
	}
	// Disks for the force-migration step, made now, when every file is on
	// the one set; one whose name hashes elsewhere once the volume grew
	// is picked then.
	var spares []string
	for i := range 20 {
		n := fmt.Sprintf("spare%02d.img", i)
		if err := os.WriteFile(filepath.Join(mnt, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		spares = append(spares, n)
	}

	rss0 := mountRSS(t, mnt)
	disk := filepath.Join(mnt, "vm.img")
	ctx, cancel := context.WithTimeout(context.Background(), growFioRun+5*time.Minute)
	defer cancel()
	job := Fio{Name: "grow", File: disk, Size: "64M", RW: "randwrite", IODepth: 4, Runtime: growFioRun, Verify: true}
	res := make(chan FioResult, 1)
	started := time.Now()
	go func() { res <- job.Run(ctx, t.TempDir()) }()
	waitFor(t, 60*time.Second, "fio to write", func() (bool, string) {
		fi, err := os.Stat(disk)
		return err == nil && fi.Size() > 0, fmt.Sprint(err)
	})

	applied := func(what string, words ...string) {
		t.Helper()
		waitFor(t, 60*time.Second, "brickfs to apply "+what, func() (bool, string) {
			lines := LogLines(c.MountLog(mnt), words...)
			return len(lines) > 0, "no log line with " + strings.Join(words, " ")
		})
	}

	// 1. add-brick: a second replica set.
	c.AddBrick(t, vol)
	applied("add-brick", "grew from one subvolume to 2")
	check("add-brick")
	st := c.Rebalance(t, vol, true)
	t.Logf("fix-layout: %+v", st)
	var fresh []string
	for i := range 24 {
		n := fmt.Sprintf("new%02d", i)
		p := filepath.Join(mnt, "tree", n)
		if err := os.WriteFile(p, distContent(n), 0o644); err != nil {
			t.Fatal(err)
		}
		want[filepath.Join("tree", n)] = distContent(n)
		fresh = append(fresh, n)
	}
	pl := c.CheckDHT(t, vol, "tree")
	onNew := 0
	for _, n := range fresh {
		if pl.Data[n] == 1 {
			onNew++
		}
	}
	if onNew == 0 {
		t.Errorf("after fix-layout no new file landed on the new replica set: %v", pl.Data)
	}
	t.Logf("after fix-layout %d of %d new files are on the new set", onNew, len(fresh))

	// 2. rebalance: files move to where their names hash; the disk fio
	// holds open is skipped (force-migration off).
	st = c.Rebalance(t, vol, false)
	t.Logf("rebalance: %+v", st)
	if st.Files == 0 {
		t.Errorf("the rebalance moved no file: %+v", st)
	}
	check("rebalance")

	// 3. a third replica set, and a rebalance with force-migration on
	// while fio writes, through brickfs, a disk that must move.
	c.AddBrick(t, vol)
	applied("the second add-brick", "subvolume "+vol+"-replicate-2 added")
	c.Rebalance(t, vol, true)
	root := c.Layout(t, vol, ".")
	now := c.CheckDHT(t, vol, ".")
	var moving string
	for _, n := range spares {
		if HashedSubvolume(root, n) != now.Data[n] {
			moving = n
			break
		}
	}
	if moving == "" {
		t.Fatalf("no spare disk hashes away from where it is: layout %v, placement %v", root, now.Data)
	}
	mdisk := filepath.Join(mnt, moving)
	// Sized first, so fio writes the file in place instead of making it
	// again (where its name hashes now).
	if err := os.Truncate(mdisk, 64<<20); err != nil {
		t.Fatal(err)
	}
	if r := FioFill(ctx, mdisk, "64M"); !r.Clean() {
		t.Fatalf("fill %s: %v\n%s", moving, r, r.Stderr)
	}
	c.Set(t, vol, "cluster.force-migration", "on")
	// fio writes the disk for longer than the rebalance takes, so the
	// daemon meets it open.
	mjob := Fio{Name: "moving", File: mdisk, Size: "64M", RW: "randwrite", IODepth: 4, Runtime: 45 * time.Second, Verify: true}
	mres := make(chan FioResult, 1)
	mstart := time.Now()
	go func() { mres <- mjob.Run(ctx, t.TempDir()) }()
	time.Sleep(2 * time.Second)
	st = c.Rebalance(t, vol, false)
	rebalanced := time.Since(mstart)
	r := <-mres
	c.Set(t, vol, "cluster.force-migration", "off")
	where := c.CheckDHT(t, vol, ".").Data[moving]
	t.Logf("MIGRATE force-migration rebalance while fio wrote %s (hashed to set %d): %+v, done %v after fio started (fio ran %v); the disk is now on set %d; fio: %v, longest write %v; brickfs: %q",
		moving, HashedSubvolume(root, moving), st, rebalanced.Round(time.Second), r.Took.Round(time.Second), where, r, r.MaxWrite.Round(time.Millisecond),
		LogLines(c.MountLog(mnt), "migrat"))
	for _, l := range c.RebalanceLog(vol, moving) {
		t.Logf("MIGRATE daemon: %s", l)
	}
	if !r.Clean() || r.WriteIOs == 0 {
		t.Errorf("fio on the disk migrated while open: %v\n%s", r, r.Stderr)
	}
	if r := FioCheck(ctx, mdisk, "64M"); !r.Clean() {
		t.Errorf("verify %s through brickfs after its migration: %v\n%s", moving, r, r.Stderr)
	}
	if r := FioCheck(ctx, filepath.Join(native, moving), "64M"); !r.Clean() {
		t.Errorf("verify %s through the native client after its migration: %v\n%s", moving, r, r.Stderr)
	}
	check("the third set")

	// 4. remove-brick of a set fio's disk is not on (the middle one if
	// it can): its files move off, the sets after it are renumbered.
	gone := 1
	if c.CheckDHT(t, vol, ".").Data["vm.img"] == 1 {
		gone = 0
	}
	st = c.RemoveBrick(t, vol, gone)
	t.Logf("remove-brick of set %d: %+v", gone, st)
	applied("remove-brick commit", "is now named")
	// Every file is found by name through the mount that saw the commit:
	// also those whose linkto file was on the removed set (remove-brick
	// leaves them none where their names hash now, and the layout says a
	// miss there is final: brickfs no longer trusts such a miss after a
	// removal, and its lookup makes the linkto file, which CheckDHT then
	// finds). The kernel's cached names are dropped first, so each name
	// is a LOOKUP.
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0o200); err != nil {
		t.Fatalf("drop the kernel's cached names: %v", err)
	}
	for p := range want {
		if _, err := os.Lstat(filepath.Join(mnt, p)); err != nil {
			t.Errorf("lookup of %s after remove-brick: %v", p, err)
		}
	}
	check("remove-brick")
	for i := range 8 {
		n := fmt.Sprintf("after%02d", i)
		if err := os.WriteFile(filepath.Join(mnt, "tree", n), distContent(n), 0o644); err != nil {
			t.Fatalf("create after remove-brick: %v", err)
		}
		want[filepath.Join("tree", n)] = distContent(n)
	}
	check("files made after remove-brick")

	// Two more add-brick/remove-brick cycles (a set added, then removed
	// with force while still empty: brickfs made only directories there).
	for cycle := range 2 {
		added := fmt.Sprintf("subvolume %s-replicate-2 added", vol)
		before := len(LogLines(c.MountLog(mnt), added))
		c.AddBrick(t, vol)
		waitFor(t, 60*time.Second, "brickfs to add the set of cycle "+fmt.Sprint(cycle), func() (bool, string) {
			n := len(LogLines(c.MountLog(mnt), added))
			return n > before, fmt.Sprintf("%d additions logged", n)
		})
		c.RemoveEmptyBrick(t, vol, 2)
		waitFor(t, 60*time.Second, "brickfs to drop the set of cycle "+fmt.Sprint(cycle), func() (bool, string) {
			n := len(LogLines(c.MountLog(mnt), fmt.Sprintf("subvolume %s-replicate-2 removed", vol)))
			return n >= cycle+1, fmt.Sprintf("%d removals logged", n)
		})
	}
	check("three add-brick/remove-brick cycles")

	// A rebalance leaves files away from where their names hash with no
	// linkto file there (for a moment, or for good when its daemons
	// disagree on a directory's layout); brickfs's listing makes it (check
	// reads the tree through brickfs before CheckDHT looks at the bricks).
	if strays := LogLines(c.MountLog(mnt), "had no linkto file there"); len(strays) > 0 {
		t.Logf("STRAYS brickfs made %d linkto files a rebalance left out: %q", len(strays), strays)
	}
	r = <-res
	rss1 := mountRSS(t, mnt)
	t.Logf("GRAPH fio through add-brick x4, fix-layout x2, rebalance x3, remove-brick x3: %d writes in %v, longest write %v; brickfs RSS %.1f MiB before, %.1f MiB after",
		r.WriteIOs, time.Since(started).Round(time.Second), r.MaxWrite.Round(time.Millisecond), rss0, rss1)
	if !r.Clean() || r.WriteIOs == 0 {
		t.Errorf("fio through the graph changes: %v\n%s", r, r.Stderr)
	}
	if r := FioCheck(ctx, filepath.Join(native, "vm.img"), "64M"); !r.Clean() {
		t.Errorf("verify vm.img through the native client: %v\n%s", r, r.Stderr)
	}
}

// mountRSS is the resident memory of the FUSE daemon of mnt, in MiB.
func mountRSS(t *testing.T, mnt string) float64 {
	t.Helper()
	for _, pid := range pidsMatching(mnt) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			var kb float64
			if _, err := fmt.Sscanf(l, "VmRSS: %f kB", &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
