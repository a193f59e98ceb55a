package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestShard runs brickfs on a replica-3 volume with `group virt` and 4 MB
// blocks, beside the native client, which is the oracle: what one writes
// the other reads back byte for byte, with the same size and allocation;
// the bricks hold what the native client would leave; the native client's
// data-loss bugs do not happen through brickfs.
func TestShard(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	c := NewCluster(t, 3)
	const vol = "shv"
	c.CreateVolume(t, vol, Replica3)
	c.ShardVolume(t, vol, "4MB")
	// The oracle must see what is on the bricks now: no md-cache in the
	// native client's graph (brickfs passes it by anyway), no page cache.
	c.Set(t, vol, "performance.stat-prefetch", "off")
	// A native open must reach the bricks when it is made (open-behind
	// defers it), so that a file it holds is open there.
	c.Set(t, vol, "performance.open-behind", "off")
	c.Start(t, vol)
	bmnt := c.MountBrickfs(t, c.Spec(vol), "attribute-timeout=0", "entry-timeout=0")
	dumpClientLog(t, c, bmnt)
	nmnt := c.MountNative(t, vol, "attribute-timeout=0", "entry-timeout=0", "negative-timeout=0", "direct-io-mode=enable")
	const mb = 1 << 20

	t.Run("BrickfsWritesNativeReads", func(t *testing.T) {
		p := filepath.Join(bmnt, "bw")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		// Golden vectors 3, 4 and 5's writes: inside block 0, across the
		// first boundary, and alone in block 3 (block 2 stays a hole).
		a := make([]byte, 100)
		b := make([]byte, 8192)
		d := make([]byte, 4096)
		rand.Read(a)
		rand.Read(b)
		rand.Read(d)
		for _, w := range []struct {
			off  int64
			data []byte
		}{{0, a}, {4*mb - 4096, b}, {13 * mb, d}} {
			if _, err := f.WriteAt(w.data, w.off); err != nil {
				t.Fatalf("write at %d: %v", w.off, err)
			}
		}
		f.Close()
		want := make([]byte, 13*mb+4096)
		copy(want, a)
		copy(want[4*mb-4096:], b)
		copy(want[13*mb:], d)
		for _, br := range c.Bricks(t, vol) {
			l, err := ReadShardLayout(br.Path, "bw")
			if err != nil {
				t.Fatal(err)
			}
			if l.BlockSize != "0x0000000000400000" || l.Size() != 13*mb+4096 {
				t.Errorf("brick %d: block size %s, file size %s", br.Index, l.BlockSize, l.FileSize)
			}
			if _, ok := l.Blocks[2]; ok || len(l.Blocks) != 2 {
				t.Errorf("brick %d holds blocks %v; want 1 and 3", br.Index, l.Blocks)
			}
			if st := backendStat(filepath.Join(br.Path, ".shard", l.GFID+".1")); st == nil || st.Mode != syscall.S_IFREG|0o640 {
				t.Errorf("block 1 on brick %d: %+v, want mode 0100640 like its base file", br.Index, st)
			}
			if st := backendStat(filepath.Join(br.Path, ".shard")); st == nil || st.Mode&0o7777 != 0o755 {
				t.Errorf(".shard on brick %d: %+v", br.Index, st)
			}
			if g, _ := BackendGFID(filepath.Join(br.Path, ".shard")); g != "be318638-e8a0-4c6d-977d-7a937aa84806" {
				t.Errorf(".shard on brick %d has gfid %s", br.Index, g)
			}
		}
		// Read through the native client only now: it makes an empty
		// block file for every hole it reads (reference §2.3).
		got, err := os.ReadFile(filepath.Join(nmnt, "bw"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the native client reads %d bytes (%v), not what brickfs wrote", len(got), err)
		}
		bst, nst := statOf(t, p), statOf(t, filepath.Join(nmnt, "bw"))
		if bst.Size != nst.Size || bst.Blocks != nst.Blocks {
			t.Errorf("brickfs stats %d bytes, %d blocks; native %d, %d", bst.Size, bst.Blocks, nst.Size, nst.Blocks)
		}
		c.CheckShardBackends(t, vol, Replica3, "bw", bmnt, nmnt)
	})

	t.Run("NativeWritesBrickfsReads", func(t *testing.T) {
		data := make([]byte, 10*mb+777)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(nmnt, "nw"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(bmnt, "nw"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("brickfs reads %d bytes (%v), not what the native client wrote", len(got), err)
		}
		// brickfs overwrites the middle; native reads the result.
		f, err := os.OpenFile(filepath.Join(bmnt, "nw"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		patch := bytes.Repeat([]byte{0x5a}, 6*mb)
		f.WriteAt(patch, 2*mb)
		f.Close()
		copy(data[2*mb:], patch)
		if got, _ := os.ReadFile(filepath.Join(nmnt, "nw")); !bytes.Equal(got, data) {
			t.Error("the native client reads brickfs's overwrite wrong")
		}
		c.CheckShardBackends(t, vol, Replica3, "nw", bmnt, nmnt)
	})

	t.Run("Truncate", func(t *testing.T) {
		data := make([]byte, 12*mb)
		rand.Read(data)
		p := filepath.Join(bmnt, "tr")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, step := range []int64{8 * mb, 4*mb + 1, 5 * mb, 20 * mb, 7 * mb, 0, 3 * mb} {
			if err := os.Truncate(p, step); err != nil {
				t.Fatalf("truncate to %d: %v", step, err)
			}
			// The expected contents: what is below both sizes stays.
			if int64(len(data)) > step {
				data = data[:step]
			} else {
				data = append(data, make([]byte, step-int64(len(data)))...)
			}
			for _, m := range []string{bmnt, nmnt} {
				got, err := os.ReadFile(filepath.Join(m, "tr"))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("after truncate to %d, %s reads %d bytes (%v), not the %d expected (native 10.3 empties the last block kept at a block multiple)",
						step, m, len(got), err, len(data))
				}
			}
		}
		c.CheckShardBackends(t, vol, Replica3, "tr", bmnt, nmnt)
		// Truncated away, the blocks are gone.
		l, _ := ReadShardLayout(c.Brick(t, vol, 0).Path, "tr")
		if len(l.Blocks) != 0 {
			t.Errorf("blocks left after truncating to 3 MiB: %v", l.Blocks)
		}
	})

	t.Run("AllocateAndPunch", func(t *testing.T) {
		p := filepath.Join(bmnt, "fa")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Fallocate(int(f.Fd()), 0, 0, 10*mb); err != nil {
			t.Fatalf("fallocate: %v", err)
		}
		f.WriteAt(bytes.Repeat([]byte{0xee}, 10*mb), 0)
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 3*mb, 2*mb); err != nil {
			t.Fatalf("punch: %v", err)
		}
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE, 7*mb, 2*mb); err != nil {
			t.Fatalf("zero range: %v", err)
		}
		// ZERO_RANGE|KEEP_SIZE across the first block boundary.
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, 2*mb+512*1024, 2*mb); err != nil {
			t.Fatalf("zero range keep size: %v", err)
		}
		want := bytes.Repeat([]byte{0xee}, 10*mb)
		clear(want[3*mb : 5*mb])
		clear(want[7*mb : 9*mb])
		clear(want[2*mb+512*1024 : 4*mb+512*1024])
		if got, err := os.ReadFile(filepath.Join(nmnt, "fa")); err != nil || !bytes.Equal(got, want) {
			t.Errorf("the native client reads %d bytes (%v), not the punched and zeroed file (native's own ZERO_RANGE zeroes nothing)", len(got), err)
		}
		c.CheckShardBackends(t, vol, Replica3, "fa", bmnt, nmnt)
	})

	t.Run("Namespace", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(bmnt, ".shard")); !errors.Is(err, syscall.EPERM) {
			t.Errorf("stat /.shard through brickfs: %v, want EPERM as the native client answers", err)
		}
		if _, err := os.Stat(filepath.Join(nmnt, ".shard")); !errors.Is(err, syscall.EPERM) {
			t.Logf("the native client answers %v for /.shard", err)
		}
		names, err := readNames(bmnt)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if n == ".shard" {
				t.Errorf("the root listing shows .shard: %v", names)
			}
		}
		if _, err := unix.Getxattr(filepath.Join(bmnt, "bw"), "trusted.glusterfs.shard.file-size", make([]byte, 64)); !errors.Is(err, unix.ENODATA) {
			t.Errorf("getxattr of the file size through brickfs: %v, want ENODATA", err)
		}
		if err := unix.Setxattr(filepath.Join(bmnt, "bw"), "trusted.glusterfs.shard.block-size", make([]byte, 8), 0); !errors.Is(err, syscall.EPERM) {
			t.Errorf("setxattr of the block size through brickfs: %v, want EPERM", err)
		}
	})

	t.Run("HardLinkAndUnlink", func(t *testing.T) {
		data := make([]byte, 18*mb)
		rand.Read(data)
		p := filepath.Join(bmnt, "ul")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := ReadShardLayout(c.Brick(t, vol, 0).Path, "ul")
		if err != nil || len(l.Blocks) != 4 {
			t.Fatalf("blocks %v, %v", l.Blocks, err)
		}
		if err := os.Link(p, filepath.Join(bmnt, "ul2")); err != nil {
			t.Fatal(err)
		}
		if st := statOf(t, filepath.Join(bmnt, "ul2")); st.Size != 18*mb || st.Nlink != 2 {
			t.Errorf("the link stats %d bytes, nlink %d", st.Size, st.Nlink)
		}
		os.Remove(p)
		if got, _ := os.ReadFile(filepath.Join(nmnt, "ul2")); !bytes.Equal(got, data) {
			t.Fatal("removing one of two names lost data")
		}
		// A file open elsewhere keeps its blocks after its last name goes.
		nf, err := os.Open(filepath.Join(nmnt, "ul2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(bmnt, "ul2")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1*mb)
		if _, err := nf.ReadAt(buf, 16*mb); err != nil || !bytes.Equal(buf, data[16*mb:17*mb]) {
			t.Errorf("the native client lost the blocks of a file it holds open: %v", err)
		}
		nf.Close()
		// Closed, the next deletion run removes them; a rename over a
		// sharded file kicks it.
		os.WriteFile(filepath.Join(bmnt, "victim"), make([]byte, 9*mb), 0o644)
		os.WriteFile(filepath.Join(bmnt, "newer"), []byte("n"), 0o644)
		vl, _ := ReadShardLayout(c.Brick(t, vol, 0).Path, "victim")
		if err := os.Rename(filepath.Join(bmnt, "newer"), filepath.Join(bmnt, "victim")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the blocks of removed files to be deleted", func() (bool, string) {
			var left []string
			for _, br := range c.Bricks(t, vol) {
				for _, g := range []string{l.GFID, vl.GFID} {
					m, _ := filepath.Glob(filepath.Join(br.Path, ".shard", g+".*"))
					left = append(left, m...)
				}
				m, _ := filepath.Glob(filepath.Join(br.Path, ".shard", ".remove_me", "*"))
				left = append(left, m...)
			}
			return len(left) == 0, fmt.Sprint(left)
		})
	})

	t.Run("TwoBrickfsMountsExtend", func(t *testing.T) {
		// Golden vector 13: native leaves 0x7000 for 16 KiB of data.
		other := c.MountBrickfs(t, c.Spec(vol), "attribute-timeout=0", "entry-timeout=0")
		p1, p2 := filepath.Join(bmnt, "ext"), filepath.Join(other, "ext")
		os.WriteFile(p1, nil, 0o644)
		fs := make([]*os.File, 2)
		for i, p := range []string{p1, p2} {
			f, err := os.OpenFile(p, os.O_RDWR|syscall.O_DIRECT, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs[i] = f
		}
		buf := alignedBuf(4096)
		for i := 0; i < 4; i++ {
			if _, err := fs[i%2].WriteAt(buf, int64(i)*4096); err != nil {
				t.Fatal(err)
			}
		}
		// And racing into fresh blocks from both.
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := alignedBuf(4096)
				if _, err := fs[i%2].WriteAt(b, int64(i+1)*4*mb+int64(i)*4096); err != nil {
					t.Errorf("racing write %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		want := int64(10)*4*mb + 9*4096 + 4096
		for _, m := range []string{bmnt, other, nmnt} {
			if st := statOf(t, filepath.Join(m, "ext")); st.Size != want {
				t.Errorf("%s stats %d bytes, want %d (two native clients over-count)", m, st.Size, want)
			}
		}
		if l, _ := ReadShardLayout(c.Brick(t, vol, 1).Path, "ext"); l.Size() != want {
			t.Errorf("the bricks record %s", l.FileSize)
		}
	})

	t.Run("FioVerifyBothWays", func(t *testing.T) {
		ctx := context.Background()
		if r := FioFill(ctx, filepath.Join(bmnt, "fio-b"), "40M"); !r.Clean() {
			t.Fatalf("fill through brickfs: %v\n%s", r, r.Stderr)
		}
		if r := FioCheck(ctx, filepath.Join(nmnt, "fio-b"), "40M"); !r.Clean() {
			t.Errorf("verify through native: %v\n%s", r, r.Stderr)
		}
		if r := FioFill(ctx, filepath.Join(nmnt, "fio-n"), "40M"); !r.Clean() {
			t.Fatalf("fill through native: %v\n%s", r, r.Stderr)
		}
		if r := FioCheck(ctx, filepath.Join(bmnt, "fio-n"), "40M"); !r.Clean() {
			t.Errorf("verify through brickfs: %v\n%s", r, r.Stderr)
		}
		c.CheckShardBackends(t, vol, Replica3, "fio-b", bmnt, nmnt)
	})

	t.Run("FailedDirectWriteNoLeak", func(t *testing.T) {
		p := filepath.Join(bmnt, "dleak")
		if err := os.WriteFile(p, make([]byte, 1*mb), 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := BackendGFID(filepath.Join(c.Brick(t, vol, 0).Path, "dleak"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR|syscall.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		// An extending O_DIRECT write whose length the bricks refuse.
		buf := alignedBuf(8192)
		if _, err := f.WriteAt(buf[:4096+100], 40*mb); err == nil {
			t.Fatal("an unaligned O_DIRECT write succeeded: the test shows nothing")
		}
		// What the kernel may do after it: truncate back to the size.
		if err := f.Truncate(1 * mb); err != nil {
			t.Fatal(err)
		}
		f.Close()
		for _, br := range c.Bricks(t, vol) {
			if m, _ := filepath.Glob(filepath.Join(br.Path, ".shard", g+".*")); len(m) > 0 {
				t.Errorf("blocks left on brick %d after a failed O_DIRECT write: %v (native 10.3 leaks them)", br.Index, m)
			}
		}
	})

	t.Run("BlockSizePerFile", func(t *testing.T) {
		// Golden vector 6: the block size is the file's, not the volume's.
		c.Set(t, vol, "features.shard-block-size", "64MB")
		p := filepath.Join(bmnt, "f64")
		waitFor(t, time.Minute, "new files to get 64 MB blocks", func() (bool, string) {
			os.Remove(p)
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				return false, err.Error()
			}
			l, err := ReadShardLayout(c.Brick(t, vol, 0).Path, "f64")
			return err == nil && l.BlockSize == "0x0000000004000000", fmt.Sprintf("%+v %v", l, err)
		})
		data := make([]byte, 70*mb)
		rand.Read(data)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c.Set(t, vol, "features.shard-block-size", "4MB")
		waitFor(t, time.Minute, "new files to get 4 MB blocks again", func() (bool, string) {
			q := filepath.Join(bmnt, "f4probe")
			os.Remove(q)
			if err := os.WriteFile(q, []byte("x"), 0o644); err != nil {
				return false, err.Error()
			}
			l, err := ReadShardLayout(c.Brick(t, vol, 0).Path, "f4probe")
			return err == nil && l.BlockSize == "0x0000000000400000", fmt.Sprintf("%+v %v", l, err)
		})
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		patch := bytes.Repeat([]byte{0x6b}, 4096)
		if _, err := f.WriteAt(patch, 70*mb); err != nil {
			t.Fatal(err)
		}
		f.Close()
		data = append(data, patch...)
		if got, err := os.ReadFile(filepath.Join(nmnt, "f64")); err != nil || !bytes.Equal(got, data) {
			t.Errorf("the native client reads %d bytes (%v) of the 64 MB-block file, not what brickfs wrote", len(got), err)
		}
		l, err := ReadShardLayout(c.Brick(t, vol, 1).Path, "f64")
		if err != nil || l.BlockSize != "0x0000000004000000" || len(l.Blocks) != 1 {
			t.Errorf("f64 on a brick: block size %s, blocks %v, %v; want 64 MB and block 1 only", l.BlockSize, l.Blocks, err)
		}
		c.CheckShardBackends(t, vol, Replica3, "f64", bmnt, nmnt)
	})

	// The image tools, as on an unsharded volume (brickfs_dropin_test.go).
	t.Run("QemuImg", func(t *testing.T) { testQemuImg(t, bmnt, nmnt) })
	t.Run("QemuIO", func(t *testing.T) { testQemuIO(t, bmnt, nmnt) })
	t.Run("CinderSnapshots", func(t *testing.T) { testCinderSnapshots(t, bmnt, nmnt) })
	t.Run("FallocateMatrix", func(t *testing.T) { testFallocateMatrix(t, c, bmnt) })

	t.Run("QemuImgConvertLarge", func(t *testing.T) {
		// A multi-GiB sparse image with data at its start, middle and
		// end, converted onto the volume with O_DIRECT.
		src := filepath.Join(c.Dir, "large-src.qcow2")
		mustRun(t, "qemu-img", "create", "-f", "qcow2", src, "3G")
		mustRun(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 9M", "-c", "write -P 0x22 1500M 5M", "-c", "write -P 0x33 3068M 4M", src)
		dst := filepath.Join(bmnt, "large.raw")
		mustRun(t, "qemu-img", "convert", "-t", "none", "-f", "qcow2", "-O", "raw", src, dst)
		mustRun(t, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", src, filepath.Join(nmnt, "large.raw"))
		bst, nst := statOf(t, dst), statOf(t, filepath.Join(nmnt, "large.raw"))
		if bst.Size != 3<<30 || bst.Size != nst.Size || bst.Blocks != nst.Blocks {
			t.Errorf("brickfs stats %d bytes / %d blocks, native %d / %d", bst.Size, bst.Blocks, nst.Size, nst.Blocks)
		}
		l, err := ReadShardLayout(c.Brick(t, vol, 2).Path, "large.raw")
		if err != nil {
			t.Fatal(err)
		}
		// The native reads of the compare made empty block files in the
		// holes (reference §2.3); the data is in at most 7 besides the
		// base file.
		const emptySum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		var names []string
		for n, sum := range l.Blocks {
			if sum != emptySum {
				names = append(names, fmt.Sprint(n))
			}
		}
		if len(names) > 7 {
			t.Errorf("the sparse image has data in %d blocks on a brick; its data spans at most 7 besides the base", len(names))
		}
		t.Logf("large.raw blocks: %s", strings.Join(names, " "))
	})
}

// TestShardPosixtest runs go-fuse's posixtest suite on a sharded
// single-brick volume.
func TestShardPosixtest(t *testing.T) {
	c, vol := newVolume(t, "shposix", [2]string{"features.shard", "on"}, [2]string{"features.shard-block-size", "4MB"})
	runPosixtest(t, c, vol)
}

// TestShardFaults: on a `group virt` replica-3 volume with 4 MB blocks, a
// verifying fio run over a file of 8 blocks while one brick is killed,
// then (after heal) one is stopped, then one's host is dropped. Each must
// cost a stall like an unsharded volume's, no error, and after heal every
// block and the base file's size xattr are identical on the bricks.
func TestShardFaults(t *testing.T) {
	e := newShardEnv(t, "shf", Replica3)
	file := e.fill("data")
	e.faultRun("shard-kill", file, repFioRun, func() {
		start := time.Now()
		e.c.KillBrick(t, e.vol, 0)
		e.requirePending(0)
		holdFault(start, 3*time.Second)
		e.c.RestartBrick(t, e.vol, 0)
	})
	e.waitBrickUsed(0, 30*time.Second)
	e.healAndCheck("data")
	e.faultRun("shard-stop", file, repFioRun, func() {
		start := time.Now()
		e.c.StopBrick(t, e.vol, 1)
		e.requirePending(1)
		holdFault(start, repHold)
		e.c.ContBrick(t, e.vol, 1)
	})
	e.waitBrickUsed(1, 30*time.Second)
	e.healAndCheck("data")
	e.faultRun("shard-drop", file, repFioRun, func() {
		start := time.Now()
		e.c.DropHost(t, 3)
		e.requirePending(2)
		holdFault(start, repHold)
		e.c.UndropHost(t, 3)
	})
	e.waitBrickUsed(2, 90*time.Second)
	e.healAndCheck("data")
}

// TestShardHealByBrickfs: with the self-heal daemon off, brickfs alone
// heals what a killed brick missed on a sharded volume: a file that grew
// (its blocks, and the base file's size xattr) and a file made while the
// brick was down (its base file and blocks, made there by entry heal, with
// the shard xattrs). Then the native client, reading through that brick
// alone, sees each file whole and at its size. Without the shard xattrs
// in the heal (before 085335a) the bricks' copies differ (the backend
// compare fails), and the native client fails on the file ("Failed to
// get trusted.glusterfs.shard.file-size", EINVAL) or reads it short.
func TestShardHealByBrickfs(t *testing.T) {
	e := newShardEnv(t, "shh", Replica3)
	// glusterd keeps the daemon's process (it serves every volume of the
	// node) but takes this volume out of its graph; its log shows any
	// heal it made all the same.
	e.c.Set(t, e.vol, "cluster.self-heal-daemon", "off")
	ctx := context.Background()
	e.fill("data") // 32 MiB: 8 blocks
	e.c.KillBrick(t, e.vol, 0)
	sizes := map[string]int64{"data": 48 << 20, "fresh": 16 << 20}
	// Sized first, so fio writes data in place (it would make the file
	// anew to grow it).
	if err := os.Truncate(filepath.Join(e.mnt, "data"), sizes["data"]); err != nil {
		t.Fatalf("grow data with brick 0 down: %v", err)
	}
	for name, size := range sizes {
		if r := FioFill(ctx, filepath.Join(e.mnt, name), fmt.Sprint(size)); !r.Clean() {
			t.Fatalf("write %s (%d bytes) with brick 0 down: %v\n%s", name, size, r, r.Stderr)
		}
	}
	e.requirePendingOn(0, "data")
	e.c.RestartBrick(t, e.vol, 0)
	took := e.c.WaitHealed(t, e.vol, e.files("data", "fresh"), repHealWait)
	t.Logf("brickfs healed brick 0 in %v", took.Round(time.Millisecond))
	for name := range sizes {
		e.c.CheckShardBackends(t, e.vol, e.kind, name, e.mnt)
		// brickfs healed each base file's metadata (the self-heal
		// daemon is off; the bricks' own index is not a healer).
		g, err := BackendGFID(filepath.Join(e.c.Brick(t, e.vol, 1).Path, name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(LogLines(e.c.MountLog(e.mnt), g), func(l string) bool { return strings.Contains(l, "metadata healed") }) {
			t.Errorf("no metadata heal of %s (%s) in brickfs's log", name, g)
		}
	}
	shdLogs, _ := filepath.Glob(filepath.Join(e.c.Dir, "n*", "logs", "glustershd.log"))
	for _, l := range shdLogs {
		var heals []string
		for _, h := range LogLines(l, "selfheal on") {
			if strings.Contains(h, "Completed") {
				heals = append(heals, h)
			}
		}
		if len(heals) > 0 {
			t.Errorf("the self-heal daemon healed, though off: %s: %q", l, heals)
		}
	}
	// Brick 0 alone: what the native client reads is what brickfs healed
	// (AFR serves no read without quorum unless told not to need one).
	e.c.Set(t, e.vol, "cluster.quorum-type", "none")
	e.c.KillBrick(t, e.vol, 1)
	e.c.KillBrick(t, e.vol, 2)
	native := e.c.MountNative(t, e.vol)
	for name, size := range sizes {
		p := filepath.Join(native, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s through the native client on brick 0 alone: %v", name, err)
			continue
		}
		if fi.Size() != size {
			t.Errorf("%s through the native client on brick 0 alone: %d bytes, want %d", name, fi.Size(), size)
		}
		if r := FioCheck(ctx, p, fmt.Sprint(size)); !r.Clean() {
			t.Errorf("verify %s through the native client on brick 0 alone: %v\n%s", name, r, r.Stderr)
		}
	}
}
