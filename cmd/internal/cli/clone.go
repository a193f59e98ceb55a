package cli

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop"
)

const cloneUsage = `usage: brickfs clone [--force] [--quiet] SRC DST

Clones the file SRC to DST on the same brickfs mount. Every range of SRC
that holds data goes to the bricks as one copy_file_range: on bricks on XFS
with reflink=1 the clone shares SRC's blocks and takes about a second
whatever its size; other bricks copy in their kernel. Holes stay holes.
DST appears complete or not at all: the data goes to a hidden file
(.brickfs-clone-*) in DST's directory, synced, then given DST's name. On a
distributed volume the hidden file is placed on SRC's replica set, so the
bricks can clone. Clone what nothing writes (shut the VM down first): a
change of SRC's size during the clone is caught, writes within it are not.
A clone killed with SIGKILL leaves its hidden file: remove it.

  --force, -f   replace DST if it exists
  --quiet, -q   no progress and no summary

DST may be a directory: the clone is DST/$(basename SRC).

A GlusterFS 10.3 brick never closes a file it cloned into: each clone keeps
one open fd on each of its bricks (one per block of a sharded file) until
the brick restarts, and the space of a clone deleted before that is freed
only then.`

// cloneAsk is asked of the kernel per copy_file_range call: what the
// mount sends to the bricks at most in one call. Where the kernel copies
// instead (its splice copy does the whole length in one call), progress
// and signals are seen between calls.
const cloneAsk = 64 << 20

// cloneMain runs `brickfs clone`.
func cloneMain(args []string, stdout, stderr io.Writer) int {
	force, quiet := false, false
	var paths []string
	for _, a := range args {
		switch a {
		case "-f", "--force":
			force = true
		case "-q", "--quiet":
			quiet = true
		case "-h", "--help":
			fmt.Fprintln(stdout, cloneUsage)
			return ExitOK
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				fmt.Fprintf(stderr, "brickfs clone: unknown option %q\n%s\n", a, cloneUsage)
				return ExitUsage
			}
			paths = append(paths, a)
		}
	}
	if len(paths) != 2 {
		fmt.Fprintf(stderr, "brickfs clone: need SRC and DST\n%s\n", cloneUsage)
		return ExitUsage
	}
	c := &cloner{src: paths[0], dst: paths[1], force: force, quiet: quiet, stdout: stdout, stderr: stderr}
	if err := c.run(); err != nil {
		fmt.Fprintf(stderr, "brickfs clone: %v\n", err)
		if errors.Is(err, errInterrupted) {
			return 130
		}
		return ExitFail
	}
	return ExitOK
}

var errInterrupted = errors.New("interrupted; the unfinished clone was removed")

type cloner struct {
	src, dst       string
	force, quiet   bool
	stdout, stderr io.Writer

	tmpMu     sync.Mutex
	tmp       string       // the hidden file while it exists; GUARDED_BY(tmpMu)
	committed bool         // the clone is complete and being named DST; GUARDED_BY(tmpMu)
	stop      atomic.Bool  // a signal arrived
	copied    atomic.Int64 // bytes of data copied so far
	started   time.Time
}

func (c *cloner) run() (err error) {
	in, err := os.Open(c.src)
	if err != nil {
		return fmt.Errorf("%v; SRC must be a file you can read", err)
	}
	defer in.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(in.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %v", c.src, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fmt.Errorf("%s is not a regular file; brickfs clone clones files (VM disks, images)", c.src)
	}
	if fi, err := os.Stat(c.dst); err == nil && fi.IsDir() {
		c.dst = filepath.Join(c.dst, filepath.Base(c.src))
	}
	if fi, err := os.Lstat(c.dst); err == nil {
		if ds, ok := fi.Sys().(*syscall.Stat_t); ok && ds.Dev == st.Dev && ds.Ino == st.Ino {
			return fmt.Errorf("%s and %s are the same file", c.src, c.dst)
		}
		if !c.force {
			return fmt.Errorf("%s exists; pass --force to replace it", c.dst)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s exists and is not a regular file; remove it first", c.dst)
		}
	}
	dir := filepath.Dir(c.dst)
	var ds syscall.Stat_t
	if err := syscall.Stat(dir, &ds); err != nil {
		return fmt.Errorf("%s: %v; DST's directory must exist", dir, err)
	}
	if ds.Dev != st.Dev {
		return fmt.Errorf("%s and %s are on different filesystems; a clone needs both on one brickfs mount (cp copies across)", c.src, dir)
	}
	if fstype := fsType(st.Dev); fstype != "fuse.brickfs" && fstype != "fuse.glusterfs" && !c.quiet {
		// (fuse.glusterfs: brickfs as mount -t glusterfs, or the
		// native client, whose copies the kernel makes.)
		fmt.Fprintf(c.stderr, "brickfs clone: note: %s is on %s, not a brickfs mount: the kernel copies the data\n", c.src, orUnknown(fstype))
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		c.stop.Store(true) // seen between calls
		for range sigs {
			// A second signal: a call is stuck (a hung brick); do not
			// wait for it, unless the clone is complete and being
			// given its name.
			c.tmpMu.Lock()
			committed := c.committed
			c.tmpMu.Unlock()
			if committed {
				fmt.Fprintf(c.stderr, "brickfs clone: the clone is complete and being given its name %s; wait\n", c.dst)
				continue
			}
			if c.removeTmp() {
				fmt.Fprintf(c.stderr, "brickfs clone: %v\n", errInterrupted)
			}
			os.Exit(130)
		}
	}()
	defer c.removeTmp() // whatever went wrong, no half clone stays behind

	out, err := c.create(in, dir, st.Mode&0o7777)
	if err != nil {
		return err
	}
	defer out.Close()
	c.started = time.Now()
	done := make(chan struct{})
	if !c.quiet {
		go c.progress(st.Size, done)
	}
	data, err := c.copyData(in, out, st.Size)
	close(done)
	if err != nil {
		return err
	}
	// A size that changed shows a writer (a truncate, an append); writes
	// within the file do not show (each brick keeps its own mtime, and a
	// sharded file's base is not touched by writes to its blocks): clone
	// what nothing writes, as the help says.
	var after unix.Statx_t
	if err := unix.Statx(int(in.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_STATX_FORCE_SYNC, unix.STATX_SIZE, &after); err != nil {
		return fmt.Errorf("stat %s after the clone: %v; the clone was discarded", c.src, err)
	}
	if int64(after.Size) != st.Size {
		return fmt.Errorf("%s changed size during the clone (%d bytes, then %d), so the clone would not be a consistent copy; it was discarded: stop what writes it (shut the VM down) and clone again", c.src, st.Size, after.Size)
	}
	if err := out.Truncate(st.Size); err != nil {
		return fmt.Errorf("set the size of the clone: %v; the clone was discarded", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync the clone: %v; the clone was discarded (is a brick full or down? see the mount's log)", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close the clone: %v; the clone was discarded (see the mount's log)", err)
	}
	c.tmpMu.Lock()
	tmp := c.tmp
	c.committed = tmp != "" && !c.stop.Load()
	c.tmpMu.Unlock()
	if !c.committed {
		return errInterrupted
	}
	uncommit := func() {
		c.tmpMu.Lock()
		c.committed = false // the deferred removeTmp takes it away
		c.tmpMu.Unlock()
	}
	if c.force {
		if err := os.Rename(tmp, c.dst); err != nil {
			uncommit()
			return fmt.Errorf("rename the finished clone to %s: %v; the clone was discarded", c.dst, err)
		}
	} else {
		// link fails if DST appeared meanwhile: nothing is replaced
		// without --force (a rename would).
		if err := os.Link(tmp, c.dst); err != nil {
			uncommit()
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s appeared during the clone; the clone was discarded; pass --force to replace it", c.dst)
			}
			return fmt.Errorf("give the finished clone its name %s: %v; the clone was discarded", c.dst, err)
		}
		if err := os.Remove(tmp); err != nil {
			fmt.Fprintf(c.stderr, "brickfs clone: the clone is %s, but its hidden name %s could not be removed: %v; remove it\n", c.dst, tmp, err)
		}
	}
	c.tmpMu.Lock()
	c.tmp = ""
	c.tmpMu.Unlock()
	if !c.quiet {
		took := time.Since(c.started)
		fmt.Fprintf(c.stdout, "cloned %s to %s: %s (%s of data) in %.2f s\n", c.src, c.dst, human(st.Size), human(data), took.Seconds())
	}
	return nil
}

// create makes the hidden file in dir. On a distributed volume names are
// tried until one lands on SRC's subvolume (the volume answers
// fop.XattrSubvolume): a copy between two subvolumes is the kernel's,
// byte by byte, where one within a subvolume is the bricks' clone. The
// rename to DST then leaves the data there and a link file where DST's
// name hashes, as every rename on a distributed volume does.
func (c *cloner) create(in *os.File, dir string, mode uint32) (*os.File, error) {
	want := subvolumeOf(c.src)
	tries := 1
	if want != "" {
		tries = 32
	}
	var out *os.File
	for i := 0; i < tries; i++ {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		// No dot but the first: a name of the form .NAME.SUFFIX (rsync's
		// temporary files) is placed where NAME hashes, every try alike.
		name := filepath.Join(dir, ".brickfs-clone-"+hex.EncodeToString(rnd[:])+"-"+strings.ReplaceAll(filepath.Base(c.dst), ".", "_"))
		c.tmpMu.Lock() // a second signal meanwhile removes it
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			c.tmp = name
		}
		c.tmpMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("create the clone's hidden file in %s: %v", dir, createHint(err))
		}
		out = f
		if want == "" || subvolumeOf(name) == want {
			break
		}
		if i == tries-1 {
			if !c.quiet {
				fmt.Fprintf(c.stderr, "brickfs clone: note: no name in %s landed on %s's replica set (%s) in %d tries: the data is copied, not cloned\n", dir, c.src, want, tries)
			}
			break
		}
		f.Close()
		c.removeTmp()
	}
	// The mode last: a read-only source gives a read-only clone, which
	// this process could not have opened for writing.
	if err := out.Chmod(os.FileMode(mode & 0o777)); err != nil {
		return nil, fmt.Errorf("set the clone's mode: %v; the clone was discarded", err)
	}
	return out, nil
}

// removeTmp removes the unfinished clone, once, and reports whether it
// is gone; if it cannot remove it, it says where it is.
func (c *cloner) removeTmp() bool {
	c.tmpMu.Lock()
	tmp := c.tmp
	if !c.committed {
		c.tmp = ""
	}
	committed := c.committed
	c.tmpMu.Unlock()
	if tmp == "" || committed {
		return true
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(c.stderr, "brickfs clone: could not remove the unfinished clone %s: %v; remove it by hand\n", tmp, err)
		return false
	}
	return true
}

// createHint says what to do about a failed create.
func createHint(err error) string {
	switch {
	case errors.Is(err, syscall.ENAMETOOLONG):
		return fmt.Sprintf("%v; the clone's hidden name is 28 characters longer than DST's: use a shorter name, then rename", err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Sprintf("%v; the volume is full: free space first", err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Sprintf("%v; DST's directory must be writable", err)
	}
	return err.Error()
}

// subvolumeOf is the distribute subvolume holding path's data, or "".
func subvolumeOf(path string) string {
	buf := make([]byte, 256)
	n, err := unix.Getxattr(path, fop.XattrSubvolume, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(bytes.TrimRight(buf[:n], "\x00"))
}

// smallHole is the largest hole of the source a copy call spans rather
// than going around it: a fragmented image (small writes scattered over a
// sparse file) has a hole between most blocks, and one call per extent
// would be one replicated transaction per 4 KiB. The mount keeps holes
// within a call where the bricks reflink, and goes around them itself
// where they copy.
const smallHole = 1 << 20

// copyData copies the data of in to the same offsets of out, a call of at
// most cloneAsk at a time, going around the holes of smallHole or more
// (SEEK_DATA/SEEK_HOLE), and returns the bytes it asked to copy.
func (c *cloner) copyData(in, out *os.File, size int64) (int64, error) {
	ifd, ofd := int(in.Fd()), int(out.Fd())
	for off := int64(0); off < size; {
		if c.stop.Load() {
			return 0, errInterrupted
		}
		start, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		seeks := err == nil
		if !seeks {
			if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EOPNOTSUPP) {
				return 0, fmt.Errorf("find the data of %s (SEEK_DATA at %d): %v; the clone was discarded", c.src, off, err)
			}
			start = off // no hole detection: all of it is data
		}
		end := min(size, start+cloneAsk)
		if seeks {
			hole, err := unix.Seek(ifd, start, unix.SEEK_HOLE)
			if err != nil {
				return 0, fmt.Errorf("find the data of %s (SEEK_HOLE at %d): %v; the clone was discarded", c.src, start, err)
			}
			if hole < end {
				next, err := unix.Seek(ifd, hole, unix.SEEK_DATA)
				if errors.Is(err, syscall.ENXIO) || err == nil && next-hole >= smallHole {
					end = hole
				}
			}
		}
		for pos := start; pos < end; {
			if c.stop.Load() {
				return 0, errInterrupted
			}
			offIn, offOut := pos, pos
			n, err := unix.CopyFileRange(ifd, &offIn, ofd, &offOut, int(end-pos), 0)
			if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) {
				n, err = c.readWrite(in, out, pos, end-pos)
			}
			if err != nil {
				return 0, fmt.Errorf("copy %s at offset %d: %v; the clone was discarded (is a brick full or down? see the mount's log)", c.src, pos, err)
			}
			if n == 0 {
				return 0, fmt.Errorf("%s ended at %d during the clone (it was %d bytes): it changed; clone it again when nothing writes it", c.src, pos, size)
			}
			pos += int64(n)
			c.copied.Add(int64(n))
		}
		off = end
	}
	return c.copied.Load(), nil
}

// readWrite copies up to n bytes at off through this process, where the
// kernel cannot copy_file_range between the two files.
func (c *cloner) readWrite(in, out *os.File, off, n int64) (int, error) {
	buf := make([]byte, min(n, 1<<20))
	r, err := in.ReadAt(buf, off)
	if r == 0 && err != nil && err != io.EOF {
		return 0, err
	}
	if _, err := out.WriteAt(buf[:r], off); err != nil {
		return 0, err
	}
	return r, nil
}

// progress shows how far a copy got, once it has taken more than a
// second (a reflink clone is done by then): on a terminal one line kept
// up to date, otherwise a line every 5 s.
func (c *cloner) progress(size int64, done <-chan struct{}) {
	tty := isTerminal(c.stderr)
	every := 5 * time.Second
	if tty {
		every = time.Second
	}
	select {
	case <-done:
		return
	case <-time.After(time.Second):
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n := c.copied.Load()
		secs := time.Since(c.started).Seconds()
		line := fmt.Sprintf("brickfs clone: %s of %s copied (up to %d%%), %s/s", human(n), human(size), 100*n/max(size, 1), human(int64(float64(n)/secs)))
		if tty {
			fmt.Fprintf(c.stderr, "\r%s  ", line)
		} else {
			fmt.Fprintln(c.stderr, line)
		}
		select {
		case <-done:
			if tty {
				fmt.Fprintln(c.stderr)
			}
			return
		case <-t.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// fsType is the type of the filesystem mounted as device dev
// (/proc/self/mountinfo), or "".
func fsType(dev uint64) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	want := fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 0:52 / /mnt rw,relatime shared:1 - fuse.brickfs host:/vol rw,...
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != want {
			continue
		}
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) {
				return fields[i+1]
			}
		}
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown filesystem"
	}
	return s
}

// human is n bytes for people: 1.5 GiB.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 4 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[u-1])
}
