package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cloneBackends lists the backend files that hold name's data on each
// brick of volume: the file itself where it is not a linkto file, and for
// a sharded file its blocks in .shard.
func (c *Cluster) cloneBackends(t *testing.T, volume, name string) map[BrickInfo][]string {
	t.Helper()
	out := map[BrickInfo][]string{}
	var gfid string
	bricks := c.Bricks(t, volume)
	for _, b := range bricks {
		p := filepath.Join(b.Path, name)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			continue
		}
		if g, err := BackendGFID(p); err == nil {
			gfid = g
		}
		if _, link := isLinktoFile(p); link {
			continue
		}
		out[b] = []string{p}
	}
	if gfid == "" {
		return out
	}
	// A sharded file's blocks may be on any replica set.
	for _, b := range bricks {
		blocks, _ := filepath.Glob(filepath.Join(b.Path, ".shard", gfid+".*"))
		for _, p := range blocks {
			if _, link := isLinktoFile(p); !link {
				out[b] = append(out[b], p)
			}
		}
	}
	return out
}

// cloneBlockSize is the XFS block size of MakeFS's filesystems.
const cloneBlockSize = 4096

// TestCloneReflink: on bricks on XFS with reflink=1, `brickfs clone` and
// `qemu-img convert -C` through a brickfs mount make clones that share
// their source's blocks on every brick (filefrag shows every extent of
// the clone shared) and take next to no space (df), on a replica 3, a
// sharded replica 3 and a 2x3 volume; with one brick on ext4 that brick
// holds a full copy and the clone is as correct. Every clone reads
// identical to its source through the native client, and nothing is left
// to heal. The native client's cp of the same file is timed beside them.
func TestCloneReflink(t *testing.T) {
	c := sharedCluster(t)
	needTool(t, "qemu-img", "qemu-utils")
	bin := BrickfsBin(t)
	var xfs []*BackingFS
	for n := 1; n <= 3; n++ {
		xfs = append(xfs, c.MakeFS(t, n, "xfs", 2048))
	}
	ext4 := c.MakeFS(t, 3, "ext4", 1024)
	cases := []struct {
		name  string
		kind  Kind
		shard bool
		fss   []*BackingFS
	}{
		{"replica3", Replica3, false, xfs},
		{"sharded", Replica3, true, xfs},
		{"2x3", Dist2Replica3, false, append(append([]*BackingFS{}, xfs...), xfs...)},
		{"sharded-2x3", Dist2Replica3, true, append(append([]*BackingFS{}, xfs...), xfs...)},
		{"xfs+ext4", Replica3, false, []*BackingFS{xfs[0], xfs[1], ext4}},
	}
	const size = 128 << 20
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vol := nextVolumeName("reflink")
			c.CreateVolumeOn(t, vol, tc.kind, tc.fss...)
			if tc.shard {
				c.ShardVolume(t, vol, "16MB")
			}
			c.Start(t, vol)
			mnt := c.MountBrickfs(t, c.Spec(vol))
			dumpClientLog(t, c, mnt)
			native := c.MountNative(t, vol)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if r := FioFill(ctx, filepath.Join(mnt, "base.img"), "128M"); !r.Clean() {
				t.Fatalf("fill: %v\n%s", r, r.Stderr)
			}
			// A brick that missed part of the fill (a loaded machine can
			// make one miss its deadline) cannot take part in a clone of
			// what it lacks: AFR accuses it for the clone and the heal
			// copies the bytes, unshared (TestCloneBrickFault). Shared
			// extents are this test's subject: clone a healed source.
			baseFiles := []string{"base.img"}
			if tc.shard {
				baseFiles = c.ShardFiles(t, vol, baseFiles...)
			}
			if why := c.PendingHeal(t, vol, baseFiles); len(why) > 0 {
				t.Logf("the fill left base.img for heal (%v); cloning once it is healed", why)
				c.WaitHealed(t, vol, baseFiles, 3*time.Minute)
			}
			fss := map[*BackingFS]bool{}
			for _, f := range tc.fss {
				fss[f] = true
			}
			used := map[*BackingFS]int64{}
			for f := range fss {
				used[f] = f.Used(t)
			}

			// On 2x3 both clones' names hash to the other replica set:
			// brickfs clone and the mount (for qemu-img's copy_file_range)
			// must still put their data beside the source's.
			vm1, vm2 := "vm1.img", "vm2.img"
			if tc.kind.Subvolumes() > 1 {
				on := c.CheckDHT(t, vol, ".").Data["base.img"]
				layout := c.Layout(t, vol, ".")
				for k := 0; HashedSubvolume(layout, vm1) == on; k++ {
					vm1 = fmt.Sprintf("vm1-%d.img", k)
				}
				for k := 0; HashedSubvolume(layout, vm2) == on; k++ {
					vm2 = fmt.Sprintf("vm2-%d.img", k)
				}
			}
			start := time.Now()
			out, err := exec.CommandContext(ctx, bin, "clone", filepath.Join(mnt, "base.img"), filepath.Join(mnt, vm1)).CombinedOutput()
			if err != nil {
				t.Fatalf("brickfs clone: %v\n%s", err, out)
			}
			tookClone := time.Since(start)
			t.Logf("%s", strings.TrimSpace(string(out)))
			start = time.Now()
			if out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-C", "-f", "raw", "-O", "raw",
				filepath.Join(mnt, "base.img"), filepath.Join(mnt, vm2)).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img convert -C: %v\n%s", err, out)
			}
			tookQemu := time.Since(start)
			if tc.name == "replica3" {
				// qemu-img's calls past 2 GiB, at 128 MiB: 2 MiB chunks
				// each starting 512 bytes before a block. The mount cuts
				// them at blocks: one 4 KiB block per chunk is copied, the
				// rest shared.
				const chunk = 2 << 20
				copyChunks(t, filepath.Join(mnt, "base.img"), filepath.Join(mnt, "vm3.img"), size, chunk-512, chunk, os.O_TRUNC)
				for b, files := range c.cloneBackends(t, vol, "vm3.img") {
					a, s := Extents(t, files[0])
					if unshared := a - s; a < size || unshared > size/chunk*cloneBlockSize {
						t.Errorf("vm3.img (misaligned 2 MiB calls) on %s: %d bytes allocated, %d not shared; want at most one 4 KiB block per call", b, a, unshared)
					}
					t.Logf("vm3.img (misaligned 2 MiB calls) on %s: %d MiB allocated, %d KiB not shared", b.Name, a>>20, (a-s)>>10)
				}
				if got, n, err := Sum(filepath.Join(native, "vm3.img")); err != nil || n != size {
					t.Errorf("vm3.img through the native client: %d bytes, %v", n, err)
				} else if want, _, _ := Sum(filepath.Join(native, "base.img")); got != want {
					t.Errorf("vm3.img through the native client differs from its source")
				}
				if err := os.Remove(filepath.Join(mnt, "vm3.img")); err != nil {
					t.Error(err)
				}
			}
			grew := map[*BackingFS]int64{}
			for f := range fss {
				grew[f] = f.Used(t) - used[f]
			}
			start = time.Now()
			if out, err := exec.CommandContext(ctx, "cp", filepath.Join(native, "base.img"), filepath.Join(native, "cp.img")).CombinedOutput(); err != nil {
				t.Fatalf("cp through the native client: %v\n%s", err, out)
			}
			tookCp := time.Since(start)

			want, _, err := Sum(filepath.Join(native, "base.img"))
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{vm1, vm2, "cp.img"} {
				if got, n, err := Sum(filepath.Join(native, name)); err != nil || got != want || n != size {
					t.Errorf("%s through the native client: %d bytes, sha256 %.16s (%v); its source %.16s", name, n, got, err, want)
				}
			}
			for _, name := range []string{vm1, vm2} {
				switch {
				case tc.shard:
					c.CheckShardBackends(t, vol, tc.kind, name, mnt, native)
				case tc.kind.Subvolumes() == 1:
					c.CheckBackends(t, vol, tc.kind, name, mnt, native)
				}
			}
			if r := FioCheck(ctx, filepath.Join(native, vm1), "128M"); !r.Clean() {
				t.Errorf("verify vm1.img through the native client: %v\n%s", r, r.Stderr)
			}

			// Every extent of each clone is shared; on 2x3 each clone's
			// data is on its source's replica set with a linkto file
			// where its name hashes (CheckDHT checks the linkto).
			sameSet := func(name string) bool {
				if tc.kind.Subvolumes() == 1 {
					return true
				}
				p := c.CheckDHT(t, vol, ".")
				return p.Data[name] == p.Data["base.img"]
			}
			for _, name := range []string{vm1, vm2} {
				holders := c.cloneBackends(t, vol, name)
				// Blocks of a sharded 2x3 file are spread over both sets:
				// the bricks hold the file's bytes three times between them.
				spread := tc.shard && tc.kind.Subvolumes() > 1
				if !spread && len(holders) != tc.kind.Set() {
					t.Errorf("%s: data on %d bricks, want one replica set's %d", name, len(holders), tc.kind.Set())
				}
				cloned := sameSet(name)
				if !cloned {
					t.Errorf("%s's data is on another replica set than its source's: copied, not cloned", name)
				}
				var total int64
				for b, files := range holders {
					var alloc, shr int64
					for _, f := range files {
						a, s := Extents(t, f)
						alloc, shr = alloc+a, shr+s
					}
					total += alloc
					onXFS := !strings.HasPrefix(b.Path, ext4.Dir+"/")
					switch {
					case !spread && alloc < size:
						t.Errorf("%s on %s: %d bytes allocated, want all %d", name, b, alloc, size)
					case cloned && onXFS && shr != alloc:
						t.Errorf("%s on %s (XFS, reflink=1): %d of %d bytes shared; the brick copied instead of cloning", name, b, shr, alloc)
					case !onXFS && shr != 0:
						t.Errorf("%s on %s (ext4): %d bytes shared", name, b, shr)
					}
					t.Logf("%s on %s: %d MiB allocated, %d MiB shared", name, b.Name, alloc>>20, shr>>20)
				}
				if want := int64(size * tc.kind.Set()); total < want {
					t.Errorf("%s: the bricks hold %d bytes of it, want %d (every byte on each brick of a set)", name, total, want)
				}
			}
			for f, g := range grew {
				limit := int64(size / 4)
				if f == ext4 {
					limit = 2*size + size/4 // two full copies
				}
				if g > limit {
					t.Errorf("%s grew by %d MiB for two clones of a %d MiB file, want at most %d MiB", f, g>>20, size>>20, limit>>20)
				}
			}
			// Nothing hidden is left, on the mount or on a brick.
			dirs := []string{mnt}
			for _, b := range c.Bricks(t, vol) {
				dirs = append(dirs, b.Path)
			}
			for _, d := range dirs {
				ents, err := os.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), ".brickfs-clone") {
						t.Errorf("left behind in %s: %s", d, e.Name())
					}
				}
			}
			files := []string{vm1, vm2}
			if tc.shard {
				files = c.ShardFiles(t, vol, files...)
			}
			if why := c.PendingHeal(t, vol, files); len(why) > 0 {
				t.Errorf("clones left for heal: %v", why)
			}
			var growth []string
			for f, g := range grew {
				growth = append(growth, fmt.Sprintf("%s %+d MiB", filepath.Base(f.Dir), g>>20))
			}
			t.Logf("CLONE %s 128 MiB: brickfs clone %v, qemu-img convert -C %v, native cp %v; space used by both clones: %s",
				tc.name, tookClone.Round(time.Millisecond), tookQemu.Round(time.Millisecond), tookCp.Round(time.Millisecond), strings.Join(growth, ", "))
			for _, name := range []string{vm1, vm2, "cp.img", "base.img"} {
				if err := os.Remove(filepath.Join(mnt, name)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestCloneBrickFault: a clone made while a brick is down, and one during
// which a brick is killed, both succeed (quorum holds); the brick that
// missed them is accused for them, the self-heal daemon copies them to
// it, and then every brick holds each clone identical to its source, as
// the native client reads it. The bricks are on ext4 (no reflink):
// copies there take long enough to kill a brick in the middle.
func TestCloneBrickFault(t *testing.T) {
	c := sharedCluster(t)
	var fss []*BackingFS
	for n := 1; n <= 3; n++ {
		fss = append(fss, c.MakeFS(t, n, "ext4", 1024))
	}
	vol := nextVolumeName("clonefault")
	c.CreateVolumeOn(t, vol, Replica3, fss...)
	c.Start(t, vol)
	bin := BrickfsBin(t)
	// 1 MiB calls: the clone cannot end between the first call and the
	// kill below.
	mnt := c.MountBrickfs(t, c.Spec(vol), "copy-offload=bricks", "copy-chunk=1M")
	dumpClientLog(t, c, mnt)
	native := c.MountNative(t, vol)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if r := FioFill(ctx, filepath.Join(mnt, "base.img"), "256M"); !r.Clean() {
		t.Fatalf("fill: %v\n%s", r, r.Stderr)
	}
	want, _, err := Sum(filepath.Join(native, "base.img"))
	if err != nil {
		t.Fatal(err)
	}
	clone := func(name string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "clone", filepath.Join(mnt, "base.img"), filepath.Join(mnt, name))
		return cmd
	}
	check := func(name string, backends bool) {
		t.Helper()
		if got, _, err := Sum(filepath.Join(native, name)); err != nil || got != want {
			t.Errorf("%s through the native client: sha256 %.16s (%v), its source %.16s", name, got, err, want)
		}
		if backends {
			c.CheckBackends(t, vol, Replica3, name, mnt, native)
		}
	}

	// A brick down for the whole clone.
	c.KillBrick(t, vol, 1)
	if out, err := clone("vm1.img").CombinedOutput(); err != nil {
		t.Fatalf("clone with brick 1 down: %v\n%s", err, out)
	}
	check("vm1.img", false)
	if why := c.PendingHeal(t, vol, []string{"vm1.img"}); len(why) == 0 {
		t.Error("vm1.img was cloned with brick 1 down, and nothing marks it for heal")
	}
	c.RestartBrick(t, vol, 1)
	t.Logf("vm1.img healed in %v", c.WaitHealed(t, vol, []string{"vm1.img"}, 3*time.Minute).Round(time.Millisecond))
	check("vm1.img", true)

	// A brick killed once the bricks have copied a first round.
	log := c.MountLog(mnt)
	before := len(LogLines(log, "copy_file_range done by the bricks"))
	cmd := clone("vm2.img")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the first round of the clone", func() (bool, string) {
		n := len(LogLines(log, "copy_file_range done by the bricks"))
		return n > before, fmt.Sprintf("%d copies logged", n)
	})
	exited := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
		t.Fatalf("the clone ended before a brick could be killed during it (%v): the bricks cloned instead of copying?\n%s", werr, out.String())
	default:
	}
	c.KillBrick(t, vol, 0)
	<-exited
	if err := werr; err != nil {
		t.Fatalf("clone with brick 0 killed during it: %v\n%s", err, out.String())
	}
	rounds := len(LogLines(log, "copy_file_range done by the bricks")) - before
	t.Logf("vm2.img: %d copy rounds, brick 0 killed after the first", rounds)
	check("vm2.img", false)
	if why := c.PendingHeal(t, vol, []string{"vm2.img"}); len(why) == 0 {
		t.Error("brick 0 was killed during the clone of vm2.img, and nothing marks it for heal")
	}
	c.RestartBrick(t, vol, 0)
	t.Logf("vm2.img healed in %v", c.WaitHealed(t, vol, []string{"vm1.img", "vm2.img"}, 3*time.Minute).Round(time.Millisecond))
	check("vm2.img", true)
	if r := FioCheck(ctx, filepath.Join(native, "vm2.img"), "256M"); !r.Clean() {
		t.Errorf("verify vm2.img through the native client: %v\n%s", r, r.Stderr)
	}
}
