package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newDistVolume creates and starts a distributed volume of kind on the
// shared cluster (bricks spread over its three nodes).
func newDistVolume(t *testing.T, prefix string, kind Kind, sets ...[2]string) (*Cluster, string) {
	t.Helper()
	c := sharedCluster(t)
	name := nextVolumeName(prefix)
	c.CreateVolume(t, name, kind)
	for _, kv := range sets {
		c.Set(t, name, kv[0], kv[1])
	}
	c.Start(t, name)
	t.Logf("volume %s: %s", name, kind)
	return c, name
}

// nextVolumeName is a volume name of the shared cluster not used before:
// prefix and a sequence number.
func nextVolumeName(prefix string) string {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.seq++
	return fmt.Sprintf("%s%d", prefix, shared.seq)
}

func distContent(name string) []byte { return bytes.Repeat([]byte(name+"\n"), 97) }

// distTree makes the same tree through one mount under top: files, a
// subdirectory, renames within and across directories (which leave
// linkto files), a hard link, an unlink. It returns the files it leaves
// and what each holds.
func distTree(t *testing.T, mnt, top string) map[string][]byte {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(mnt, top)
	must(os.MkdirAll(filepath.Join(root, "sub", "deeper"), 0o755))
	want := map[string][]byte{}
	for k := 0; k < 40; k++ {
		n := fmt.Sprintf("f%02d", k)
		must(os.WriteFile(filepath.Join(root, n), distContent(n), 0o644))
		want[filepath.Join(top, n)] = distContent(n)
	}
	for k := 0; k < 10; k++ {
		from, to := fmt.Sprintf("f%02d", k), fmt.Sprintf("renamed%02d", k)
		must(os.Rename(filepath.Join(root, from), filepath.Join(root, to)))
		want[filepath.Join(top, to)] = want[filepath.Join(top, from)]
		delete(want, filepath.Join(top, from))
	}
	// A rename over an existing file, one into a subdirectory, one of a
	// renamed (linked) name again.
	must(os.Rename(filepath.Join(root, "f10"), filepath.Join(root, "f11")))
	want[filepath.Join(top, "f11")] = want[filepath.Join(top, "f10")]
	delete(want, filepath.Join(top, "f10"))
	must(os.Rename(filepath.Join(root, "f12"), filepath.Join(root, "sub", "moved12")))
	want[filepath.Join(top, "sub", "moved12")] = want[filepath.Join(top, "f12")]
	delete(want, filepath.Join(top, "f12"))
	for k := 0; k < 5; k++ {
		from, to := fmt.Sprintf("renamed%02d", k), fmt.Sprintf("again%02d", k)
		must(os.Rename(filepath.Join(root, from), filepath.Join(root, to)))
		want[filepath.Join(top, to)] = want[filepath.Join(top, from)]
		delete(want, filepath.Join(top, from))
	}
	for k := 13; k < 16; k++ {
		n := fmt.Sprintf("f%02d", k)
		must(os.Link(filepath.Join(root, n), filepath.Join(root, "link"+n)))
		want[filepath.Join(top, "link"+n)] = want[filepath.Join(top, n)]
	}
	must(os.Remove(filepath.Join(root, "f16")))
	delete(want, filepath.Join(top, "f16"))
	must(os.Symlink("f17", filepath.Join(root, "sym17")))
	must(os.Rename(filepath.Join(root, "sub", "deeper"), filepath.Join(root, "deep2")))
	return want
}

// readTree reads every file under top through mnt, failing t on a
// duplicate or an unexpected name, and checks it against want.
func readTree(t *testing.T, who, mnt, top string, want map[string][]byte) {
	t.Helper()
	got := map[string]bool{}
	var walk func(rel string)
	walk = func(rel string) {
		f, err := os.Open(filepath.Join(mnt, rel))
		if err != nil {
			t.Errorf("%s: open %s: %v", who, rel, err)
			return
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			t.Errorf("%s: readdir %s: %v", who, rel, err)
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Errorf("%s: %s listed twice in %s", who, n, rel)
			}
			seen[n] = true
			p := filepath.Join(rel, n)
			fi, err := os.Lstat(filepath.Join(mnt, p))
			if err != nil {
				t.Errorf("%s: lstat %s: %v", who, p, err)
				continue
			}
			switch {
			case fi.IsDir():
				walk(p)
			case fi.Mode()&os.ModeSymlink != 0:
			default:
				if fi.Mode()&os.ModeSticky != 0 {
					t.Errorf("%s: %s shows as a linkto file (mode %v)", who, p, fi.Mode())
				}
				b, err := os.ReadFile(filepath.Join(mnt, p))
				if err != nil {
					t.Errorf("%s: read %s: %v", who, p, err)
					continue
				}
				w, ok := want[p]
				if !ok {
					t.Errorf("%s: unexpected file %s", who, p)
				} else if !bytes.Equal(b, w) {
					t.Errorf("%s: %s holds %d bytes that differ from the %d written", who, p, len(b), len(w))
				}
				got[p] = true
			}
		}
	}
	walk(top)
	for p := range want {
		if !got[p] {
			t.Errorf("%s: %s is missing", who, p)
		}
	}
}

// TestDistribute: on 3x1, 2x3 and 2x(2+1) volumes, brickfs and the native
// client build the same tree side by side; each reads back what the other
// wrote, and the bricks hold what DHT leaves: each file on the subvolume
// its name hashes to (or, after a rename, with a linkto file there naming
// where the data is), each directory on every subvolume with a layout
// covering the hash space, and directories brickfs makes get the layout
// the native client gives the same path.
func TestDistribute(t *testing.T) {
	for _, kind := range []Kind{Dist3, Dist2Replica3, Dist2Arbiter} {
		name := strings.ReplaceAll(strings.ReplaceAll(kind.String(), " ", ""), "replica", "r")
		t.Run(name, func(t *testing.T) {
			c, vol := newDistVolume(t, "dist", kind)
			bmnt := c.MountBrickfs(t, c.Spec(vol))
			dumpClientLog(t, c, bmnt)
			nmnt := c.MountNative(t, vol)

			// Through brickfs first: the root gets its layout from it.
			want := distTree(t, bmnt, "bfs")
			for k, v := range distTree(t, nmnt, "nat") {
				want[k] = v
			}
			readTree(t, "native", nmnt, ".", want)
			readTree(t, "brickfs", bmnt, ".", want)

			for _, dir := range []string{".", "bfs", "bfs/sub", "bfs/deep2", "nat", "nat/sub"} {
				pl := c.CheckDHT(t, vol, dir)
				// Files never renamed sit where their name hashes.
				for n, sub := range pl.Data {
					if strings.HasPrefix(n, "f") && n != "f11" && sub != pl.Hashed[n] {
						t.Errorf("%s/%s: on subvolume %d, hashes to %d", dir, n, sub, pl.Hashed[n])
					}
				}
			}
			// A directory brickfs makes gets the native client's layout for
			// the same path.
			for _, d := range []string{"same", "bfs/samesub", "z"} {
				if err := os.Mkdir(filepath.Join(bmnt, d), 0o755); err != nil {
					t.Fatal(err)
				}
				mine := c.Layout(t, vol, d)
				if _, err := os.Stat(filepath.Join(nmnt, d)); err != nil {
					t.Fatalf("native does not see %s: %v", d, err)
				}
				if err := os.Remove(filepath.Join(bmnt, d)); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 10*time.Second, "native to forget "+d, func() (bool, string) {
					_, err := os.Stat(filepath.Join(nmnt, d))
					return errors.Is(err, os.ErrNotExist), fmt.Sprint(err)
				})
				if err := os.Mkdir(filepath.Join(nmnt, d), 0o755); err != nil {
					t.Fatal(err)
				}
				theirs := c.Layout(t, vol, d)
				if fmt.Sprint(mine) != fmt.Sprint(theirs) {
					t.Errorf("layout of %s: brickfs %v, native %v", d, mine, theirs)
				}
				t.Logf("layout of %s: %v", d, mine)
			}

			// statfs is the sum over the subvolumes, as native gives it.
			var bs, ns syscall.Statfs_t
			if err := syscall.Statfs(bmnt, &bs); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Statfs(nmnt, &ns); err != nil {
				t.Fatal(err)
			}
			if bs.Blocks*uint64(bs.Frsize) != ns.Blocks*uint64(ns.Frsize) {
				t.Errorf("statfs: brickfs %d bytes, native %d", bs.Blocks*uint64(bs.Frsize), ns.Blocks*uint64(ns.Frsize))
			}

			// rmdir of a directory with files refuses and removes nothing;
			// rm -r works and leaves nothing on any brick.
			if err := syscall.Rmdir(filepath.Join(bmnt, "bfs")); err != syscall.ENOTEMPTY {
				t.Errorf("rmdir bfs: %v, want ENOTEMPTY", err)
			}
			if err := os.RemoveAll(filepath.Join(bmnt, "bfs")); err != nil {
				t.Fatalf("rm -r bfs: %v", err)
			}
			for _, set := range c.Subvolumes(t, vol) {
				for _, b := range set {
					if _, err := os.Lstat(filepath.Join(b.Path, "bfs")); err == nil {
						t.Errorf("bfs is left on %s", b)
					}
				}
			}
			readTree(t, "native after rm -r", nmnt, ".", filterPrefix(want, "nat"))
		})
	}
}

func filterPrefix(m map[string][]byte, prefix string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix+"/") {
			out[k] = v
		}
	}
	return out
}

// TestDistributePosix runs go-fuse's posixtest on a 2x3 volume through
// brickfs (and, for comparison, the native client).
func TestDistributePosix(t *testing.T) {
	c, vol := newDistVolume(t, "dposix", Dist2Replica3)
	runPosixtest(t, c, vol)
}

// namesOn returns a name in the root that hashes to each subvolume.
func namesOn(t *testing.T, c *Cluster, vol, prefix string) []string {
	t.Helper()
	l := c.Layout(t, vol, ".")
	out := make([]string, len(l))
	left := len(l)
	for k := 0; left > 0 && k < 10000; k++ {
		n := fmt.Sprintf("%s%d", prefix, k)
		if i := HashedSubvolume(l, n); i >= 0 && out[i] == "" {
			out[i] = n
			left--
		}
	}
	if left > 0 {
		t.Fatalf("no name of %s* hashes to every subvolume of %v", prefix, l)
	}
	return out
}

// TestDistributeFaults: on a 2x3 volume, fio verify writes to one file on
// each replica set while a brick of the first set hangs (SIGSTOP) and
// then crashes (SIGKILL): no error, no verify mismatch on either, and the
// stall of each is measured (the file on the other set should not wait).
// Then a whole replica set goes down: its files fail with ENOTCONN, the
// other set's keep working, and all is back once its bricks are.
func TestDistributeFaults(t *testing.T) {
	c, vol := newDistVolume(t, "dfault", Dist2Replica3)
	mnt := c.MountBrickfs(t, c.Spec(vol))
	dumpClientLog(t, c, mnt)
	if err := os.WriteFile(filepath.Join(mnt, "warm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	names := namesOn(t, c, vol, "disk")
	var files []string
	for _, n := range names {
		p := filepath.Join(mnt, n)
		if r := FioFill(context.Background(), p, repFileSize); !r.Clean() {
			t.Fatalf("fill %s: %v\n%s", n, r, r.Stderr)
		}
		files = append(files, p)
	}
	pl := c.CheckDHT(t, vol, ".")
	for i, n := range names {
		if pl.Data[n] != i {
			t.Fatalf("%s is on subvolume %d, want %d", n, pl.Data[n], i)
		}
	}
	run := func(what string, fault func()) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), repFioRun+3*time.Minute)
		defer cancel()
		res := make([]chan FioResult, len(files))
		for i, f := range files {
			res[i] = make(chan FioResult, 1)
			job := Fio{Name: fmt.Sprintf("%s-%d", what, i), File: f, Size: repFileSize, RW: "randwrite", IODepth: 4, Runtime: repFioRun, Verify: true}
			go func() { res[i] <- job.Run(ctx, filepath.Dir(f)) }()
		}
		time.Sleep(repFaultAfter)
		fault()
		for i := range files {
			r := <-res[i]
			t.Logf("STALL %s set%d=%.2fs (max write %v, %d writes)", what, i, r.MaxStall().Seconds(), r.MaxWrite.Round(time.Millisecond), r.WriteIOs)
			if !r.Clean() || r.WriteIOs == 0 {
				t.Errorf("fio on the file on set %d during %s: %v\n%s", i, what, r, r.Stderr)
			}
		}
	}
	run("stop", func() {
		start := time.Now()
		c.StopBrick(t, vol, 0)
		holdFault(start, repHold)
		c.ContBrick(t, vol, 0)
	})
	run("kill", func() {
		start := time.Now()
		c.KillBrick(t, vol, 1)
		holdFault(start, 3*time.Second)
		c.RestartBrick(t, vol, 1)
	})
	took := c.WaitHealed(t, vol, names[:1], repHealWait)
	t.Logf("healed in %v", took.Round(time.Millisecond))
	for _, f := range files {
		if r := FioCheck(context.Background(), f, repFileSize); !r.Clean() {
			t.Errorf("verify %s after heal: %v\n%s", f, r, r.Stderr)
		}
	}

	// The second replica set down altogether.
	for _, b := range c.Subvolumes(t, vol)[1] {
		c.KillBrick(t, vol, b.Index)
	}
	waitFor(t, 30*time.Second, "the file on the dead set to fail", func() (bool, string) {
		_, err := os.ReadFile(files[1])
		return errors.Is(err, syscall.ENOTCONN), fmt.Sprint(err)
	})
	// fio's own output goes outside the mount: its name could hash to the
	// dead set.
	check := Fio{Name: "check", File: files[0], Size: repFileSize, RW: "read", IODepth: 16, Verify: true}
	if r := check.Run(context.Background(), t.TempDir()); !r.Clean() {
		t.Errorf("the file on the live set while the other is down: %v\n%s", r, r.Stderr)
	}
	more := namesOn(t, c, vol, "new")
	if err := os.WriteFile(filepath.Join(mnt, more[0]), []byte("ok"), 0o644); err != nil {
		t.Errorf("create on the live set while the other is down: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, more[1]), []byte("no"), 0o644); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("create of a name hashing to the dead set: %v, want ENOTCONN", err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "dir-while-down"), 0o755); err != nil {
		t.Logf("mkdir while a set is down: %v", err)
	}
	if _, err := os.ReadDir(mnt); err == nil {
		t.Errorf("listing the root while a set is down succeeded; it would hide that set's files")
	}
	c.StartForce(t, vol)
	waitFor(t, 60*time.Second, "the file on the set that came back", func() (bool, string) {
		_, err := os.ReadFile(files[1])
		return err == nil, fmt.Sprint(err)
	})
	if r := FioCheck(context.Background(), files[1], repFileSize); !r.Clean() {
		t.Errorf("the file on the set that came back: %v\n%s", r, r.Stderr)
	}
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatalf("listing after the set came back: %v", err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	t.Logf("root after the fault: %v", got)
	c.CheckDHT(t, vol, ".")
	if _, err := os.Stat(filepath.Join(mnt, "dir-while-down")); err == nil {
		c.CheckDHT(t, vol, "dir-while-down")
	}
}

// TestShardDistributed: a sharded (`group virt`, 4 MB blocks) 2x3 volume.
// brickfs writes an image whose blocks land on both replica sets, each
// where DHT hashes its name in .shard; the native client reads it back
// and writes one brickfs reads; truncate and unlink leave no block behind
// on any set.
func TestShardDistributed(t *testing.T) {
	c := sharedCluster(t)
	shared.mu.Lock()
	shared.seq++
	vol := fmt.Sprintf("dshard%d", shared.seq)
	shared.mu.Unlock()
	c.CreateVolume(t, vol, Dist2Replica3)
	c.ShardVolume(t, vol, "4MB")
	c.Set(t, vol, "performance.stat-prefetch", "off")
	c.Start(t, vol)
	bmnt := c.MountBrickfs(t, c.Spec(vol), "attribute-timeout=0", "entry-timeout=0")
	dumpClientLog(t, c, bmnt)
	nmnt := c.MountNative(t, vol, "attribute-timeout=0", "entry-timeout=0", "negative-timeout=0", "direct-io-mode=enable")
	ctx := context.Background()

	if r := FioFill(ctx, filepath.Join(bmnt, "img"), "40M"); !r.Clean() {
		t.Fatalf("fill through brickfs: %v\n%s", r, r.Stderr)
	}
	if r := FioCheck(ctx, filepath.Join(nmnt, "img"), "40M"); !r.Clean() {
		t.Errorf("verify through native: %v\n%s", r, r.Stderr)
	}
	c.CheckShardDHT(t, vol, "img", bmnt, nmnt)
	spl := c.CheckDHT(t, vol, ".shard")
	on := map[int]int{}
	for _, sub := range spl.Data {
		on[sub]++
	}
	if len(on) < 2 {
		t.Errorf("the blocks of a 40 MiB image are all on one set: %v", on)
	}

	if r := FioFill(ctx, filepath.Join(nmnt, "nat"), "24M"); !r.Clean() {
		t.Fatalf("fill through native: %v\n%s", r, r.Stderr)
	}
	if r := FioCheck(ctx, filepath.Join(bmnt, "nat"), "24M"); !r.Clean() {
		t.Errorf("verify through brickfs: %v\n%s", r, r.Stderr)
	}
	c.CheckShardDHT(t, vol, "nat", bmnt, nmnt)

	// Truncate into block 2, then unlink: no block of either is left.
	gimg, err := BackendGFID(filepath.Join(c.Subvolumes(t, vol)[c.CheckDHT(t, vol, ".").Data["img"]][0].Path, "img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(bmnt, "img"), 10<<20); err != nil {
		t.Fatal(err)
	}
	c.CheckShardDHT(t, vol, "img", bmnt, nmnt)
	left := func(g string) []string {
		var out []string
		for _, set := range c.Subvolumes(t, vol) {
			for _, b := range set {
				m, _ := filepath.Glob(filepath.Join(b.Path, ".shard", g+".*"))
				out = append(out, m...)
				r, _ := filepath.Glob(filepath.Join(b.Path, ".shard", ".remove_me", "*"))
				out = append(out, r...)
			}
		}
		return out
	}
	for _, p := range left(gimg) {
		var k int
		fmt.Sscan(strings.TrimPrefix(filepath.Ext(p), "."), &k)
		if k > 2 {
			t.Errorf("block %s past the truncated end is left", p)
		}
	}
	if err := os.Remove(filepath.Join(bmnt, "img")); err != nil {
		t.Fatal(err)
	}
	// A rename over a sharded file kicks the background deletion.
	os.WriteFile(filepath.Join(bmnt, "newer"), []byte("n"), 0o644)
	if err := os.Rename(filepath.Join(bmnt, "newer"), filepath.Join(bmnt, "nat")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the blocks of removed files to be deleted on every set", func() (bool, string) {
		l := left(gimg)
		return len(l) == 0, fmt.Sprint(l)
	})
	c.CheckDHT(t, vol, ".shard")
}
