package integration

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mustRun runs a command that must succeed and returns its stdout and
// stderr together.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, code := runCmd(t, 5*time.Minute, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d:\n%s%s", name, strings.Join(args, " "), code, out, stderr)
	}
	return out + stderr
}

// asNobody runs a command as uid and gid 65534 without groups, in dir
// (entered as root: the run directory above it is private to root).
func asNobody(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + strconv.Itoa(nobody), "--regid=" + strconv.Itoa(nobody), "--clear-groups"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as uid %d in %s: %v: %s", strings.Join(args, " "), nobody, dir, err, out)
	}
	return string(out)
}

// TestBrickfsGlusterfsDropIn mounts through `mount -t glusterfs` with
// brickfs as the helper (in a mount namespace of its own, see dropIn) and
// runs what Cinder, os-brick, Nova and QEMU do with such a mount, beside
// the native client on the same replica-3 volume.
func TestBrickfsGlusterfsDropIn(t *testing.T) {
	c := sharedCluster(t)
	needTool(t, "qemu-img", "qemu-utils")
	needTool(t, "qemu-io", "qemu-utils")
	shared.mu.Lock()
	shared.seq++
	vol := fmt.Sprintf("dropin%d", shared.seq)
	shared.mu.Unlock()
	c.CreateVolume(t, vol, Replica3)
	for _, k := range []string{"performance.stat-prefetch", "performance.quick-read", "performance.io-cache", "performance.read-ahead", "performance.open-behind", "performance.readdir-ahead"} {
		c.Set(t, vol, k, "off")
	}
	c.Start(t, vol)
	hostBefore := hostHelperVersion(t)
	d := newDropIn(t, c)
	t.Cleanup(func() {
		if after := hostHelperVersion(t); after != hostBefore {
			t.Errorf("the host's mount.glusterfs -V changed: %q, was %q", after, hostBefore)
		}
	})
	if !strings.HasPrefix(hostBefore, "glusterfs ") {
		t.Fatalf("the host's mount.glusterfs -V says %q; want GlusterFS's own helper", hostBefore)
	}

	t.Run("Helper", func(t *testing.T) {
		out, _, code := d.cmd(t, time.Minute, "mount.glusterfs", "-V")
		if code != 0 || !strings.HasPrefix(out, "mount.glusterfs (brickfs ") {
			t.Errorf("mount.glusterfs -V in the namespace: exit %d, %q", code, out)
		}
		// Cinder's probe runs the helper bare and only needs it to exist.
		_, stderr, code := d.cmd(t, time.Minute, "mount.glusterfs")
		if code == 0 || !strings.Contains(stderr, "usage: mount.glusterfs ") {
			t.Errorf("bare mount.glusterfs: exit %d, %q; want a usage line naming mount.glusterfs", code, stderr)
		}
		mnt := filepath.Join(d.Dir, "bad")
		os.MkdirAll(mnt, 0o755)
		_, stderr, code = d.cmd(t, time.Minute, "mount", "-t", "glusterfs", "-o", "bogus-option=1", c.Spec(vol), mnt)
		if code == 0 {
			t.Fatalf("mount -t glusterfs with an unknown option succeeded")
		}
		oneLine(t, "mount -t glusterfs", stderr, `^mount\.glusterfs: `, `unknown mount option`, `bogus-option`)
		for _, p := range []string{"/", "/tmp"} {
			_, stderr, code = d.cmd(t, time.Minute, "mount", "-t", "glusterfs", c.Spec(vol), p)
			if code != 2 {
				t.Errorf("mount -t glusterfs on %s: exit %d, want 2: %s", p, code, stderr)
			}
			oneLine(t, "mount on "+p, stderr, `^mount\.glusterfs: `, `refusing to mount on `+regexp.QuoteMeta(p))
		}
		brick := c.Brick(t, vol, 0).Path
		_, stderr, code = d.cmd(t, time.Minute, "mount", "-t", "glusterfs", c.Spec(vol), brick)
		if code != 2 || mounted(brick) {
			t.Errorf("mount -t glusterfs on a brick: exit %d, want 2: %s", code, stderr)
		}
		oneLine(t, "mount on a brick", stderr, `brick`, `trusted\.gfid`)
		// -t glusterfs.SUBTYPE reaches the same helper.
		if _, stderr, code := d.cmd(t, time.Minute, "mount.glusterfs", c.Spec(vol), mnt, "-f", "-t", "glusterfs.brickfs"); code != 0 {
			t.Errorf("-t glusterfs.brickfs: exit %d: %s", code, stderr)
		}
	})

	// os-brick's RemoteFsClient: the mount point is the md5 of the share
	// under the mount point base; backupvolfile-server; a second mount of
	// the same share exits 32 saying "already mounted"; /proc/mounts shows
	// the share as given, type fuse.glusterfs; old Nova's findmnt check.
	base := filepath.Join(d.Dir, "cinder")
	share := c.Host(1) + ":/" + vol
	sum := md5.Sum([]byte(share))
	mnt := filepath.Join(base, hex.EncodeToString(sum[:]))
	d.Mount(t, c, share, mnt, "backupvolfile-server="+c.Host(2))
	t.Run("OsBrick", func(t *testing.T) {
		if src, typ := procMountsEntry(t, mnt); src != share || typ != "fuse.glusterfs" {
			t.Errorf("/proc/mounts: %q type %q; want %q type fuse.glusterfs", src, typ, share)
		}
		_, stderr, code := d.cmd(t, time.Minute, "mount", "-t", "glusterfs", "-o", "backupvolfile-server="+c.Host(2), share, mnt)
		if code != 32 || !strings.Contains(stderr, "already mounted") {
			t.Errorf("second mount: exit %d, %q; want 32 and \"already mounted\"", code, stderr)
		}
		share2 := c.Host(2) + "," + c.Host(3) + ":/" + vol
		sum := md5.Sum([]byte(share2))
		mnt2 := filepath.Join(base, hex.EncodeToString(sum[:]))
		d.Mount(t, c, share2, mnt2)
		if out := strings.TrimSpace(mustRun(t, "findmnt", "-n", "-o", "TARGET", "--source", share2)); out != mnt2 {
			t.Errorf("findmnt --source %s: %q, want %s", share2, out, mnt2)
		}
		mustRun(t, "findmnt", "--target", mnt2, "--source", share2)
		// brickfs unmount knows its own fuse.glusterfs mounts.
		if _, stderr, code := runCmd(t, time.Minute, BrickfsBin(t), "unmount", mnt2); code != 0 || mounted(mnt2) {
			t.Errorf("brickfs unmount of a fuse.glusterfs mount brickfs serves: exit %d, %s", code, stderr)
		}

		// Cinder's share checks, as the unprivileged user Cinder runs as:
		// group-writable mount point, a temporary file, capacity by df.
		if err := os.Chown(mnt, 0, nobody); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(mnt, 0o775); err != nil {
			t.Fatal(err)
		}
		tmp := fmt.Sprintf(".cinder-write-test-%d-x", os.Getpid())
		asNobody(t, mnt, "touch", tmp)
		if st := statOf(t, filepath.Join(mnt, tmp)); st.Uid != nobody || st.Gid != nobody {
			t.Errorf("the test file is owned by %d:%d, want %d:%d", st.Uid, st.Gid, nobody, nobody)
		}
		asNobody(t, mnt, "rm", tmp)
		// Capacity: df's statfs, on the mount point itself (df would
		// resolve the path from / first, which the run directory keeps
		// from uid 65534).
		fs := strings.Fields(asNobody(t, mnt, "stat", "-f", "--format=%b %S %a", "."))
		blocks, _ := strconv.ParseInt(fs[0], 10, 64)
		bsize, _ := strconv.ParseInt(fs[1], 10, 64)
		if len(fs) != 3 || blocks*bsize <= 0 {
			t.Errorf("statfs as uid %d: %q", nobody, fs)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	// The native client is the oracle: no caches of its own in the way
	// (brickfs has none of these translators; they change nothing for it).
	nat := c.MountNative(t, vol, "attribute-timeout=0", "entry-timeout=0", "direct-io-mode=enable")
	t.Run("QemuImg", func(t *testing.T) { testQemuImg(t, mnt, nat) })
	t.Run("QemuIO", func(t *testing.T) { testQemuIO(t, mnt, nat) })
	t.Run("CinderSnapshots", func(t *testing.T) { testCinderSnapshots(t, mnt, nat) })
	t.Run("FallocateMatrix", func(t *testing.T) { testFallocateMatrix(t, c, mnt) })
	t.Run("ImageLocking", func(t *testing.T) {
		other := c.MountBrickfs(t, c.Spec(vol))
		testImageLocking(t, mnt, other, nat)
	})
	t.Run("MountOptions", func(t *testing.T) { testMountOptions(t, c, d, vol) })
}

// testQemuImg: qemu-img create with every preallocation, check, convert
// with O_DIRECT both ways between brickfs and the native mount, compare
// both ways, resize.
func testQemuImg(t *testing.T, mnt, nat string) {
	const size = 64 << 20
	for _, tc := range []struct{ fmt, prealloc string }{
		{"raw", "off"}, {"raw", "falloc"}, {"raw", "full"},
		{"qcow2", "off"}, {"qcow2", "metadata"}, {"qcow2", "falloc"}, {"qcow2", "full"},
	} {
		name := fmt.Sprintf("img-%s-%s", tc.fmt, tc.prealloc)
		p := filepath.Join(mnt, name)
		mustRun(t, "qemu-img", "create", "-f", tc.fmt, "-o", "preallocation="+tc.prealloc, p, strconv.Itoa(size))
		info := mustRun(t, "qemu-img", "info", "--output=json", p)
		if !strings.Contains(info, fmt.Sprintf(`"virtual-size": %d`, size)) {
			t.Errorf("%s: qemu-img info: %s", name, info)
		}
		if tc.fmt == "qcow2" {
			mustRun(t, "qemu-img", "check", p)
		}
		if tc.fmt == "raw" && tc.prealloc != "off" {
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil || st.Blocks*512 < size {
				t.Errorf("%s: %d bytes allocated, want at least %d: %v", name, st.Blocks*512, size, err)
			}
		}
		// The same image read through the native client.
		mustRun(t, "qemu-img", "compare", "-f", tc.fmt, "-F", tc.fmt, p, filepath.Join(nat, name))
	}
	// Data in, O_DIRECT convert out and back, compare every way.
	src := filepath.Join(mnt, "conv-src.raw")
	mustRun(t, "qemu-img", "create", "-f", "raw", src, "32M")
	mustRun(t, "qemu-io", "-f", "raw", "-t", "none", "-c", "write -P 0x5a 0 1M", "-c", "write -P 0xa5 17M 3M", "-c", "write -P 0x01 31M 1M", src)
	mustRun(t, "qemu-img", "convert", "-t", "none", "-T", "none", "-f", "raw", "-O", "qcow2", src, filepath.Join(nat, "conv.qcow2"))
	mustRun(t, "qemu-img", "check", filepath.Join(mnt, "conv.qcow2"))
	mustRun(t, "qemu-img", "convert", "-t", "none", "-T", "none", "-f", "qcow2", "-O", "raw", filepath.Join(nat, "conv.qcow2"), filepath.Join(mnt, "conv-back.raw"))
	mustRun(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, filepath.Join(nat, "conv.qcow2"))
	mustRun(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", filepath.Join(nat, "conv-src.raw"), filepath.Join(mnt, "conv-back.raw"))
	// A difference is found: the comparison can fail.
	mustRun(t, "qemu-io", "-f", "raw", "-t", "none", "-c", "write -P 0x77 8M 4k", filepath.Join(mnt, "conv-back.raw"))
	if out, _, code := runCmd(t, time.Minute, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, filepath.Join(nat, "conv-back.raw")); code != 1 || !strings.Contains(out, "Content mismatch at offset 8388608") {
		t.Errorf("qemu-img compare of differing images: exit %d, %q", code, out)
	}
	// Resize, as Cinder's extend does.
	mustRun(t, "qemu-img", "resize", "-f", "raw", src, "+32M")
	if st := statOf(t, filepath.Join(nat, "conv-src.raw")); st.Size != 64<<20 {
		t.Errorf("after resize +32M the native client sees %d bytes", st.Size)
	}
	mustRun(t, "qemu-img", "resize", "-f", "qcow2", filepath.Join(mnt, "conv.qcow2"), "96M")
	if info := mustRun(t, "qemu-img", "info", "--output=json", filepath.Join(nat, "conv.qcow2")); !strings.Contains(info, `"virtual-size": 100663296`) {
		t.Errorf("after resize to 96M: %s", info)
	}
}

// qemuIO runs qemu-io commands on path and fails on any error or pattern
// mismatch.
func qemuIO(t *testing.T, format, path string, cmds ...string) string {
	t.Helper()
	args := []string{"-f", format, "-t", "none"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out := mustRun(t, "qemu-io", append(args, path)...)
	if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "failed:") {
		t.Errorf("qemu-io %v on %s:\n%s", cmds, path, out)
	}
	return out
}

// testQemuIO: O_DIRECT pattern writes and reads, write -z (ZERO_RANGE and
// PUNCH_HOLE) and discard, read back through both clients.
func testQemuIO(t *testing.T, mnt, nat string) {
	p := filepath.Join(mnt, "qio.raw")
	mustRun(t, "qemu-img", "create", "-f", "raw", p, "16M")
	qemuIO(t, "raw", p,
		"write -P 0xab 0 4M", "read -P 0xab 0 4M",
		"write -z 128k 64k", "read -P 0 128k 64k", "read -P 0xab 192k 64k",
		"write -z -u 1M 64k", "read -P 0 1M 64k",
		"discard 2M 128k", "read -P 0 2M 128k",
		"write -P 0xcd 4095k 2k", "read -P 0xcd 4095k 2k")
	// The same bytes through the native client (it has no O_DIRECT issue
	// reading).
	qemuIO(t, "raw", filepath.Join(nat, "qio.raw"),
		"read -P 0xab 0 128k", "read -P 0 128k 64k", "read -P 0 1M 64k", "read -P 0 2M 128k", "read -P 0xcd 4095k 2k", "read -P 0 4097k 1k")
}

// testCinderSnapshots runs Cinder's RemoteFS qcow2 snapshot flow: an
// overlay with a relative backing file (create, then rebase -u), writes to
// it, a second overlay, commit with -d into the first, commit into the
// base; every step read back through the native client.
func testCinderSnapshots(t *testing.T, mnt, nat string) {
	base := filepath.Join(mnt, "volume-1")
	mustRun(t, "qemu-img", "create", "-f", "raw", base, "16M")
	qemuIO(t, "raw", base, "write -P 0x11 0 4M")
	snap1 := base + ".snap-1"
	mustRun(t, "qemu-img", "create", "-f", "qcow2", "-o", "backing_file="+base+",backing_fmt=raw", snap1, "16M")
	mustRun(t, "qemu-img", "rebase", "-u", "-b", "volume-1", "-F", "raw", snap1)
	if info := mustRun(t, "qemu-img", "info", filepath.Join(nat, "volume-1.snap-1")); !regexp.MustCompile(`(?m)^backing file: volume-1( |$)`).MatchString(info) {
		t.Errorf("the overlay's backing file is not the relative name:\n%s", info)
	}
	qemuIO(t, "qcow2", snap1, "write -P 0x22 4M 4M")
	snap2 := base + ".snap-2"
	mustRun(t, "qemu-img", "create", "-f", "qcow2", "-o", "backing_file=volume-1.snap-1,backing_fmt=qcow2", snap2, "16M")
	qemuIO(t, "qcow2", snap2, "write -P 0x33 8M 4M")
	// The chain resolves through the native client too.
	qemuIO(t, "qcow2", filepath.Join(nat, "volume-1.snap-2"), "read -P 0x11 0 4M", "read -P 0x22 4M 4M", "read -P 0x33 8M 4M", "read -P 0 12M 4M")
	// Commit the top into snap-1, keeping the top (-d), then snap-1 into
	// the base, as Cinder deletes snapshots.
	mustRun(t, "qemu-img", "commit", "-d", "-t", "none", snap2)
	qemuIO(t, "qcow2", snap2, "read -P 0x33 8M 4M")
	mustRun(t, "qemu-img", "commit", "-t", "none", snap1)
	qemuIO(t, "raw", filepath.Join(nat, "volume-1"), "read -P 0x11 0 4M", "read -P 0x22 4M 4M", "read -P 0x33 8M 4M", "read -P 0 12M 4M")
	mustRun(t, "qemu-img", "compare", "-F", "raw", snap2, filepath.Join(nat, "volume-1"))
	mustRun(t, "qemu-img", "check", snap2)
}

// testFallocateMatrix runs one sequence of fallocate, ZERO_RANGE, punch,
// truncate and SEEK_DATA/SEEK_HOLE calls with xfs_io on a file on the
// brickfs mount and on a file beside the bricks (the same filesystem the
// bricks store on), and compares the bytes, sizes and seek answers.
func testFallocateMatrix(t *testing.T, c *Cluster, mnt string) {
	needTool(t, "xfs_io", "xfsprogs")
	local := filepath.Join(c.Dir, "matrix-local")
	ops := []string{
		"pwrite -q -S 0xaa 0 4m",
		"fzero 1m 64k",
		"fzero -k 3m 2m",
		"fpunch 2m 128k",
		"falloc -k 4m 1m",
		"falloc 6m 1m",
		"fzero 7m 512k",
		"pwrite -q -S 0xbb 5m 4k",
		"fpunch 6m 64k",
		"truncate 7m",
		"fzero -k 6m 2m",
		"seek -a -r 0",
		"stat",
	}
	outs := map[string]string{}
	for _, p := range []string{local, filepath.Join(mnt, "matrix")} {
		args := []string{"-f"}
		for _, o := range ops {
			args = append(args, "-c", o)
		}
		out := mustRun(t, "xfs_io", append(args, p)...)
		// Keep the seek table and the size; the rest names the file or
		// its blocks.
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "DATA") || strings.HasPrefix(l, "HOLE") || strings.HasPrefix(l, "Whence") || strings.HasPrefix(l, "stat.size") {
				keep = append(keep, l)
			}
		}
		outs[p] = strings.Join(keep, "\n")
	}
	lb, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join(mnt, "matrix"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lb) != 7<<20 || !bytes.Equal(lb, mb) {
		t.Errorf("the brickfs file (%d bytes) differs from the local one (%d bytes)", len(mb), len(lb))
	}
	if outs[local] != outs[filepath.Join(mnt, "matrix")] || !strings.Contains(outs[local], "stat.size = 7340032") {
		t.Errorf("xfs_io seek and size answers differ:\nlocal:\n%s\nbrickfs:\n%s", outs[local], outs[filepath.Join(mnt, "matrix")])
	}
}

// testImageLocking: a paused VM holds an image on one brickfs mount; a
// second writer through another brickfs mount and through the native
// client is refused by QEMU's image locking (OFD locks on the bricks).
func testImageLocking(t *testing.T, mnt, other, nat string) {
	qemu := needTool(t, "qemu-system-x86_64", "qemu-system-x86")
	img := filepath.Join(mnt, "locked.raw")
	mustRun(t, "qemu-img", "create", "-f", "raw", img, "16M")
	vm := exec.Command(qemu, "-S", "-nodefaults", "-display", "none", "-machine", "pc", "-accel", "tcg", "-m", "64",
		"-drive", "file="+img+",format=raw,if=virtio,cache=none")
	var vmOut bytes.Buffer
	vm.Stdout, vm.Stderr = &vmOut, &vmOut
	if err := vm.Start(); err != nil {
		t.Fatalf("start the VM: %v", err)
	}
	exited := make(chan struct{})
	go func() { vm.Wait(); close(exited) }()
	stop := func() {
		vm.Process.Kill()
		<-exited
	}
	defer stop()
	// The VM holds the lock once opening the image for writing (and
	// writing nothing) fails.
	waitFor(t, 30*time.Second, "the paused VM to lock the image", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("the VM exited: %s", vmOut.String())
		default:
		}
		out, stderr, _ := runCmd(t, time.Minute, "qemu-io", "-f", "raw", "-c", "quit", img)
		return strings.Contains(out+stderr, `Failed to get "write" lock`), out + stderr
	})
	for _, p := range []string{filepath.Join(other, "locked.raw"), filepath.Join(nat, "locked.raw"), img} {
		out, stderr, code := runCmd(t, time.Minute, "qemu-io", "-f", "raw", "-t", "none", "-c", "write 0 4k", p)
		select {
		case <-exited:
			// Its locks went with it: what the writers saw says nothing.
			t.Fatalf("the paused VM exited while the writers ran (%s): %s", vm.ProcessState, vmOut.String())
		default:
		}
		if code == 0 || !strings.Contains(out+stderr, `Failed to get "write" lock`) {
			t.Errorf("a second writer through %s while the VM runs: exit %d, %s%s; want `Failed to get \"write\" lock`", p, code, out, stderr)
		}
	}
	stop()
	// The VM's locks went with it: writers succeed again, on every mount.
	for _, p := range []string{filepath.Join(other, "locked.raw"), filepath.Join(nat, "locked.raw")} {
		qemuIO(t, "raw", p, "write -P 0x42 0 4k", "read -P 0x42 0 4k")
	}
}

// testMountOptions: VFS options reach the kernel mount as mount(8) means
// them, auto_unmount detaches the mount when the daemon dies, and a mount
// from the cached volfile says so on stderr.
func testMountOptions(t *testing.T, c *Cluster, d *dropIn, vol string) {
	m1 := filepath.Join(d.Dir, "opts1")
	d.Mount(t, c, c.Spec(vol), m1, "relatime", "nodiratime", "lazytime", "noexec", "dev", "suid", "auto_unmount", "direct-io-mode=enable", "lru-limit=10")
	opts, super := mountInfo(t, m1)
	for _, o := range []string{"relatime", "nodiratime", "noexec"} {
		if !hasOpt(opts, o) {
			t.Errorf("%s missing: %s", o, fmtOpts(opts, super))
		}
	}
	for _, o := range []string{"nosuid", "nodev", "noatime"} {
		if hasOpt(opts, o) {
			t.Errorf("%s set: %s", o, fmtOpts(opts, super))
		}
	}
	if !hasOpt(super, "lazytime") && !hasOpt(opts, "lazytime") {
		t.Errorf("lazytime missing: %s", fmtOpts(opts, super))
	}
	m2 := filepath.Join(d.Dir, "opts2")
	d.Mount(t, c, c.Spec(vol), m2, "strictatime", "nosuid", "nodev", "ro")
	opts, super = mountInfo(t, m2)
	for _, o := range []string{"nosuid", "nodev", "ro"} {
		if !hasOpt(opts, o) {
			t.Errorf("%s missing: %s", o, fmtOpts(opts, super))
		}
	}
	if hasOpt(opts, "relatime") || hasOpt(opts, "noatime") {
		t.Errorf("strictatime: %s", fmtOpts(opts, super))
	}
	if err := os.WriteFile(filepath.Join(m2, "x"), nil, 0o644); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write on a ro mount: %v", err)
	}
	// Ignored options are said once, on one line.
	m3 := filepath.Join(d.Dir, "opts3")
	os.MkdirAll(m3, 0o755)
	log := filepath.Join(c.LogDir(), "opts3.log")
	_, stderr, code := d.cmd(t, 2*time.Minute, "mount", "-t", "glusterfs", "-o", "log-file="+log+",direct-io-mode=enable,lru-limit=10,lru-limit=20,sync", c.Spec(vol), m3)
	if code != 0 {
		t.Fatalf("mount: exit %d: %s", code, stderr)
	}
	c.mu.Lock()
	c.mounts[m3] = mount{kind: helperMount, log: log}
	c.mu.Unlock()
	t.Cleanup(func() { c.unmount(m3) })
	// (mount(8) puts sync, a VFS flag, first.)
	oneLine(t, "ignored options", stderr, `^mount\.glusterfs: warning: options [a-z, -]+: accepted for compatibility`, `does not act on them`)
	for _, o := range []string{"direct-io-mode", "lru-limit", "sync"} {
		if strings.Count(stderr, o) != 1 {
			t.Errorf("%s named %d times in %q, want once", o, strings.Count(stderr, o), stderr)
		}
	}

	// auto_unmount: kill the daemon; the mount point is left clean, not
	// answering ENOTCONN.
	syscall.Kill(mountDaemon(t, m1), syscall.SIGKILL)
	waitFor(t, 20*time.Second, "auto_unmount to detach "+m1, func() (bool, string) {
		return !mounted(m1), "still mounted"
	})
	if _, err := os.ReadDir(m1); err != nil {
		t.Errorf("the mount point after auto_unmount: %v", err)
	}
	// Without auto_unmount the same kill leaves a dead mount, which the
	// harness cleans up: the watcher is what unmounted.
	m4 := filepath.Join(d.Dir, "opts4")
	d.Mount(t, c, c.Spec(vol), m4)
	pid := mountDaemon(t, m4)
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(pid, 10*time.Second, false)
	if _, err := os.ReadDir(m4); err == nil || !mounted(m4) {
		t.Errorf("without auto_unmount a killed daemon's mount reads %v, mounted %v; want ENOTCONN and still mounted", err, mounted(m4))
	}
	// With auto_unmount and a clean unmount, the watcher goes with the
	// daemon (the harness fails the unmount if any process naming the
	// mount point is left), and a new mount at the same place made before
	// the old daemon's watcher acts is not touched.
	m7 := filepath.Join(d.Dir, "opts7")
	d.Mount(t, c, c.Spec(vol), m7, "auto_unmount")
	c.Unmount(t, m7)
	d.Mount(t, c, c.Spec(vol), m7)
	if _, err := os.ReadDir(m7); err != nil || !mounted(m7) {
		t.Errorf("a new mount at %s after an auto_unmount one: %v, mounted %v", m7, err, mounted(m7))
	}

	// The defaults: as mount.glusterfs those of the native client (suid,
	// dev), as brickfs nosuid,nodev; relatime for both.
	opts, super = mountInfo(t, m7)
	if !hasOpt(opts, "relatime") || hasOpt(opts, "nosuid") || hasOpt(opts, "nodev") {
		t.Errorf("mount -t glusterfs without options: %s; want relatime, suid, dev", fmtOpts(opts, super))
	}
	own := c.MountBrickfs(t, c.Spec(vol))
	opts, super = mountInfo(t, own)
	if !hasOpt(opts, "relatime") || !hasOpt(opts, "nosuid") || !hasOpt(opts, "nodev") {
		t.Errorf("brickfs mount without options: %s; want relatime, nosuid, nodev", fmtOpts(opts, super))
	}

	// From the cached volfile: said on stderr, not only in the log.
	cache := filepath.Join(c.Dir, "volfile-cache-dropin")
	dead := c.Prefix + ".9"
	m5 := filepath.Join(d.Dir, "cached1")
	d.Mount(t, c, c.Host(1)+","+dead+":/"+vol, m5, "volfile-cache-dir="+cache)
	c.Unmount(t, m5)
	m6 := filepath.Join(d.Dir, "cached2")
	os.MkdirAll(m6, 0o755)
	_, stderr, code = d.cmd(t, 2*time.Minute, "mount", "-t", "glusterfs", "-o", "volfile-cache-dir="+cache+",log-file="+filepath.Join(c.LogDir(), "cached2.log"), dead+":/"+vol, m6)
	if code != 0 {
		t.Fatalf("mount from the cached volfile: exit %d: %s", code, stderr)
	}
	c.mu.Lock()
	c.mounts[m6] = mount{kind: helperMount}
	c.mu.Unlock()
	t.Cleanup(func() { c.unmount(m6) })
	oneLine(t, "cached volfile", stderr, `^mount\.glusterfs: warning: no volfile server answered`, regexp.QuoteMeta(dead), `last good volfile`)
}

// TestBrickfsFstab: an fstab line of type brickfs without _netdev is
// ordered after the network by brickfs's systemd generator (systemd's own
// fstab generator makes it a local filesystem, ordered before
// local-fs.target, whose failure at boot means emergency mode); and mount
// -a -T honours noauto and nofail for brickfs lines.
func TestBrickfsFstab(t *testing.T) {
	c, vol := newVolume(t, "fstab")
	bin := BrickfsBin(t)
	const sysGen = "/lib/systemd/system-generators/systemd-fstab-generator"
	if _, err := os.Stat(sysGen); err != nil {
		need(t, false, bothEnvs, "%s: %v; install systemd (bash scripts/deps.sh)", sysGen, err)
	}
	dir := filepath.Join(c.Dir, "fstab-test")
	os.MkdirAll(dir, 0o755)
	fstab := filepath.Join(dir, "fstab")
	spec := c.Spec(vol)
	mnt1 := filepath.Join(c.Dir, "mnt", "fstab-auto")
	mnt2 := filepath.Join(c.Dir, "mnt", "fstab-noauto")
	mnt3 := filepath.Join(c.Dir, "mnt", "fstab-plain")
	log := filepath.Join(c.LogDir(), "fstab-%s.log")
	lines := fmt.Sprintf(`# a test fstab
%s %s brickfs nofail,x-systemd.mount-timeout=30,log-file=%s 0 0
%s %s brickfs noauto,log-file=%s 0 0
%s %s brickfs log-file=%s 0 0
%s /mnt/native glusterfs defaults 0 0
`, spec, mnt1, fmt.Sprintf(log, "auto"), spec, mnt2, fmt.Sprintf(log, "noauto"), spec, mnt3, fmt.Sprintf(log, "plain"), spec)
	if err := os.WriteFile(fstab, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("Systemd", func(t *testing.T) {
		// systemd's generator alone: the brickfs line is local.
		sysOut := filepath.Join(dir, "systemd")
		for _, d := range []string{"normal", "early", "late"} {
			os.MkdirAll(filepath.Join(sysOut, d), 0o755)
		}
		cmd := exec.Command(sysGen, sysOut+"/normal", sysOut+"/early", sysOut+"/late")
		cmd.Env = append(os.Environ(), "SYSTEMD_FSTAB="+fstab, "SYSTEMD_LOG_LEVEL=err")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", sysGen, err, out)
		}
		unit := systemdEscapePath(t, mnt1) + ".mount"
		sysUnit, err := os.ReadFile(filepath.Join(sysOut, "normal", unit))
		if err != nil {
			t.Fatalf("systemd-fstab-generator wrote no %s: %v", unit, err)
		}
		t.Logf("systemd-fstab-generator alone:\n%s", sysUnit)
		// A plain brickfs line: local, required by local-fs.target.
		plain := systemdEscapePath(t, mnt3) + ".mount"
		plainUnit, _ := os.ReadFile(filepath.Join(sysOut, "normal", plain))
		t.Logf("systemd-fstab-generator alone, plain line:\n%s", plainUnit)
		if _, err := os.Lstat(filepath.Join(sysOut, "normal", "local-fs.target.requires", plain)); err != nil || !strings.Contains(string(plainUnit), "Before=local-fs.target") {
			t.Errorf("systemd's fstab generator no longer makes a brickfs line local (%v); brickfs-fstab-generator may not be needed any more:\n%s", err, plainUnit)
		}
		// systemd knows glusterfs as a network filesystem: that line is
		// right by itself.
		if nativeUnit, err := os.ReadFile(filepath.Join(sysOut, "normal", "mnt-native.mount")); err != nil || !strings.Contains(string(nativeUnit), "Before=remote-fs.target") {
			t.Errorf("the glusterfs line's unit: %v\n%s", err, nativeUnit)
		}

		// brickfs's generator, called by its installed name.
		gen := filepath.Join(dir, "brickfs-fstab-generator")
		if err := os.Symlink(bin, gen); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "brickfs")
		cmd = exec.Command(gen, out+"/normal", out+"/early", out+"/late")
		cmd.Env = append(os.Environ(), "SYSTEMD_FSTAB="+fstab)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("brickfs-fstab-generator: %v: %s", err, b)
		}
		ours, err := os.ReadFile(filepath.Join(out, "early", unit))
		if err != nil {
			t.Fatalf("brickfs-fstab-generator wrote no early %s: %v", unit, err)
		}
		t.Logf("brickfs-fstab-generator (early directory, shadows the one above):\n%s", ours)
		for _, w := range []string{"After=local-fs.target network-online.target", "Wants=network-online.target", "Where=" + mnt1, "Type=brickfs", ",_netdev\n", "TimeoutSec=30"} {
			if !strings.Contains(string(ours), w) {
				t.Errorf("the brickfs unit lacks %q", w)
			}
		}
		if strings.Contains(string(ours), "Before=local-fs") {
			t.Errorf("the brickfs unit is ordered before local-fs.target")
		}
		if target, err := os.Readlink(filepath.Join(out, "early", "remote-fs.target.wants", unit)); err != nil || target != "../"+unit {
			t.Errorf("remote-fs.target.wants/%s: %q, %v (nofail: wanted, not required)", unit, target, err)
		}
		if _, err := os.Stat(filepath.Join(out, "early", systemdEscapePath(t, mnt2)+".mount")); err != nil {
			t.Errorf("the noauto line has no unit: %v", err)
		}
		plainOurs, _ := os.ReadFile(filepath.Join(out, "early", plain))
		t.Logf("brickfs-fstab-generator, plain line:\n%s", plainOurs)
		if ents, _ := os.ReadDir(filepath.Join(out, "early", "remote-fs.target.requires")); len(ents) != 1 || ents[0].Name() != plain {
			t.Errorf("remote-fs.target.requires holds %v; want only %s (the noauto line is pulled in by nothing)", ents, plain)
		}
		if !strings.Contains(string(plainOurs), "Options=log-file=") || !strings.HasSuffix(strings.TrimSpace(string(plainOurs)), ",_netdev") {
			t.Errorf("the plain line's unit:\n%s", plainOurs)
		}
		if _, err := os.Stat(filepath.Join(out, "early", "mnt-native.mount")); err == nil {
			t.Errorf("a unit for the glusterfs line: systemd gets it right by itself")
		}
		// What systemd 252 makes of both generators' output together, as
		// it would load them at boot: local-fs.target neither requires
		// nor waits for the brickfs mounts; remote-fs.target does.
		before := targetDeps(t, filepath.Join(sysOut, "normal"))
		after := targetDeps(t, filepath.Join(out, "early"), filepath.Join(sysOut, "normal"))
		t.Logf("systemd-analyze, systemd's generator alone: local-fs.target %q; remote-fs.target %q", before["Local File Systems"], before["Remote File Systems"])
		t.Logf("systemd-analyze, with brickfs-fstab-generator: local-fs.target %q; remote-fs.target %q", after["Local File Systems"], after["Remote File Systems"])
		if !slices.Contains(before["Local File Systems"], "Requires: "+plain) {
			t.Errorf("systemd alone: local-fs.target %v does not require %s; the generator may no longer be needed", before["Local File Systems"], plain)
		}
		for _, d := range after["Local File Systems"] {
			if strings.HasPrefix(d, "Requires: ") || strings.HasPrefix(d, "Wants: ") || strings.HasPrefix(d, "After: ") {
				t.Errorf("with brickfs's generator local-fs.target still has %q", d)
			}
		}
		for _, want := range []string{"Requires: " + plain, "Wants: " + unit} {
			if !slices.Contains(after["Remote File Systems"], want) {
				t.Errorf("remote-fs.target lacks %q: %v", want, after["Remote File Systems"])
			}
		}
	})

	t.Run("MountAll", func(t *testing.T) {
		if err := installHelper(MountBrickfsBin(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(uninstallHelper)
		os.MkdirAll(mnt1, 0o755)
		os.MkdirAll(mnt2, 0o755)
		// Only the brickfs lines: a test fstab of its own for mount -a.
		only := filepath.Join(dir, "fstab-brickfs")
		var keep []string
		for _, l := range strings.Split(lines, "\n") {
			if strings.Contains(l, " brickfs ") && !strings.Contains(l, mnt3) {
				keep = append(keep, l)
			}
		}
		os.WriteFile(only, []byte(strings.Join(keep, "\n")+"\n"), 0o644)
		c.mu.Lock()
		c.mounts[mnt1] = mount{kind: helperMount, log: fmt.Sprintf(log, "auto")}
		c.mounts[mnt2] = mount{kind: helperMount, log: fmt.Sprintf(log, "noauto")}
		c.mu.Unlock()
		t.Cleanup(func() { c.unmount(mnt1); c.unmount(mnt2) })
		mustRun(t, "mount", "-a", "-T", only)
		if src, typ := procMountsEntry(t, mnt1); src != spec || typ != "fuse.brickfs" {
			t.Errorf("after mount -a: %s is %q type %q", mnt1, src, typ)
		}
		if mounted(mnt2) {
			t.Errorf("mount -a mounted the noauto line")
		}
		// Again: what is mounted is skipped, no error.
		mustRun(t, "mount", "-a", "-T", only)
		// The noauto line by name.
		mustRun(t, "mount", "-T", only, mnt2)
		if !mounted(mnt2) {
			t.Errorf("mount -T fstab %s did not mount the noauto line", mnt2)
		}
	})
}

// targetDeps loads local-fs.target and remote-fs.target with systemd's
// own unit loader (systemd-analyze verify, unit path dirs then the
// system's), fails on any unit systemd refuses, and returns, per target
// description, its dependencies on mount units ("Requires: X.mount").
func targetDeps(t *testing.T, dirs ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("systemd-analyze", "verify", "local-fs.target", "remote-fs.target")
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug", "SYSTEMD_UNIT_PATH="+strings.Join(dirs, ":")+":/lib/systemd/system")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, b)
	}
	for _, bad := range []string{"bad unit file setting", "Refusing", "Failed to create"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("systemd-analyze: %q in\n%s", bad, b)
		}
	}
	deps := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if d, ok := strings.CutPrefix(l, "Description: "); ok {
			cur = d
			continue
		}
		if f := strings.Fields(l); len(f) >= 2 && strings.HasSuffix(f[1], ".mount") && strings.HasSuffix(f[0], ":") {
			deps[cur] = append(deps[cur], f[0]+" "+f[1])
		}
	}
	return deps
}

// systemdEscapePath is `systemd-escape --path P`.
func systemdEscapePath(t *testing.T, p string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, "systemd-escape", "--path", p))
}

// TestBrickfsInstall runs `brickfs install` as users do, into a scratch
// root holding GlusterFS's helper and a dpkg database: --glusterfs diverts
// the helper and puts brickfs in its place, --status says so, the
// installed links run brickfs under each name, --revert and --uninstall
// put everything back.
func TestBrickfsInstall(t *testing.T) {
	RequireRoot(t)
	bin := BrickfsBin(t)
	needTool(t, "dpkg-divert", "dpkg")
	// A merged-/usr root, as Debian 12's.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
	os.Symlink("usr/sbin", filepath.Join(root, "sbin"))
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
	native := "#!/bin/sh\necho 'glusterfs 10.3 (the native helper)'\n"
	os.WriteFile(filepath.Join(root, "sbin/mount.glusterfs"), []byte(native), 0o755)

	out := mustRun(t, bin, "install", "--glusterfs", "--root", root)
	t.Logf("brickfs install --glusterfs:\n%s", out)
	if st := mustRun(t, bin, "install", "--status", "--root", root); !strings.HasPrefix(st, "brickfs (/sbin/mount.glusterfs -> /usr/local/sbin/brickfs; GlusterFS's helper diverted to /sbin/mount.glusterfs.distrib)") {
		t.Errorf("--status after install: %q", st)
	}
	// The installed links run the installed copy under each name, in the
	// scratch root as it would be the root.
	for name, want := range map[string]string{"/sbin/mount.glusterfs": "mount.glusterfs (brickfs ", "/sbin/mount.brickfs": "mount.brickfs (brickfs "} {
		target, err := os.Readlink(filepath.Join(root, name))
		if err != nil || target != "/usr/local/sbin/brickfs" {
			t.Fatalf("%s -> %q, %v", name, target, err)
		}
		// What exec of the link does in that root: the target, with the
		// link's name as argv[0].
		cmd := exec.Command(filepath.Join(root, target), "-V")
		cmd.Args[0] = name
		if v, err := cmd.Output(); err != nil || !strings.HasPrefix(string(v), want) {
			t.Errorf("%s -V in the installed root: %q, %v; want %q", name, v, err, want)
		}
	}
	if out := mustRun(t, "dpkg-divert", "--root", root, "--list"); !strings.Contains(out, "/usr/sbin/mount.glusterfs to /usr/sbin/mount.glusterfs.distrib") {
		t.Errorf("the /usr/sbin alias of the helper is not diverted: %s", out)
	}
	if b, err := os.ReadFile(filepath.Join(root, "sbin/mount.glusterfs.distrib")); err != nil || string(b) != native {
		t.Errorf("the native helper was not diverted: %q, %v", b, err)
	}
	if _, stderr, code := runCmd(t, time.Minute, bin, "install", "--bogus"); code == 0 || !strings.Contains(stderr, "usage") {
		t.Errorf("install --bogus: exit %d, %q", code, stderr)
	}
	mustRun(t, bin, "install", "--revert", "--root", root)
	if b, err := os.ReadFile(filepath.Join(root, "sbin/mount.glusterfs")); err != nil || string(b) != native {
		t.Errorf("--revert did not restore the native helper: %q, %v", b, err)
	}
	if st := mustRun(t, bin, "install", "--status", "--root", root); !strings.HasPrefix(st, "GlusterFS's own client") {
		t.Errorf("--status after revert: %q", st)
	}
	mustRun(t, bin, "install", "--uninstall", "--root", root)
	for _, p := range []string{"usr/local/sbin/brickfs", "sbin/mount.brickfs", "etc/systemd/system-generators/brickfs-fstab-generator"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s left after --uninstall: %v", p, err)
		}
	}
}
