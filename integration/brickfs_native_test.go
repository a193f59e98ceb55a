package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBrickfsNativeCrossCheck mounts one volume with brickfs and with the
// native client at once and checks that what one writes the other reads
// back the same: content, size, mode, owner, user xattrs, times, symlink
// targets and directory listings, in both directions.
func TestBrickfsNativeCrossCheck(t *testing.T) {
	c, vol := newVolume(t, "xchk")
	// No kernel caching on either side, so every stat is a fresh lookup.
	bmnt := c.MountBrickfs(t, c.Spec(vol), "attribute-timeout=0", "entry-timeout=0")
	dumpClientLog(t, c, bmnt)
	nmnt := c.MountNative(t, vol, "attribute-timeout=0", "entry-timeout=0", "negative-timeout=0")

	for _, dir := range []struct{ name, from, to string }{
		{"BrickfsToNative", bmnt, nmnt},
		{"NativeToBrickfs", nmnt, bmnt},
	} {
		t.Run(dir.name, func(t *testing.T) {
			w := filepath.Join(dir.from, dir.name)
			r := filepath.Join(dir.to, dir.name)
			if err := os.Mkdir(w, 0o755); err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 5<<20+123)
			rand.Read(data)
			file := filepath.Join(w, "data.bin")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			wst := statOf(t, file) // mtime as the write left it
			touched := filepath.Join(w, "touched")
			os.WriteFile(touched, []byte("t"), 0o644)
			when := []unix.Timespec{{Sec: 1600000000, Nsec: 111222333}, {Sec: 1650000000, Nsec: 987654321}}
			if err := unix.UtimesNano(touched, when); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(file, 1001, 1002); err != nil {
				t.Fatal(err)
			}
			xattrs := map[string][]byte{"user.one": []byte("1"), "user.bin": {0, 1, 2, 0xff}, "user.long": bytes.Repeat([]byte("L"), 2000)}
			for k, v := range xattrs {
				if err := unix.Setxattr(file, k, v, 0); err != nil {
					t.Fatalf("setxattr %s: %v", k, err)
				}
			}
			target := "data.bin/../" + strings.Repeat("s", 100)
			os.Symlink(target, filepath.Join(w, "sl"))
			os.Symlink("/absolute/elsewhere", filepath.Join(w, "abs"))
			var want []string
			os.Mkdir(filepath.Join(w, "sub"), 0o711)
			for i := 0; i < 300; i++ {
				n := fmt.Sprintf("e%03d", i)
				os.WriteFile(filepath.Join(w, "sub", n), nil, 0o600)
				want = append(want, n)
			}
			os.Mkdir(filepath.Join(w, "sub", "deeper"), 0o700)
			want = append(want, "deeper")
			sort.Strings(want)
			wtouched, wfile := statOf(t, touched), statOf(t, file)

			// The native client's md-cache keeps attributes for 1s on its
			// own, whatever the kernel timeouts.
			time.Sleep(1200 * time.Millisecond)

			rfile := filepath.Join(r, "data.bin")
			got, err := os.ReadFile(rfile)
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("content: sha256 %x (%d bytes), wrote %x (%d bytes)", sha256.Sum256(got), len(got), sha256.Sum256(data), len(data))
			}
			rst := statOf(t, rfile)
			if rst.Size != int64(len(data)) || rst.Mode != syscall.S_IFREG|0o640 || rst.Uid != 1001 || rst.Gid != 1002 {
				t.Errorf("stat: size %d mode %o uid %d gid %d; want %d, 100640, 1001, 1002", rst.Size, rst.Mode, rst.Uid, rst.Gid, len(data))
			}
			if rst.Ino != wfile.Ino {
				t.Logf("inode numbers differ: writer %d, reader %d (both derive it from the GFID, maybe differently)", wfile.Ino, rst.Ino)
			}
			for k, v := range xattrs {
				buf := make([]byte, 4096)
				n, err := unix.Getxattr(rfile, k, buf)
				if err != nil || !bytes.Equal(buf[:n], v) {
					t.Errorf("xattr %s: %q, %v; want %q", k, buf[:max(n, 0)], err, v)
				}
			}
			var user []string
			for _, n := range listXattr(t, rfile) {
				if strings.HasPrefix(n, "user.") {
					user = append(user, n)
				}
			}
			if !slices.Equal(user, []string{"user.bin", "user.long", "user.one"}) {
				t.Errorf("user xattrs listed: %v", user)
			}
			// Times: explicit utimens values to the nanosecond; the mtime a
			// write left to the second at least (nanoseconds reported).
			rt := statOf(t, filepath.Join(r, "touched"))
			if rt.Atim != wtouched.Atim || rt.Mtim != wtouched.Mtim {
				t.Errorf("utimens times: reader atime %v mtime %v, writer %v %v", tsTime(rt.Atim), tsTime(rt.Mtim), tsTime(wtouched.Atim), tsTime(wtouched.Mtim))
			}
			if rt.Mtim.Sec != 1650000000 || rt.Mtim.Nsec != 987654321 || rt.Atim.Sec != 1600000000 || rt.Atim.Nsec != 111222333 {
				t.Errorf("utimens times: reader atime %v mtime %v, set %v %v", tsTime(rt.Atim), tsTime(rt.Mtim), when[0], when[1])
			}
			if rst.Mtim.Sec != wfile.Mtim.Sec {
				t.Errorf("mtime after write: reader %v, writer %v", tsTime(rst.Mtim), tsTime(wfile.Mtim))
			} else if rst.Mtim.Nsec != wfile.Mtim.Nsec {
				t.Logf("mtime after write: seconds agree, nanoseconds differ: reader %v, writer %v", tsTime(rst.Mtim), tsTime(wfile.Mtim))
			} else {
				t.Logf("mtime after write agrees to the nanosecond: %v (ctime reader %v writer %v)", tsTime(rst.Mtim), tsTime(rst.Ctim), tsTime(wfile.Ctim))
			}
			if rst.Ctim != wfile.Ctim {
				t.Logf("ctime differs: reader %v, writer %v", tsTime(rst.Ctim), tsTime(wfile.Ctim))
			}
			_ = wst
			for name, tgt := range map[string]string{"sl": target, "abs": "/absolute/elsewhere"} {
				if got, err := os.Readlink(filepath.Join(r, name)); err != nil || got != tgt {
					t.Errorf("readlink %s: %q, %v; want %q", name, got, err, tgt)
				}
			}
			if st := statOf(t, filepath.Join(r, "sub")); st.Mode != syscall.S_IFDIR|0o711 {
				t.Errorf("dir mode %o, want 40711", st.Mode)
			}
			names, err := readNames(filepath.Join(r, "sub"))
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(names)
			if !slices.Equal(names, want) {
				t.Errorf("listing: %d names, want %d; missing %v extra %v", len(names), len(want), firstN(minus(want, names), 5), firstN(minus(names, want), 5))
			}
			top, _ := readNames(r)
			sort.Strings(top)
			if !slices.Equal(top, []string{"abs", "data.bin", "sl", "sub", "touched"}) {
				t.Errorf("top listing %v", top)
			}

			// Changes by the reader are seen by the writer.
			if err := os.Truncate(rfile, 100); err != nil {
				t.Fatal(err)
			}
			if err := unix.Removexattr(rfile, "user.long"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(r, "sub", "e000"), filepath.Join(r, "renamed")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1200 * time.Millisecond)
			if st := statOf(t, file); st.Size != 100 {
				t.Errorf("writer sees size %d after the reader's truncate, want 100", st.Size)
			}
			if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, data[:100]) {
				t.Errorf("writer reads %d bytes after truncate, %v", len(b), err)
			}
			if _, err := unix.Getxattr(file, "user.long", nil); err != syscall.ENODATA {
				t.Errorf("writer's getxattr of the removed user.long: %v, want ENODATA", err)
			}
			if _, err := os.Lstat(filepath.Join(w, "sub", "e000")); !os.IsNotExist(err) {
				t.Errorf("writer still sees sub/e000 after the reader's rename: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(w, "renamed")); err != nil {
				t.Errorf("writer does not see renamed: %v", err)
			}
		})
	}
}

// TestBrickfsBackendXattrs does the same operations once through brickfs
// and once through the native client, into different names, and compares
// what each left on the brick: the set of xattr names (trusted.gfid,
// trusted.gfid2path.*, trusted.glusterfs.mdata, trusted.glusterfs.dht on
// directories, user.*), the mdata header, the DHT layout of directories,
// the gfid2path value and the .glusterfs GFID link.
func TestBrickfsBackendXattrs(t *testing.T) {
	c, vol := newVolume(t, "bknd")
	bmnt := c.MountBrickfs(t, c.Spec(vol))
	dumpClientLog(t, c, bmnt)
	nmnt := c.MountNative(t, vol)
	backend := c.Brick(t, vol, 0).Path

	ops := func(mnt, p string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(mnt, p+"dir"), 0o755); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(mnt, p+"dir", "file")
		if err := os.WriteFile(f, bytes.Repeat([]byte("x"), 70000), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setxattr(f, "user.k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("file", filepath.Join(mnt, p+"dir", "sl")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(mnt, p+"dir", "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setxattr(filepath.Join(mnt, p+"dir", "sub"), "user.d", []byte("dv"), 0); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(mnt, p+"dir", "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(f, filepath.Join(mnt, p+"dir", "hard")); err != nil {
			t.Fatal(err)
		}
	}
	ops(bmnt, "b")
	ops(nmnt, "n")
	// Let write-behind and md-cache of the native client settle.
	c.Unmount(t, nmnt)

	gfidRe := regexp.MustCompile(`^0x[0-9a-f]{32}$`)
	for _, name := range []string{"dir", "dir/file", "dir/sl", "dir/sub", "dir/fifo", "dir/hard"} {
		bp, np := filepath.Join(backend, "b"+name), filepath.Join(backend, "n"+name)
		bx, nx := backendXattrs(t, bp), backendXattrs(t, np)
		bn, nn := xattrNames(bx), xattrNames(nx)
		if !slices.Equal(bn, nn) {
			t.Errorf("%s: xattr names differ:\n  brickfs %v\n  native  %v", name, bn, nn)
		} else {
			t.Logf("%s: same xattr names %v", name, bn)
		}
		if !gfidRe.MatchString(bx["trusted.gfid"]) {
			t.Errorf("%s: brickfs trusted.gfid %q", name, bx["trusted.gfid"])
		}
		// mdata: version 1, flags, then ctime, mtime, atime (sec, nsec
		// each): compare version and flags.
		bm, nm := bx["trusted.glusterfs.mdata"], nx["trusted.glusterfs.mdata"]
		if len(bm) != len(nm) || len(bm) < 20 || bm[:20] != nm[:20] {
			t.Errorf("%s: trusted.glusterfs.mdata header: brickfs %.20s (len %d), native %.20s (len %d)", name, bm, len(bm), nm, len(nm))
		}
		if v, ok := bx["trusted.glusterfs.dht"]; ok || nx["trusted.glusterfs.dht"] != "" {
			if v != nx["trusted.glusterfs.dht"] {
				t.Errorf("%s: trusted.glusterfs.dht: brickfs %s, native %s", name, v, nx["trusted.glusterfs.dht"])
			}
		}
		for k, v := range bx {
			if strings.HasPrefix(k, "user.") && nx[k] != v {
				t.Errorf("%s: %s brickfs %s native %s", name, k, v, nx[k])
			}
		}
		// gfid2path values are "<parent gfid>/<basename>".
		for _, x := range []struct {
			who, path string
			m         map[string]string
		}{{"brickfs", bp, bx}, {"native", np, nx}} {
			parent := backendXattrs(t, filepath.Dir(x.path))["trusted.gfid"]
			for k, v := range x.m {
				if !strings.HasPrefix(k, "trusted.gfid2path.") {
					continue
				}
				raw, _ := hex.DecodeString(strings.TrimPrefix(v, "0x"))
				want := gfidString(parent) + "/" + filepath.Base(x.path)
				if name == "dir/hard" || name == "dir/file" {
					want2 := gfidString(parent) + "/" + map[string]string{"dir/hard": "file", "dir/file": "hard"}[name]
					if string(raw) == want2 {
						continue
					}
				}
				if string(raw) != want {
					t.Errorf("%s %s: %s = %q, want %q", x.who, name, k, raw, want)
				}
			}
			// The GFID handle under .glusterfs: a hard link for files, a
			// symlink for directories.
			g := strings.TrimPrefix(x.m["trusted.gfid"], "0x")
			if len(g) != 32 {
				continue
			}
			h := filepath.Join(backend, ".glusterfs", g[0:2], g[2:4], gfidString(x.m["trusted.gfid"]))
			hst, err := os.Lstat(h)
			pst, _ := os.Lstat(x.path)
			switch {
			case err != nil:
				t.Errorf("%s %s: no GFID handle: %v", x.who, name, err)
			case pst.IsDir() && hst.Mode()&os.ModeSymlink == 0:
				t.Errorf("%s %s: GFID handle of a dir is not a symlink", x.who, name)
			case !pst.IsDir() && !os.SameFile(hst, pst):
				t.Errorf("%s %s: GFID handle is not a hard link of the file", x.who, name)
			}
		}
		bst, nst := statOf(t, bp), statOf(t, np)
		if bst.Mode != nst.Mode || bst.Uid != nst.Uid || bst.Gid != nst.Gid || bst.Nlink != nst.Nlink || bst.Size != nst.Size {
			t.Errorf("%s: backend stat differs: brickfs mode %o uid %d gid %d nlink %d size %d; native %o %d %d %d %d",
				name, bst.Mode, bst.Uid, bst.Gid, bst.Nlink, bst.Size, nst.Mode, nst.Uid, nst.Gid, nst.Nlink, nst.Size)
		}
	}
}

// backendXattrs reads every xattr of a brick backend path (not following
// symlinks), name -> hex value.
func backendXattrs(t *testing.T, path string) map[string]string {
	t.Helper()
	out, err := run(30*time.Second, "getfattr", "--absolute-names", "-h", "-d", "-m", ".", "-e", "hex", path)
	if err != nil {
		t.Fatalf("getfattr: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m
}

// xattrNames lists the names with the per-link hash of gfid2path folded.
func xattrNames(m map[string]string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, "trusted.gfid2path.") {
			k = "trusted.gfid2path.*"
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// gfidString turns "0x00112233..." into the canonical UUID form.
