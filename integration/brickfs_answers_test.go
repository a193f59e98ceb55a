package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fopHelperEnv, when set to a directory, makes the test binary a fop runner
// for TestBrickfsAnswers: it changes into that directory as root, drops to
// the uid and gid in fopHelperUIDEnv (its test directory need not be
// reachable by that user), then runs one fop per line of stdin and answers
// one line on stdout: the errno (0 for success) and, for stat, the mode in
// octal.
//
//	create P | mkdir P | mknod P | symlink P | link SRC P | rename SRC P
//	chmod P | chown P | truncate P | unlink P | rmdir P | open P
//	stat P | access P MASK
const (
	fopHelperEnv    = "BRICKFS_IT_FOP_HELPER"
	fopHelperUIDEnv = "BRICKFS_IT_FOP_UID"
)

func fopHelperMain() int {
	uid, err := strconv.Atoi(os.Getenv(fopHelperUIDEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fop helper: bad %s: %v\n", fopHelperUIDEnv, err)
		return 2
	}
	if err := os.Chdir(os.Getenv(fopHelperEnv)); err != nil {
		fmt.Fprintf(os.Stderr, "fop helper: %v\n", err)
		return 2
	}
	// Go applies these to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		fmt.Fprintf(os.Stderr, "fop helper: setgroups: %v\n", err)
		return 2
	}
	if err := syscall.Setgid(uid); err != nil {
		fmt.Fprintf(os.Stderr, "fop helper: setgid: %v\n", err)
		return 2
	}
	if err := syscall.Setuid(uid); err != nil {
		fmt.Fprintf(os.Stderr, "fop helper: setuid: %v\n", err)
		return 2
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) < 2 {
			fmt.Println("bad")
			continue
		}
		p := f[len(f)-1]
		var err error
		extra := ""
		switch f[0] {
		case "create":
			var fd int
			if fd, err = syscall.Open(p, syscall.O_CREAT|syscall.O_WRONLY, 0o644); err == nil {
				syscall.Close(fd)
			}
		case "mkdir":
			err = syscall.Mkdir(p, 0o755)
		case "mknod":
			err = syscall.Mknod(p, syscall.S_IFIFO|0o644, 0)
		case "symlink":
			err = syscall.Symlink("target", p)
		case "link":
			err = syscall.Link(f[1], p)
		case "rename":
			err = syscall.Rename(f[1], p)
		case "chmod":
			err = syscall.Chmod(p, 0o600)
		case "chown":
			err = syscall.Chown(p, uid, uid)
		case "truncate":
			err = syscall.Truncate(p, 0)
		case "unlink":
			err = syscall.Unlink(p)
		case "rmdir":
			err = syscall.Rmdir(p)
		case "open":
			var fd int
			if fd, err = syscall.Open(p, syscall.O_RDONLY, 0); err == nil {
				syscall.Close(fd)
			}
		case "stat":
			var st syscall.Stat_t
			if err = syscall.Lstat(f[1], &st); err == nil {
				extra = fmt.Sprintf(" %o", st.Mode)
			}
		case "access":
			m, _ := strconv.Atoi(f[2])
			err = syscall.Access(f[1], uint32(m))
		default:
			fmt.Println("bad")
			continue
		}
		var en syscall.Errno
		if err != nil && !errors.As(err, &en) {
			en = syscall.EINVAL
		}
		fmt.Printf("%d%s\n", int(en), extra)
	}
	return 0
}

// denyACL is a POSIX access ACL (the system.posix_acl_access xattr) for a
// directory of mode 0777 whose one named-user entry gives uid nothing.
func denyACL(uid int) []byte {
	le16 := func(b []byte, v uint16) []byte { return append(b, byte(v), byte(v>>8)) }
	le32 := func(b []byte, v uint32) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	const undef = 0xffffffff
	b := le32(nil, 2) // POSIX_ACL_XATTR_VERSION
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{
		{0x01, 7, undef},       // ACL_USER_OBJ rwx
		{0x02, 0, uint32(uid)}, // ACL_USER uid ---
		{0x04, 7, undef},       // ACL_GROUP_OBJ rwx
		{0x10, 7, undef},       // ACL_MASK rwx
		{0x20, 7, undef},       // ACL_OTHER rwx
	} {
		b = le32(le16(le16(b, e.tag), e.perm), e.id)
	}
	return b
}

// nobody is the unprivileged user the fop helper runs as.
const nobody = 65534

// runAs runs the fops in cmds as uid, from inside dir, and returns one
// answer per fop.
func runAs(t *testing.T, uid int, dir string, cmds []string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fopHelperEnv+"="+dir, fopHelperUIDEnv+"="+strconv.Itoa(uid))
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fop helper in %s: %v\n%s", dir, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cmds) {
		t.Fatalf("fop helper answered %d lines for %d fops: %q", len(lines), len(cmds), out)
	}
	return lines
}

func errnoText(s string) string {
	n, err := strconv.Atoi(strings.Fields(s)[0])
	if err != nil {
		return s
	}
	if n == 0 {
		return "success"
	}
	return fmt.Sprintf("%v (%d)", syscall.Errno(n), n)
}

// TestBrickfsAnswers checks three answers brickfs once got wrong, on a
// single-brick and a replica-3 volume, beside the native client on the same
// volume:
//
//  1. a fop whose name the bricks all refuse (a 256-byte name:
//     ENAMETOOLONG; a directory the caller may not search: EACCES) gets the
//     bricks' errno, not ENOTCONN (afr_final_errno);
//  2. mode 0000 is shown as 0000, not 0644/0755;
//  3. fallocate(ZERO_RANGE|KEEP_SIZE) reaching past EOF keeps the size.
func TestBrickfsAnswers(t *testing.T) {
	for _, kind := range []Kind{Single, Replica3} {
		t.Run(kind.String(), func(t *testing.T) {
			c := sharedCluster(t)
			shared.mu.Lock()
			shared.seq++
			vol := fmt.Sprintf("answers%d", shared.seq)
			shared.mu.Unlock()
			c.CreateVolume(t, vol, kind)
			c.Start(t, vol)

			// Set up through mounts of their own, so that the mounts under
			// test start with nothing cached.
			setup := c.MountBrickfs(t, c.Spec(vol))
			mk := func(p string, mode os.FileMode, uid int, dir bool) {
				t.Helper()
				full := filepath.Join(setup, p)
				var err error
				if dir {
					err = os.Mkdir(full, mode)
				} else {
					err = os.WriteFile(full, []byte("data\n"), mode)
				}
				if err == nil {
					err = os.Chmod(full, mode)
				}
				if err == nil {
					err = os.Chown(full, uid, uid)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			mk("open", 0o777, 0, true)
			mk("open/src", 0o644, nobody, false)
			// "locked" lets everybody in by its mode, which is all the
			// kernel checks (default_permissions, no acl); a POSIX ACL
			// entry denies uid 65534, which only the bricks' access-control
			// translator enforces. So its EACCES is the bricks' answer to
			// LOOKUP, not the kernel's.
			mk("locked", 0o777, 0, true)
			mk("locked/f", 0o666, nobody, false)
			mk("locked/d", 0o777, nobody, true)
			c.Unmount(t, setup)
			aclMnt := c.MountNative(t, vol, "acl")
			if err := syscall.Setxattr(filepath.Join(aclMnt, "locked"), "system.posix_acl_access", denyACL(nobody), 0); err != nil {
				t.Fatalf("set an ACL denying uid %d: %v", nobody, err)
			}
			c.Unmount(t, aclMnt)
			setup = c.MountBrickfs(t, c.Spec(vol))
			mk("zero", 0o777, 0, true)
			mk("zero/f", 0, nobody, false)
			mk("zero/d", 0, nobody, true)
			mk("zero/rootf", 0, 0, false)
			c.Unmount(t, setup)

			mnt := c.MountBrickfs(t, c.Spec(vol))
			dumpClientLog(t, c, mnt)
			nat := c.MountNative(t, vol)

			t.Run("UnanimousErrno", func(t *testing.T) {
				long := "open/" + strings.Repeat("n", 256)
				var cmds, want []string
				add := func(errno syscall.Errno, fops ...string) {
					for _, f := range fops {
						cmds = append(cmds, f)
						want = append(want, strconv.Itoa(int(errno)))
					}
				}
				for _, op := range []string{"create", "mkdir", "mknod", "symlink", "chmod", "chown", "truncate", "unlink", "rmdir", "open"} {
					add(syscall.ENAMETOOLONG, op+" "+long)
				}
				add(syscall.ENAMETOOLONG, "link open/src "+long, "rename open/src "+long)
				for _, op := range []string{"create", "mkdir", "mknod", "symlink"} {
					add(syscall.EACCES, op+" locked/new")
				}
				add(syscall.EACCES, "link open/src locked/new", "rename open/src locked/new")
				for _, op := range []string{"chmod", "chown", "truncate", "unlink", "open"} {
					add(syscall.EACCES, op+" locked/f")
				}
				add(syscall.EACCES, "rmdir locked/d")

				got := runAs(t, nobody, mnt, cmds)
				native := runAs(t, nobody, nat, cmds)
				for i := range cmds {
					if got[i] != want[i] || native[i] != want[i] {
						t.Errorf("%s as uid %d: brickfs %s, native %s; want %s",
							cmds[i], nobody, errnoText(got[i]), errnoText(native[i]), errnoText(want[i]))
					}
				}
				if lines := LogLines(c.MountLog(mnt), "quorum is not met"); len(lines) > 0 {
					t.Errorf("brickfs logged a quorum failure with every brick up:\n%s", strings.Join(lines, "\n"))
				}
				// The EACCES came from the bricks, through brickfs.
				refused := 0
				for _, l := range LogLines(c.MountLog(mnt), "permission denied") {
					if strings.Contains(l, "LOOKUP") {
						refused++
					}
				}
				if refused == 0 {
					t.Errorf("no LOOKUP refused with EACCES in the brickfs log: the kernel, not the bricks, refused")
				}
			})

			t.Run("ModeZero", func(t *testing.T) {
				for _, p := range []string{"zero/f", "zero/d", "zero/rootf"} {
					st, nst := statOf(t, filepath.Join(mnt, p)), statOf(t, filepath.Join(nat, p))
					want := uint32(syscall.S_IFREG)
					if p == "zero/d" {
						want = syscall.S_IFDIR
					}
					if st.Mode != want || nst.Mode != want {
						t.Errorf("%s: mode brickfs %o, native %o; want %o", p, st.Mode, nst.Mode, want)
					}
					for _, b := range c.Bricks(t, vol) {
						if bst := statOf(t, filepath.Join(b.Path, p)); bst.Mode != st.Mode {
							t.Errorf("%s: mode brickfs %o, brick %d %o", p, st.Mode, b.Index, bst.Mode)
						}
					}
				}
				// As the owner, a mode of 0000 grants nothing; stat says so.
				cmds := []string{"stat zero/f", "stat zero/d", "access zero/f 4", "access zero/f 2", "access zero/d 1", "open zero/f", "stat zero/d/x"}
				want := []string{"0 100000", "0 40000", "13", "13", "13", "13", "13"}
				for _, m := range []string{mnt, nat} {
					got := runAs(t, nobody, m, cmds)
					for i := range cmds {
						if got[i] != want[i] {
							t.Errorf("%s on %s as uid %d: %q, want %q", cmds[i], m, nobody, got[i], want[i])
						}
					}
				}
			})

			t.Run("ZeroRangeKeepSize", func(t *testing.T) {
				const mib = 1 << 20
				pattern := bytes.Repeat([]byte{0xab}, 5*mib)
				// fzero -k past EOF, then crossing it: the size stays 5 MiB
				// and what lies below EOF reads zero.
				for _, m := range []string{mnt, nat} {
					p := filepath.Join(m, "zr-"+filepath.Base(m))
					if err := os.WriteFile(p, pattern, 0o644); err != nil {
						t.Fatal(err)
					}
					f, err := os.OpenFile(p, os.O_RDWR, 0)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range [][2]int64{{5 * mib, mib}, {4 * mib, 2 * mib}} {
						if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, r[0], r[1]); err != nil {
							t.Errorf("%s: fallocate(ZERO_RANGE|KEEP_SIZE, %d, %d): %v", m, r[0], r[1], err)
						}
						var st syscall.Stat_t
						if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
							t.Fatal(err)
						}
						if st.Size != 5*mib {
							t.Errorf("%s: after fallocate(ZERO_RANGE|KEEP_SIZE, %d, %d) of a 5 MiB file the size is %d, want %d", m, r[0], r[1], st.Size, 5*mib)
						}
					}
					f.Close()
					if m != mnt {
						// The native client turns ZERO_RANGE into a plain
						// fallocate and zeroes nothing (a bug of its own,
						// ../shared/reference/gluster-clone.md); only its size
						// is compared.
						continue
					}
					got, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != 5*mib || !bytes.Equal(got[:4*mib], pattern[:4*mib]) || !bytes.Equal(got[4*mib:], make([]byte, mib)) {
						t.Errorf("brickfs: after fzero -k 4m 2m of 5 MiB of 0xab: %d bytes, want 4 MiB of 0xab then 1 MiB of zeros", len(got))
					}
					for _, b := range c.Bricks(t, vol) {
						// The part past EOF is preallocated (KEEP_SIZE).
						if bst := statOf(t, filepath.Join(b.Path, filepath.Base(p))); bst.Size != 5*mib || bst.Blocks*512 < 6*mib {
							t.Errorf("brick %d: size %d, %d bytes allocated; want %d, at least %d", b.Index, bst.Size, bst.Blocks*512, 5*mib, 6*mib)
						}
					}
				}
				// Without KEEP_SIZE a range crossing EOF extends the file.
				for _, m := range []string{mnt, nat} {
					p := filepath.Join(m, "zx-"+filepath.Base(m))
					if err := os.WriteFile(p, pattern[:mib], 0o644); err != nil {
						t.Fatal(err)
					}
					f, err := os.OpenFile(p, os.O_RDWR, 0)
					if err != nil {
						t.Fatal(err)
					}
					if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE, mib/2, mib); err != nil {
						t.Errorf("%s: fallocate(ZERO_RANGE, 512k, 1m): %v", m, err)
					}
					f.Close()
					if st := statOf(t, p); st.Size != 3*mib/2 {
						t.Errorf("%s: after fallocate(ZERO_RANGE, 512k, 1m) of a 1 MiB file the size is %d, want %d", m, st.Size, 3*mib/2)
					}
					if m == mnt {
						got, err := os.ReadFile(p)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got[:mib/2], pattern[:mib/2]) || !bytes.Equal(got[mib/2:], make([]byte, mib)) {
							t.Errorf("brickfs: fzero 512k 1m of 1 MiB of 0xab does not read 512 KiB of 0xab then 1 MiB of zeros")
						}
					}
				}
			})
		})
	}
}
