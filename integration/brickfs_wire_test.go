package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// decoderPath finds ../shared/tools/gluster-wire-decode/decode.py beside the
// repository, where the project keeps its reference tools.
func decoderPath() string {
	for _, up := range []string{"../..", "../../.."} {
		p, _ := filepath.Abs(filepath.Join(up, "shared", "tools", "gluster-wire-decode", "decode.py"))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// TestBrickfsWireDecode captures brickfs's traffic with one brick while it
// mounts, runs every fop and unmounts, and checks that the reference
// decoder decodes every record with nothing left over but the raw data of
// READ replies and WRITE calls.
func TestBrickfsWireDecode(t *testing.T) {
	dec := decoderPath()
	if dec == "" {
		need(t, false, bothEnvs, "the reference decoder ../shared/tools/gluster-wire-decode/decode.py is not beside the repository; put the project's shared/ directory next to it")
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		need(t, false, []string{"REQUIRE_GLUSTER"}, "tshark is not installed (scripts/deps.sh installs it)")
	}
	c, vol := newVolume(t, "wire")
	b := c.Brick(t, vol, 0)
	pcap := filepath.Join(t.TempDir(), vol+".pcap")
	capture := exec.Command("tshark", "-i", "lo", "-f", fmt.Sprintf("tcp and host %s and port %d", b.Host, b.Port), "-w", pcap, "-a", "duration:180")
	capErr := &lockedBuffer{}
	capture.Stderr = capErr
	if err := capture.Start(); err != nil {
		t.Fatalf("tshark: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = capture.Process.Signal(syscall.SIGINT)
			_ = capture.Wait()
		}
	}
	t.Cleanup(stop)
	waitFor(t, 20*time.Second, "tshark to start capturing", func() (bool, string) {
		return strings.Contains(capErr.String(), "Capturing on"), capErr.String()
	})
	// dumpcap reports before its capture is live; give it a moment, or the
	// first records (the handshake) are missed.
	time.Sleep(2 * time.Second)

	// No attribute cache, so stat and fstat reach the brick.
	mnt := c.MountBrickfs(t, c.Spec(vol), "attribute-timeout=0", "entry-timeout=0")
	runAllFops(t, mnt)
	c.Unmount(t, mnt)
	time.Sleep(time.Second)
	stop()

	out, err := exec.Command("python3", dec, pcap).CombinedOutput()
	if err != nil {
		t.Fatalf("decode.py: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`^\('([^']+)', '(call|reply)', (True|False)\) (\d+)$`)
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		m := row.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		seen[m[1]] = true
		if m[3] == "False" && !(m[1] == "WRITE" && m[2] == "call") && !(m[1] == "READ" && m[2] == "reply") {
			t.Errorf("%s %s: %s record(s) left bytes over", m[1], m[2], m[4])
		}
	}
	for _, fop := range []string{"LOOKUP", "STAT", "SETATTR", "CREATE", "OPEN", "WRITE", "READ", "FLUSH", "FSYNC",
		"RELEASE", "OPENDIR", "READDIRP", "RELEASEDIR", "MKDIR", "MKNOD", "SYMLINK", "READLINK", "LINK", "RENAME",
		"UNLINK", "RMDIR", "STATFS", "SETXATTR", "GETXATTR", "REMOVEXATTR", "FALLOCATE", "DISCARD", "ZEROFILL",
		"SEEK", "LK", "FSTAT", "14398633/2/1"} {
		if !seen[fop] {
			t.Errorf("no %s in the capture", fop)
		}
	}
	if t.Failed() {
		size := int64(-1)
		if fi, err := os.Stat(pcap); err == nil {
			size = fi.Size()
		}
		t.Logf("capture %s (%d bytes); tshark said:\n%s\ndecode.py output:\n%s", pcap, size, capErr.String(), out)
	}
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runAllFops drives every fop brickfs sends through the mount at mnt.
func runAllFops(t *testing.T, mnt string) {
	t.Helper()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	d := filepath.Join(mnt, "w")
	must("mkdir", os.Mkdir(d, 0o755))
	f := filepath.Join(d, "f")
	must("write", os.WriteFile(f, []byte("hello wire\n"), 0o644))
	_, err := os.ReadFile(f)
	must("read", err)
	must("chmod", os.Chmod(f, 0o600))
	must("chown", os.Chown(f, 1, 1))
	must("utimes", os.Chtimes(f, time.Unix(1600000000, 0), time.Unix(1600000000, 0)))
	must("truncate", os.Truncate(f, 100))
	must("access", syscall.Access(f, 4))
	must("setxattr", syscall.Setxattr(f, "user.k", []byte("v"), 0))
	buf := make([]byte, 64)
	_, err = syscall.Getxattr(f, "user.k", buf)
	must("getxattr", err)
	_, err = syscall.Listxattr(f, buf)
	must("listxattr", err)
	must("removexattr", syscall.Removexattr(f, "user.k"))
	must("symlink", os.Symlink("f", filepath.Join(d, "s")))
	_, err = os.Readlink(filepath.Join(d, "s"))
	must("readlink", err)
	must("link", os.Link(f, filepath.Join(d, "h")))
	must("rename", os.Rename(filepath.Join(d, "h"), filepath.Join(d, "h2")))
	must("mkfifo", syscall.Mkfifo(filepath.Join(d, "p"), 0o644))
	var st syscall.Statfs_t
	must("statfs", syscall.Statfs(mnt, &st))
	_, err = os.ReadDir(d)
	must("readdir", err)

	fd, err := syscall.Open(filepath.Join(d, "fa"), syscall.O_RDWR|syscall.O_CREAT, 0o644)
	must("open", err)
	must("fallocate", syscall.Fallocate(fd, 0, 0, 1<<20))
	_, err = syscall.Pwrite(fd, bytes.Repeat([]byte("x"), 8192), 65536)
	must("pwrite", err)
	must("punch", syscall.Fallocate(fd, 0x3, 0, 4096))    // PUNCH_HOLE|KEEP_SIZE: DISCARD
	must("zero", syscall.Fallocate(fd, 0x10, 8192, 4096)) // ZERO_RANGE: ZEROFILL
	_, err = syscall.Seek(fd, 0, 3)                       // SEEK_DATA
	must("seek", err)
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	must("lock", syscall.FcntlFlock(uintptr(fd), syscall.F_SETLK, &lk))
	lk.Type = syscall.F_UNLCK
	must("unlock", syscall.FcntlFlock(uintptr(fd), syscall.F_SETLK, &lk))
	must("fsync", syscall.Fsync(fd))
	var fst syscall.Stat_t
	must("fstat", syscall.Fstat(fd, &fst))
	must("close", syscall.Close(fd))

	for _, n := range []string{"f", "s", "h2", "p", "fa"} {
		must("unlink "+n, os.Remove(filepath.Join(d, n)))
	}
	must("rmdir", os.Remove(d))
}
