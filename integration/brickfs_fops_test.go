package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestBrickfsFops drives every fop brickfs implements through a brickfs
// mount of a fresh single-brick volume and checks the results, on the mount
// and, where it says more, on the brick backend.
func TestBrickfsFops(t *testing.T) {
	c, vol := newVolume(t, "fops")
	mnt := c.MountBrickfs(t, c.Spec(vol))
	dumpClientLog(t, c, mnt)
	backend := c.Brick(t, vol, 0).Path

	// dir makes a fresh directory for one subtest.
	dir := func(t *testing.T) (string, string) {
		t.Helper()
		name := strings.NewReplacer("/", "-").Replace(t.Name())
		d := filepath.Join(mnt, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("mkdir: %v", err)
		}
		return d, filepath.Join(backend, name)
	}
	write := func(t *testing.T, p string, b []byte) {
		t.Helper()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	read := func(t *testing.T, p string) []byte {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return b
	}

	t.Run("LookupStatFstat", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("0123456789"))
		st := statOf(t, p)
		if st.Size != 10 || st.Mode != syscall.S_IFREG|0o644 || st.Nlink != 1 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("stat: size %d mode %o nlink %d uid %d gid %d; want 10, 100644, 1, 0, 0", st.Size, st.Mode, st.Nlink, st.Uid, st.Gid)
		}
		// The brick reports times from trusted.glusterfs.mdata (the
		// client's clock, features/utime) and caps blocks at the size
		// (iatt_from_stat), so compare with the native client, and the
		// size and inode type with the backend.
		if bst := statOf(t, filepath.Join(bd, "f")); st.Size != bst.Size || st.Mode != bst.Mode {
			t.Errorf("stat through brickfs: size %d mode %o; backend: %d %o", st.Size, st.Mode, bst.Size, bst.Mode)
		}
		nat := c.MountNative(t, vol)
		nst := statOf(t, filepath.Join(nat, strings.TrimPrefix(p, mnt)))
		if st.Mtim != nst.Mtim || st.Ctim != nst.Ctim || st.Atim != nst.Atim || st.Blocks != nst.Blocks || st.Nlink != nst.Nlink || st.Ino != nst.Ino {
			t.Errorf("stat through brickfs: mtime %v ctime %v atime %v blocks %d nlink %d ino %d; native: %v %v %v %d %d %d",
				tsTime(st.Mtim), tsTime(st.Ctim), tsTime(st.Atim), st.Blocks, st.Nlink, st.Ino, tsTime(nst.Mtim), tsTime(nst.Ctim), tsTime(nst.Atim), nst.Blocks, nst.Nlink, nst.Ino)
		}
		if st.Blksize != nst.Blksize {
			t.Errorf("st_blksize: brickfs %d, native %d", st.Blksize, nst.Blksize)
		}
		c.Unmount(t, nat)
		f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		var fst syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &fst); err != nil {
			t.Fatal(err)
		}
		if fst.Size != 13 || fst.Ino != st.Ino {
			t.Errorf("fstat after append: size %d ino %d; want 13, ino %d", fst.Size, fst.Ino, st.Ino)
		}
		if got := read(t, p); string(got) != "0123456789abc" {
			t.Errorf("content %q", got)
		}
		if _, err := os.Lstat(filepath.Join(d, "missing")); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("lstat of a missing name: %v, want ENOENT", err)
		}
		if _, err := os.Lstat(filepath.Join(d, "f", "x")); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("lstat below a file: %v, want ENOTDIR", err)
		}
	})

	t.Run("ChmodChown", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("x"))
		if err := os.Chmod(p, 0o4751); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 1234, 5678); err != nil {
			t.Fatal(err)
		}
		// chown by root clears setuid, as everywhere.
		for _, path := range []string{p, filepath.Join(bd, "f")} {
			st := statOf(t, path)
			if st.Mode&0o7777 != 0o751 || st.Uid != 1234 || st.Gid != 5678 {
				t.Errorf("%s: mode %o uid %d gid %d; want 751 (setuid cleared by chown), 1234, 5678", path, st.Mode&0o7777, st.Uid, st.Gid)
			}
		}
		if err := os.Chmod(p, 0o2640); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, -1, 42); err != nil {
			t.Fatal(err)
		}
		st := statOf(t, p)
		if st.Uid != 1234 || st.Gid != 42 {
			t.Errorf("after chown -1:42: uid %d gid %d", st.Uid, st.Gid)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
		if st := statOf(t, filepath.Join(bd, "f")); st.Mode&0o7777 != 0o600 {
			t.Errorf("backend mode %o, want 600", st.Mode&0o7777)
		}
	})

	t.Run("Utimens", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("x"))
		if out, err := exec.Command("touch", "-d", "2021-02-03 04:05:06.123456789 UTC", p).CombinedOutput(); err != nil {
			t.Fatalf("touch -d: %v: %s", err, out)
		}
		want := time.Date(2021, 2, 3, 4, 5, 6, 123456789, time.UTC)
		st := statOf(t, p)
		if got := tsTime(st.Mtim); !got.Equal(want) {
			t.Errorf("mtime %v, want %v", got, want)
		}
		if got := tsTime(st.Atim); !got.Equal(want) {
			t.Errorf("atime %v, want %v", got, want)
		}
		if out, err := exec.Command("touch", "-a", "-d", "2019-01-01 00:00:01.5 UTC", p).CombinedOutput(); err != nil {
			t.Fatalf("touch -a -d: %v: %s", err, out)
		}
		st = statOf(t, p)
		if got := tsTime(st.Atim); !got.Equal(time.Date(2019, 1, 1, 0, 0, 1, 5e8, time.UTC)) {
			t.Errorf("atime after touch -a: %v", got)
		}
		if got := tsTime(st.Mtim); !got.Equal(want) {
			t.Errorf("mtime changed by touch -a: %v", got)
		}
		// The brick keeps the times in trusted.glusterfs.mdata (features/utime);
		// the backend inode's own mtime is set too.
		if bst := statOf(t, filepath.Join(bd, "f")); tsTime(bst.Mtim).Unix() != want.Unix() {
			t.Errorf("backend mtime %v, want %v", tsTime(bst.Mtim), want)
		}
		// utimensat(UTIME_NOW) moves mtime to about now.
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_NOW}}, 0); err != nil {
			t.Fatal(err)
		}
		if got := tsTime(statOf(t, p).Mtim); time.Since(got).Abs() > time.Minute {
			t.Errorf("mtime after UTIME_NOW: %v, now %v", got, time.Now())
		}
	})

	t.Run("TruncateFtruncate", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("0123456789"))
		if err := os.Truncate(p, 4); err != nil {
			t.Fatal(err)
		}
		if got := read(t, p); string(got) != "0123" {
			t.Errorf("after truncate 4: %q", got)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(1 << 20); err != nil {
			t.Fatal(err)
		}
		var fst syscall.Stat_t
		syscall.Fstat(int(f.Fd()), &fst)
		if fst.Size != 1<<20 {
			t.Errorf("fstat after ftruncate 1 MiB: size %d", fst.Size)
		}
		got := read(t, p)
		if len(got) != 1<<20 || string(got[:4]) != "0123" || !bytes.Equal(got[4:], make([]byte, 1<<20-4)) {
			t.Errorf("after ftruncate grow: len %d, head %q, tail not zero", len(got), got[:min(len(got), 8)])
		}
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if st := statOf(t, filepath.Join(bd, "f")); st.Size != 0 {
			t.Errorf("backend size after ftruncate 0: %d", st.Size)
		}
		if err := os.Truncate(filepath.Join(d, "missing"), 0); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("truncate missing: %v, want ENOENT", err)
		}
	})

	t.Run("Access", func(t *testing.T) {
		d, _ := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("x"))
		if err := unix.Access(p, unix.R_OK|unix.W_OK); err != nil {
			t.Errorf("access rw of 0644 as root: %v", err)
		}
		// Root needs one x bit to execute.
		if err := unix.Access(p, unix.X_OK); !errors.Is(err, syscall.EACCES) {
			t.Errorf("access x of 0644 as root: %v, want EACCES", err)
		}
		os.Chmod(p, 0o744)
		if err := unix.Access(p, unix.X_OK); err != nil {
			t.Errorf("access x of 0744: %v", err)
		}
		if err := unix.Access(filepath.Join(d, "missing"), unix.F_OK); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("access missing: %v, want ENOENT", err)
		}
		// As an unprivileged user, in a child process (setuid in a Go
		// test would change every thread).
		os.Chmod(p, 0o640)
		os.Chmod(d, 0o755)
		// Relative to the test directory: the run directory above the
		// mount point is 0700.
		asUser := func(args ...string) *exec.Cmd {
			cmd := exec.Command("setpriv", append([]string{"--reuid=4321", "--regid=4321", "--clear-groups"}, args...)...)
			cmd.Dir = d
			return cmd
		}
		out, err := asUser("cat", "f").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("cat of a 0640 root file as uid 4321: %v: %s; want Permission denied", err, out)
		}
		os.Chmod(p, 0o644)
		out, err = asUser("cat", "f").CombinedOutput()
		if err != nil || string(out) != "x" {
			t.Errorf("cat of a 0644 root file as uid 4321: %v: %q", err, out)
		}
		// Write access as the owner of a 0600 file.
		os.Chown(p, 4321, 4321)
		os.Chmod(p, 0o600)
		if out, err := asUser("sh", "-c", "echo y >> f && cat f").CombinedOutput(); err != nil || string(out) != "xy\n" {
			t.Errorf("append and read as the owner of a 0600 file: %v: %q", err, out)
		}
		if out, err := asUser("sh", "-c", "echo z > new").CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("create in a root 0755 dir as uid 4321: %v: %q; want Permission denied", err, out)
		}
	})

	t.Run("Readdir", func(t *testing.T) {
		d, bd := dir(t)
		const n = 2000
		want := make([]string, 0, n+2)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("entry-%04d-%s", i, strings.Repeat("x", i%50))
			f, err := os.OpenFile(filepath.Join(d, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
			f.Close()
			want = append(want, name)
		}
		os.Mkdir(filepath.Join(d, "subdir"), 0o755)
		os.Symlink("entry-0000-", filepath.Join(d, "link"))
		want = append(want, "subdir", "link")
		sort.Strings(want)

		// Small getdents buffers: many READDIR(P) calls, each resuming at
		// the offset the last entry carried.
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var got []string
		types := map[string]os.FileMode{}
		for {
			ents, err := f.ReadDir(97)
			for _, e := range ents {
				got = append(got, e.Name())
				types[e.Name()] = e.Type()
			}
			if err == io.EOF || len(ents) == 0 {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		sorted := slices.Clone(got)
		sort.Strings(sorted)
		if dup := slices.Compact(slices.Clone(sorted)); len(dup) != len(sorted) {
			t.Errorf("readdir returned %d names, %d distinct: duplicates", len(sorted), len(dup))
		}
		if !slices.Equal(sorted, want) {
			t.Errorf("readdir: %d names, want %d; missing %v; extra %v", len(sorted), len(want), firstN(minus(want, sorted), 5), firstN(minus(sorted, want), 5))
		}
		if types["subdir"] != os.ModeDir || types["link"] != os.ModeSymlink || types["entry-0001-x"] != 0 {
			t.Errorf("d_type: subdir %v link %v file %v", types["subdir"], types["link"], types["entry-0001-x"])
		}
		// The backend has the same names.
		bents, err := os.ReadDir(bd)
		if err != nil {
			t.Fatal(err)
		}
		var bnames []string
		for _, e := range bents {
			bnames = append(bnames, e.Name())
		}
		if !slices.Equal(bnames, want) {
			t.Errorf("backend has %d names, brickfs %d", len(bnames), len(want))
		}
		// Rewind and read again: same set.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		again, err := f.Readdirnames(-1)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(again)
		if !slices.Equal(again, want) {
			t.Errorf("after rewinddir: %d names, want %d", len(again), len(want))
		}
		// Stat of every entry agrees with the listing (READDIRP primes
		// the inodes; a later lookup must give the same inode numbers).
		ino := map[uint64]string{}
		for _, name := range want[:200] {
			st := statOf(t, filepath.Join(d, name))
			if o, dup := ino[st.Ino]; dup {
				t.Errorf("%s and %s share inode %d", name, o, st.Ino)
			}
			ino[st.Ino] = name
		}
	})

	t.Run("HiddenAnonymousInodeDir", func(t *testing.T) {
		// AFR's .glusterfs-anonymous-inode-<volume-id> lives in the brick
		// root; brickfs must not show it. The native client makes it here.
		id := volumeID(t, c, vol)
		anon := ".glusterfs-anonymous-inode-" + id
		nat := c.MountNative(t, vol)
		if err := os.Mkdir(filepath.Join(nat, anon), 0o755); err != nil {
			t.Fatalf("mkdir %s through the native client: %v", anon, err)
		}
		if _, err := os.Stat(filepath.Join(backend, anon)); err != nil {
			t.Fatalf("backend: %v", err)
		}
		names, err := readNames(mnt)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasPrefix(n, ".glusterfs") {
				t.Errorf("brickfs shows %s in the volume root", n)
			}
		}
		if len(names) == 0 {
			t.Errorf("empty root listing")
		}
		c.Unmount(t, nat)
	})

	t.Run("CreateMkdirMknodSymlinkLink", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("data")
		f.Close()
		if _, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640); !errors.Is(err, syscall.EEXIST) {
			t.Errorf("O_EXCL create of an existing file: %v, want EEXIST", err)
		}
		if st := statOf(t, p); st.Mode != syscall.S_IFREG|0o640 {
			t.Errorf("create mode %o, want 100640", st.Mode)
		}
		// umask applies.
		old := syscall.Umask(0o027)
		err = os.Mkdir(filepath.Join(d, "sub"), 0o777)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		if st := statOf(t, filepath.Join(d, "sub")); st.Mode != syscall.S_IFDIR|0o750 || st.Nlink < 2 {
			t.Errorf("mkdir 0777 with umask 027: mode %o nlink %d, want 40750, >= 2", st.Mode, st.Nlink)
		}
		if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); !errors.Is(err, syscall.EEXIST) {
			t.Errorf("mkdir of an existing dir: %v, want EEXIST", err)
		}
		if err := syscall.Mkfifo(filepath.Join(d, "fifo"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{filepath.Join(d, "fifo"), filepath.Join(bd, "fifo")} {
			if st := statOf(t, path); st.Mode != syscall.S_IFIFO|0o600 {
				t.Errorf("%s: mode %o, want fifo 0600", path, st.Mode)
			}
		}
		// A fifo on brickfs works as a fifo (the kernel serves it locally).
		done := make(chan string, 1)
		go func() {
			b, _ := os.ReadFile(filepath.Join(d, "fifo"))
			done <- string(b)
		}()
		if err := os.WriteFile(filepath.Join(d, "fifo"), []byte("through the pipe"), 0); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-done:
			if got != "through the pipe" {
				t.Errorf("fifo read %q", got)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("fifo read blocked")
		}
		if err := syscall.Mknod(filepath.Join(d, "null"), syscall.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if st := statOf(t, filepath.Join(d, "null")); st.Mode != syscall.S_IFCHR|0o644 || st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("mknod char 1:3: mode %o rdev %x", st.Mode, st.Rdev)
		}

		target := "../some/where/" + strings.Repeat("t", 200)
		if err := os.Symlink(target, filepath.Join(d, "sl")); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(filepath.Join(d, "sl")); err != nil || got != target {
			t.Errorf("readlink: %q, %v", got, err)
		}
		if got, err := os.Readlink(filepath.Join(bd, "sl")); err != nil || got != target {
			t.Errorf("backend readlink: %q, %v", got, err)
		}
		if st := statOf(t, filepath.Join(d, "sl")); st.Mode&syscall.S_IFMT != syscall.S_IFLNK || st.Size != int64(len(target)) {
			t.Errorf("symlink stat: mode %o size %d", st.Mode, st.Size)
		}
		if _, err := os.Readlink(p); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("readlink of a file: %v, want EINVAL", err)
		}

		if err := os.Link(p, filepath.Join(d, "hard")); err != nil {
			t.Fatal(err)
		}
		a, b := statOf(t, p), statOf(t, filepath.Join(d, "hard"))
		if a.Ino != b.Ino || b.Nlink != 2 {
			t.Errorf("link: inodes %d/%d, nlink %d; want equal, 2", a.Ino, b.Ino, b.Nlink)
		}
		if got := read(t, filepath.Join(d, "hard")); string(got) != "data" {
			t.Errorf("read through the link: %q", got)
		}
		if err := os.Link(p, filepath.Join(d, "hard")); !errors.Is(err, syscall.EEXIST) {
			t.Errorf("link onto an existing name: %v, want EEXIST", err)
		}
		if err := os.Link(filepath.Join(d, "sub"), filepath.Join(d, "dirlink")); !errors.Is(err, syscall.EPERM) {
			t.Errorf("link of a directory: %v, want EPERM", err)
		}
	})

	t.Run("UnlinkRmdir", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("x"))
		os.Link(p, filepath.Join(d, "f2"))
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("lstat after unlink: %v", err)
		}
		if st := statOf(t, filepath.Join(d, "f2")); st.Nlink != 1 {
			t.Errorf("nlink of the other name after unlink: %d", st.Nlink)
		}
		os.Remove(filepath.Join(d, "f2"))
		// An open, unlinked file stays readable.
		if b, err := io.ReadAll(f); err != nil || string(b) != "x" {
			t.Errorf("read of an open unlinked file: %q, %v", b, err)
		}
		f.Close()
		if _, err := os.Lstat(filepath.Join(bd, "f")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("backend still has the unlinked file: %v", err)
		}
		if err := os.Remove(filepath.Join(d, "f")); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("unlink missing: %v", err)
		}
		os.MkdirAll(filepath.Join(d, "a", "b"), 0o755)
		if err := syscall.Rmdir(filepath.Join(d, "a")); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			t.Errorf("rmdir of a non-empty dir: %v, want ENOTEMPTY", err)
		}
		if err := syscall.Rmdir(filepath.Join(d, "a", "b")); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Rmdir(filepath.Join(d, "a")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(bd, "a")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("backend still has the removed dir: %v", err)
		}
		write(t, filepath.Join(d, "file"), nil)
		if err := syscall.Rmdir(filepath.Join(d, "file")); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("rmdir of a file: %v, want ENOTDIR", err)
		}
		if err := syscall.Unlink(d); !errors.Is(err, syscall.EISDIR) && !errors.Is(err, syscall.EPERM) {
			t.Errorf("unlink of a dir: %v, want EISDIR", err)
		}
	})

	t.Run("Rename", func(t *testing.T) {
		d, bd := dir(t)
		a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
		write(t, a, []byte("AAA"))
		write(t, b, []byte("BBBBBB"))
		ino := statOf(t, a).Ino
		if err := os.Rename(a, b); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(a); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("old name after rename: %v", err)
		}
		if got := read(t, b); string(got) != "AAA" {
			t.Errorf("overwritten target reads %q", got)
		}
		if st := statOf(t, b); st.Ino != ino {
			t.Errorf("inode changed by rename: %d -> %d", ino, st.Ino)
		}
		if got, _ := os.ReadFile(filepath.Join(bd, "b")); string(got) != "AAA" {
			t.Errorf("backend target reads %q", got)
		}
		// Across directories, with a new name.
		os.Mkdir(filepath.Join(d, "d1"), 0o755)
		os.Mkdir(filepath.Join(d, "d2"), 0o755)
		if err := os.Rename(b, filepath.Join(d, "d2", "moved")); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(d, "d2", "moved")); string(got) != "AAA" {
			t.Errorf("moved file reads %q", got)
		}
		// A directory with contents, across directories.
		os.MkdirAll(filepath.Join(d, "d1", "tree", "x"), 0o755)
		write(t, filepath.Join(d, "d1", "tree", "x", "leaf"), []byte("leaf"))
		if err := os.Rename(filepath.Join(d, "d1", "tree"), filepath.Join(d, "d2", "tree2")); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(d, "d2", "tree2", "x", "leaf")); string(got) != "leaf" {
			t.Errorf("leaf under the moved dir reads %q", got)
		}
		if got, _ := os.ReadFile(filepath.Join(bd, "d2", "tree2", "x", "leaf")); string(got) != "leaf" {
			t.Errorf("backend leaf reads %q", got)
		}
		// A dir over an empty dir replaces it; over a non-empty one fails.
		os.Mkdir(filepath.Join(d, "empty"), 0o755)
		// syscall.Rename: os.Rename refuses an existing directory as the
		// target itself.
		if err := syscall.Rename(filepath.Join(d, "d1"), filepath.Join(d, "empty")); err != nil {
			t.Errorf("rename dir over empty dir: %v", err)
		}
		if err := syscall.Rename(filepath.Join(d, "empty"), filepath.Join(d, "d2")); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			t.Errorf("rename dir over a non-empty dir: %v, want ENOTEMPTY", err)
		}
		write(t, filepath.Join(d, "file"), nil)
		if err := syscall.Rename(filepath.Join(d, "file"), filepath.Join(d, "d2")); !errors.Is(err, syscall.EISDIR) {
			t.Errorf("rename file over a dir: %v, want EISDIR", err)
		}
		names, _ := readNames(d)
		sort.Strings(names)
		if !slices.Equal(names, []string{"d2", "empty", "file"}) {
			t.Errorf("after renames the dir holds %v", names)
		}
	})

	t.Run("ReadWriteLarge", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "big")
		data := make([]byte, 8<<20)
		rand.Read(data)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if n, err := f.Write(data[off : off+1<<20]); err != nil || n != 1<<20 {
				t.Fatalf("1 MiB write at %d: %d, %v", off, n, err)
			}
		}
		// pwrite into the middle, unaligned.
		patch := []byte("patched in the middle")
		if _, err := f.WriteAt(patch, 3<<20+17); err != nil {
			t.Fatal(err)
		}
		copy(data[3<<20+17:], patch)
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if got := read(t, p); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("read back %d bytes differ from what was written", len(got))
		}
		if got, err := os.ReadFile(filepath.Join(bd, "big")); err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("backend file differs (%d bytes, %v)", len(got), err)
		}
		// pread at odd offsets, and past EOF.
		f, _ = os.Open(p)
		defer f.Close()
		buf := make([]byte, 1<<20)
		if n, err := f.ReadAt(buf, 5<<20-3); n != len(buf) || err != nil || !bytes.Equal(buf, data[5<<20-3:6<<20-3]) {
			t.Errorf("pread 1 MiB at 5 MiB-3: %d, %v, equal %v", n, err, bytes.Equal(buf[:n], data[5<<20-3:5<<20-3+n]))
		}
		if n, err := f.ReadAt(buf, int64(len(data))-10); n != 10 || err != io.EOF {
			t.Errorf("pread across EOF: %d, %v; want 10, EOF", n, err)
		}
	})

	t.Run("ODirect", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "direct")
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_RDWR|unix.O_DIRECT, 0o644)
		if err != nil {
			t.Fatalf("open O_DIRECT: %v", err)
		}
		defer unix.Close(fd)
		buf := alignedBuf(1 << 20)
		rand.Read(buf)
		for i := 0; i < 4; i++ {
			if n, err := unix.Pwrite(fd, buf, int64(i)<<20); err != nil || n != len(buf) {
				t.Fatalf("O_DIRECT pwrite %d: %d, %v", i, n, err)
			}
		}
		small := alignedBuf(4096)
		copy(small, bytes.Repeat([]byte{0xA5}, 4096))
		if n, err := unix.Pwrite(fd, small, 4096); err != nil || n != 4096 {
			t.Fatalf("O_DIRECT pwrite 4 KiB: %d, %v", n, err)
		}
		want := append(append([]byte(nil), buf...), buf...)
		want = append(want, buf...)
		want = append(want, buf...)
		copy(want[4096:], small)
		// O_DIRECT bypasses the page cache: the backend has it at once.
		if got, _ := os.ReadFile(filepath.Join(bd, "direct")); !bytes.Equal(got, want) {
			t.Errorf("backend after O_DIRECT writes: %d bytes, differ", len(got))
		}
		rb := alignedBuf(1 << 20)
		if n, err := unix.Pread(fd, rb, 0); err != nil || n != len(rb) || !bytes.Equal(rb, want[:1<<20]) {
			t.Errorf("O_DIRECT pread: %d, %v, equal %v", n, err, bytes.Equal(rb[:max(n, 0)], want[:max(n, 0)]))
		}
		if n, err := unix.Pread(fd, rb, 4<<20); err != nil || n != 0 {
			t.Errorf("O_DIRECT pread at EOF: %d, %v", n, err)
		}
	})

	t.Run("FlushFsyncFdatasync", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString("first")
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(bd, "f")); string(got) != "first" {
			t.Errorf("backend after fsync: %q", got)
		}
		f.WriteString(" second")
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatalf("fdatasync: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(bd, "f")); string(got) != "first second" {
			t.Errorf("backend after fdatasync: %q", got)
		}
		// A directory fsync.
		df, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := df.Sync(); err != nil {
			t.Errorf("fsync of a directory: %v", err)
		}
		df.Close()
		// close (FLUSH) of a second descriptor keeps the first usable.
		g, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		g.WriteString("!")
		if err := g.Close(); err != nil {
			t.Errorf("close (flush): %v", err)
		}
		f.WriteAt([]byte("F"), 0)
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if got := read(t, p); string(got) != "First second!" {
			t.Errorf("content %q", got)
		}
	})

	t.Run("Statfs", func(t *testing.T) {
		nat := c.MountNative(t, vol)
		var b, n, k unix.Statfs_t
		if err := unix.Statfs(mnt, &b); err != nil {
			t.Fatal(err)
		}
		if err := unix.Statfs(nat, &n); err != nil {
			t.Fatal(err)
		}
		if err := unix.Statfs(backend, &k); err != nil {
			t.Fatal(err)
		}
		t.Logf("statfs brickfs: bsize %d frsize %d blocks %d bfree %d bavail %d files %d ffree %d namelen %d", b.Bsize, b.Frsize, b.Blocks, b.Bfree, b.Bavail, b.Files, b.Ffree, b.Namelen)
		t.Logf("statfs native:  bsize %d frsize %d blocks %d bfree %d bavail %d files %d ffree %d namelen %d", n.Bsize, n.Frsize, n.Blocks, n.Bfree, n.Bavail, n.Files, n.Ffree, n.Namelen)
		t.Logf("statfs brick fs: bsize %d frsize %d blocks %d bfree %d bavail %d files %d ffree %d namelen %d", k.Bsize, k.Frsize, k.Blocks, k.Bfree, k.Bavail, k.Files, k.Ffree, k.Namelen)
		bytesOf := func(s unix.Statfs_t, v uint64) uint64 { return v * uint64(s.Frsize) }
		if bytesOf(b, b.Blocks) != bytesOf(k, k.Blocks) || bytesOf(b, b.Blocks) != bytesOf(n, n.Blocks) {
			t.Errorf("total bytes: brickfs %d, native %d, brick fs %d", bytesOf(b, b.Blocks), bytesOf(n, n.Blocks), bytesOf(k, k.Blocks))
		}
		// Free space moves with other writers on this machine: 1% slack.
		near := func(x, y uint64) bool {
			d := int64(x) - int64(y)
			return d < 0 && -d <= int64(y/100+(1<<20)) || d >= 0 && d <= int64(y/100+(1<<20))
		}
		if !near(bytesOf(b, b.Bavail), bytesOf(n, n.Bavail)) || !near(bytesOf(b, b.Bfree), bytesOf(n, n.Bfree)) {
			t.Errorf("free/avail bytes: brickfs %d/%d, native %d/%d", bytesOf(b, b.Bfree), bytesOf(b, b.Bavail), bytesOf(n, n.Bfree), bytesOf(n, n.Bavail))
		}
		// The brick's storage.reserve (1%) comes off bfree, as in
		// posix_statfs; avail is what df shows on the brick fs.
		if !near(bytesOf(b, b.Bavail), bytesOf(k, k.Bavail)) {
			t.Errorf("avail bytes: brickfs %d, brick fs %d", bytesOf(b, b.Bavail), bytesOf(k, k.Bavail))
		}
		if b.Files != k.Files || b.Files != n.Files || b.Namelen != n.Namelen {
			t.Errorf("files %d/%d/%d namelen %d/%d (brickfs/native/brick)", b.Files, n.Files, k.Files, b.Namelen, n.Namelen)
		}
		// df through brickfs says the same as df through native.
		dfb, err1 := exec.Command("df", "-k", "--output=size", mnt).Output()
		dfn, err2 := exec.Command("df", "-k", "--output=size", nat).Output()
		if err1 != nil || err2 != nil || string(dfb) != string(dfn) {
			t.Errorf("df size: brickfs %q (%v), native %q (%v)", dfb, err1, dfn, err2)
		}
		c.Unmount(t, nat)
	})

	t.Run("Xattr", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		write(t, p, []byte("x"))
		val := append([]byte("binary\x00value\xff"), bytes.Repeat([]byte{7}, 3000)...)
		if err := unix.Setxattr(p, "user.bin", val, 0); err != nil {
			t.Fatalf("setxattr: %v", err)
		}
		if err := unix.Setxattr(p, "user.empty", nil, 0); err != nil {
			t.Fatalf("setxattr empty: %v", err)
		}
		if err := unix.Setxattr(p, "user.bin", []byte("again"), unix.XATTR_CREATE); !errors.Is(err, syscall.EEXIST) {
			t.Errorf("XATTR_CREATE of an existing name: %v, want EEXIST", err)
		}
		if err := unix.Setxattr(p, "user.nope", []byte("v"), unix.XATTR_REPLACE); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("XATTR_REPLACE of a missing name: %v, want ENODATA", err)
		}
		got := make([]byte, 8192)
		n, err := unix.Getxattr(p, "user.bin", got)
		if err != nil || !bytes.Equal(got[:n], val) {
			t.Errorf("getxattr: %d bytes, %v; equal %v", n, err, err == nil && bytes.Equal(got[:n], val))
		}
		if n, err := unix.Getxattr(p, "user.bin", nil); err != nil || n != len(val) {
			t.Errorf("getxattr size query: %d, %v; want %d", n, err, len(val))
		}
		if _, err := unix.Getxattr(p, "user.bin", make([]byte, 10)); !errors.Is(err, syscall.ERANGE) {
			t.Errorf("getxattr into a small buffer: %v, want ERANGE", err)
		}
		if n, err := unix.Getxattr(p, "user.empty", got); err != nil || n != 0 {
			t.Errorf("getxattr of an empty value: %d, %v", n, err)
		}
		if _, err := unix.Getxattr(p, "user.missing", got); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("getxattr missing: %v, want ENODATA", err)
		}
		if bv, err := Getfattr(filepath.Join(bd, "f"), "user.bin"); err != nil || bv != fmt.Sprintf("0x%x", val) {
			t.Errorf("backend user.bin: %.40s..., %v", bv, err)
		}
		names := listXattr(t, p)
		if !slices.Contains(names, "user.bin") || !slices.Contains(names, "user.empty") {
			t.Errorf("listxattr %v lacks user.bin or user.empty", names)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "trusted.glusterfs") || strings.HasPrefix(n, "trusted.gfid") {
				t.Errorf("listxattr shows the brick's internal %s", n)
			}
		}
		if err := unix.Removexattr(p, "user.bin"); err != nil {
			t.Fatalf("removexattr: %v", err)
		}
		if _, err := unix.Getxattr(p, "user.bin", got); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("getxattr after removexattr: %v, want ENODATA", err)
		}
		if err := unix.Removexattr(p, "user.bin"); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("removexattr of a missing name: %v, want ENODATA", err)
		}
		if slices.Contains(listXattr(t, p), "user.bin") {
			t.Errorf("listxattr still shows user.bin")
		}
		if _, err := Getfattr(filepath.Join(bd, "f"), "user.bin"); err == nil {
			t.Errorf("backend still has user.bin")
		}
		// On a directory and (l*) on a symlink's own... directories only:
		// the kernel refuses user.* on symlinks.
		if err := unix.Setxattr(d, "user.dir", []byte("dv"), 0); err != nil {
			t.Errorf("setxattr on a dir: %v", err)
		} else if n, err := unix.Getxattr(d, "user.dir", got); err != nil || string(got[:n]) != "dv" {
			t.Errorf("getxattr on a dir: %q, %v", got[:max(n, 0)], err)
		}
		// An fd-based set/get.
		f, _ := os.OpenFile(p, os.O_RDWR, 0)
		defer f.Close()
		if err := unix.Fsetxattr(int(f.Fd()), "user.fd", []byte("via fd"), 0); err != nil {
			t.Errorf("fsetxattr: %v", err)
		}
		if n, err := unix.Fgetxattr(int(f.Fd()), "user.fd", got); err != nil || string(got[:n]) != "via fd" {
			t.Errorf("fgetxattr: %q, %v", got[:max(n, 0)], err)
		}
	})

	t.Run("Fallocate", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		bp := filepath.Join(bd, "f")
		// Plain: allocates and extends.
		if err := unix.Fallocate(fd, 0, 0, 1<<20); err != nil {
			t.Fatalf("fallocate: %v", err)
		}
		if st := statOf(t, bp); st.Size != 1<<20 || st.Blocks*512 < 1<<20 {
			t.Errorf("after fallocate 1 MiB: backend size %d blocks %d", st.Size, st.Blocks)
		}
		if st := statOf(t, p); st.Size != 1<<20 {
			t.Errorf("after fallocate 1 MiB: size %d", st.Size)
		}
		// KEEP_SIZE: allocates past EOF, size stays.
		if err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 2<<20, 1<<20); err != nil {
			t.Fatalf("fallocate KEEP_SIZE: %v", err)
		}
		if st := statOf(t, bp); st.Size != 1<<20 || st.Blocks*512 < 2<<20 {
			t.Errorf("after KEEP_SIZE: backend size %d blocks %d; want 1 MiB, >= 2 MiB allocated", st.Size, st.Blocks)
		}
		var fst syscall.Stat_t
		syscall.Fstat(fd, &fst)
		if fst.Size != 1<<20 {
			t.Errorf("fstat after KEEP_SIZE: size %d", fst.Size)
		}
		// Fill with data, then punch a hole and zero a range.
		data := bytes.Repeat([]byte{0x5A}, 3<<20)
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		before := statOf(t, bp).Blocks
		if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 1<<20, 1<<20); err != nil {
			t.Fatalf("fallocate PUNCH_HOLE: %v", err)
		}
		after := statOf(t, bp)
		if after.Size != 3<<20 || before-after.Blocks < (1<<20)/512 {
			t.Errorf("punch 1 MiB: backend size %d, blocks %d -> %d; want 3 MiB and 1 MiB freed", after.Size, before, after.Blocks)
		}
		if err := unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 100, 1000); err != nil {
			t.Fatalf("fallocate ZERO_RANGE: %v", err)
		}
		if err := unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 3<<20, 4096); err != nil {
			t.Fatalf("fallocate ZERO_RANGE past EOF: %v", err)
		}
		copy(data[1<<20:2<<20], make([]byte, 1<<20))
		copy(data[100:1100], make([]byte, 1000))
		data = append(data, make([]byte, 4096)...)
		if got := read(t, p); !bytes.Equal(got, data) {
			t.Errorf("content after punch and zero: %d bytes, want %d, differ at %d", len(got), len(data), firstDiff(got, data))
		}
		// vfs_fallocate refuses it before any filesystem sees it.
		if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE, 0, 4096); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("PUNCH_HOLE without KEEP_SIZE: %v, want EOPNOTSUPP", err)
		}
	})

	t.Run("SeekDataHole", func(t *testing.T) {
		d, bd := dir(t)
		p := filepath.Join(d, "f")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		// data [0,1M) hole [1M,3M) data [3M,4M) hole to 6M (EOF).
		blk := bytes.Repeat([]byte{1}, 1<<20)
		f.WriteAt(blk, 0)
		f.WriteAt(blk, 3<<20)
		f.Truncate(6 << 20)
		f.Sync()
		bf, err := os.Open(filepath.Join(bd, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer bf.Close()
		cases := []struct {
			off    int64
			whence int
			want   int64 // -1: ENXIO
		}{
			{0, unix.SEEK_DATA, 0},
			{0, unix.SEEK_HOLE, 1 << 20},
			{1 << 20, unix.SEEK_DATA, 3 << 20},
			{2 << 20, unix.SEEK_HOLE, 2 << 20},
			{3 << 20, unix.SEEK_HOLE, 4 << 20},
			{4 << 20, unix.SEEK_DATA, -1},
			{5 << 20, unix.SEEK_HOLE, 5 << 20},
			{6 << 20, unix.SEEK_DATA, -1},
			{6 << 20, unix.SEEK_HOLE, -1},
			{7 << 20, unix.SEEK_HOLE, -1},
		}
		for _, tc := range cases {
			what := map[int]string{unix.SEEK_DATA: "SEEK_DATA", unix.SEEK_HOLE: "SEEK_HOLE"}[tc.whence]
			got, err := unix.Seek(fd, tc.off, tc.whence)
			bgot, berr := unix.Seek(int(bf.Fd()), tc.off, tc.whence)
			if tc.want < 0 {
				if !errors.Is(err, syscall.ENXIO) {
					t.Errorf("%s from %d: %d, %v; want ENXIO (backend: %d, %v)", what, tc.off, got, err, bgot, berr)
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("%s from %d: %d, %v; want %d (backend: %d, %v)", what, tc.off, got, err, tc.want, bgot, berr)
			}
		}
		// The file offset moved to the answer: a read continues there.
		if off, err := unix.Seek(fd, 1<<20, unix.SEEK_DATA); err == nil {
			b := make([]byte, 4)
			if n, err := f.Read(b); n != 4 || err != nil || b[0] != 1 || off != 3<<20 {
				t.Errorf("read after SEEK_DATA to %d: %d %v %v", off, n, err, b)
			}
		}
	})

	t.Run("PosixLocks", func(t *testing.T) {
		d, _ := dir(t)
		p := filepath.Join(d, "lockfile")
		write(t, p, make([]byte, 1000))
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := f.Fd()
		lk := func(cmd int, typ int16, start, n int64) error {
			l := syscall.Flock_t{Type: typ, Whence: io.SeekStart, Start: start, Len: n}
			return syscall.FcntlFlock(fd, cmd, &l)
		}

		h := startLockHelper(t)
		h.do("open "+p, "ok")
		h.do("setlk w 0 100", "ok")

		// A second process conflicts: EAGAIN (or EACCES, which POSIX
		// allows) for an overlapping range, none for a disjoint one.
		if err := lk(syscall.F_SETLK, syscall.F_WRLCK, 50, 10); !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
			t.Errorf("F_SETLK on a range another process holds: %v, want EAGAIN", err)
		}
		if err := lk(syscall.F_SETLK, syscall.F_RDLCK, 99, 1); !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
			t.Errorf("F_SETLK read lock on the last held byte: %v, want EAGAIN", err)
		}
		if err := lk(syscall.F_SETLK, syscall.F_WRLCK, 100, 50); err != nil {
			t.Errorf("F_SETLK on a disjoint range: %v", err)
		}
		// F_GETLK names the holder, its range and its pid.
		gl := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 10}
		if err := syscall.FcntlFlock(fd, syscall.F_GETLK, &gl); err != nil {
			t.Fatalf("F_GETLK: %v", err)
		}
		if gl.Type != syscall.F_WRLCK || gl.Start != 0 || gl.Len != 100 || gl.Pid != int32(h.Pid) {
			t.Errorf("F_GETLK: type %d start %d len %d pid %d; want write lock 0+100 held by pid %d", gl.Type, gl.Start, gl.Len, gl.Pid, h.Pid)
		}
		// And the helper sees ours.
		got := h.do("getlk w 0 0", "type")
		if want := fmt.Sprintf("type %d pid %d start 100 len 50", syscall.F_WRLCK, os.Getpid()); got != want {
			t.Errorf("helper F_GETLK: %q, want %q", got, want)
		}
		// Unlocking ours lets the helper take it.
		if err := lk(syscall.F_SETLK, syscall.F_UNLCK, 100, 50); err != nil {
			t.Errorf("unlock: %v", err)
		}
		h.do("setlk w 100 50", "ok")
		// Closing the helper's descriptor releases its locks.
		h.do("close", "ok")
		if err := lk(syscall.F_SETLK, syscall.F_WRLCK, 0, 0); err != nil {
			t.Errorf("F_SETLK of the whole file after the holder closed: %v", err)
		}
		// Our lock is now held; the helper's F_SETLKW waits for it.
		h.do("open "+p, "ok")
		if got := h.do("setlk r 10 10", "err"); !strings.Contains(got, "resource temporarily unavailable") && !strings.Contains(got, "permission denied") {
			t.Errorf("helper F_SETLK against our lock: %q", got)
		}
		h.send("setlkw r 10 10")
		if got, ok := h.reply(700 * time.Millisecond); ok {
			t.Fatalf("F_SETLKW did not block while the range was held: %q", got)
		}
		start := time.Now()
		// close drops every lock this process has on the file.
		f.Close()
		got, ok := h.reply(20 * time.Second)
		if !ok || got != "ok" {
			t.Fatalf("F_SETLKW after the holder closed: %q (answered %v)", got, ok)
		}
		t.Logf("F_SETLKW granted %v after the holder closed", time.Since(start).Round(time.Millisecond))
		// And now we block on the helper: F_SETLKW in this process.
		f2, _ := os.OpenFile(p, os.O_RDWR, 0)
		defer f2.Close()
		done := make(chan error, 1)
		go func() {
			l := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0}
			done <- syscall.FcntlFlock(f2.Fd(), syscall.F_SETLKW, &l)
		}()
		select {
		case err := <-done:
			t.Fatalf("our F_SETLKW returned %v while the helper held a read lock", err)
		case <-time.After(700 * time.Millisecond):
		}
		h.do("close", "ok")
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("our F_SETLKW: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("our F_SETLKW still blocked 20s after the helper closed")
		}
	})
}

// volumeID reads the volume's id with `gluster volume info`.
func volumeID(t *testing.T, c *Cluster, vol string) string {
	t.Helper()
	out := c.MustGluster(t, 1, "volume", "info", vol)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Volume ID: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Volume ID in %q", out)
	return ""
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func listXattr(t *testing.T, p string) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names
}

// alignedBuf returns n bytes aligned to 4096, for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := int(uintptr(unsafe.Pointer(&b[0])) & 4095)
	if off != 0 {
		off = 4096 - off
	}
	return b[off : off+n]
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func tsTime(ts syscall.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec).UTC() }
