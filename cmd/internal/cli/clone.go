package cli

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
DST appears complete or not at all: the data goes to a hidden file in
DST's directory, synced, then renamed to DST. On a distributed volume the
hidden file is placed on SRC's replica set, so the bricks can clone.

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

var errInterrupted = errors.New("interrupted; nothing was left behind")

type cloner struct {
	src, dst       string
	force, quiet   bool
	stdout, stderr io.Writer

	tmp     string       // the hidden file while it exists
	stop    atomic.Bool  // a signal arrived
	copied  atomic.Int64 // bytes of data copied so far
	started time.Time
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
	if fstype := fsType(st.Dev); fstype != "fuse.brickfs" && !c.quiet {
		fmt.Fprintf(c.stderr, "brickfs clone: note: %s is on %s, not a brickfs mount: the kernel copies the data\n", c.src, orUnknown(fstype))
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			c.stop.Store(true)
		}
	}()
	defer func() {
		if c.tmp != "" {
			// Whatever went wrong, no half clone stays behind.
			os.Remove(c.tmp)
		}
	}()

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
	if err := out.Truncate(st.Size); err != nil {
		return fmt.Errorf("set the size of %s: %v", c.tmp, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync %s: %v; the clone was not kept", c.tmp, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %v; the clone was not kept", c.tmp, err)
	}
	if c.stop.Load() {
		return errInterrupted
	}
	if !c.force {
		if _, err := os.Lstat(c.dst); err == nil {
			return fmt.Errorf("%s appeared during the clone; pass --force to replace it", c.dst)
		}
	}
	if err := os.Rename(c.tmp, c.dst); err != nil {
		return fmt.Errorf("rename the finished clone to %s: %v", c.dst, err)
	}
	c.tmp = ""
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
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create a file in %s: %v; DST's directory must be writable", dir, err)
		}
		c.tmp, out = name, f
		if want == "" || subvolumeOf(name) == want || i == tries-1 {
			break
		}
		f.Close()
		os.Remove(name)
		c.tmp = ""
	}
	// The mode last: a read-only source gives a read-only clone, which
	// this process could not have opened for writing.
	if err := out.Chmod(os.FileMode(mode & 0o777)); err != nil {
		return nil, fmt.Errorf("chmod %s: %v", c.tmp, err)
	}
	return out, nil
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

// copyData copies every data range of in (SEEK_DATA/SEEK_HOLE) to the
// same offsets of out and returns the bytes copied.
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
		end := size
		if err == nil {
			if end, err = unix.Seek(ifd, start, unix.SEEK_HOLE); err != nil {
				return 0, fmt.Errorf("SEEK_HOLE on %s at %d: %v", c.src, start, err)
			}
		} else if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
			start = off // no hole detection: all of it is data
		} else {
			return 0, fmt.Errorf("SEEK_DATA on %s at %d: %v", c.src, off, err)
		}
		end = min(end, size)
		for pos := start; pos < end; {
			if c.stop.Load() {
				return 0, errInterrupted
			}
			offIn, offOut := pos, pos
			n, err := unix.CopyFileRange(ifd, &offIn, ofd, &offOut, int(min(end-pos, cloneAsk)), 0)
			if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) {
				n, err = c.readWrite(in, out, pos, min(end-pos, cloneAsk))
			}
			if err != nil {
				return 0, fmt.Errorf("copy %s at %d to %s: %v", c.src, pos, c.tmp, err)
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
