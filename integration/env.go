package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// T is the part of testing.TB the harness uses. *testing.T and *testing.B
// satisfy it; integration/cmd/democluster has its own.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	Cleanup(func())
}

// Environment variables that turn a skip into a failure.
const (
	RequireFuse    = "REQUIRE_FUSE"
	RequireGluster = "REQUIRE_GLUSTER"
)

// need skips the test with the reason unless ok; if any of envs is set to 1
// the test fails instead, so that CI never hides a regression behind a skip.
func need(t T, ok bool, envs []string, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	for _, e := range envs {
		if os.Getenv(e) == "1" {
			t.Fatalf("%s (fatal because %s=1)", msg, e)
		}
	}
	t.Skipf("%s (set %s=1 to make this fatal)", msg, strings.Join(envs, "=1 or "))
}

var (
	glusterEnvs = []string{RequireGluster}
	fuseEnvs    = []string{RequireFuse}
	bothEnvs    = []string{RequireGluster, RequireFuse}
)

// needTool fails (or skips, see [RequireFuse]) unless tool is on the PATH;
// pkg is the Debian package that has it.
func needTool(t T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		need(t, false, bothEnvs, "%s not found; install %s (bash scripts/deps.sh)", tool, pkg)
	}
	return p
}

// RequireRoot skips (or fails, see [RequireFuse], [RequireGluster]) unless
// the test runs as root.
func RequireRoot(t T) {
	t.Helper()
	need(t, os.Geteuid() == 0, bothEnvs, "integration tests need root (uid is %d); run them with sudo or make integration as root", os.Geteuid())
}

// RequireGlusterFS skips (or fails) unless the GlusterFS server programs are
// installed and no glusterd already holds *:24007.
func RequireGlusterFS(t T) {
	t.Helper()
	RequireRoot(t)
	for _, prog := range []string{"glusterd", "gluster", "glusterfsd"} {
		_, err := exec.LookPath(prog)
		need(t, err == nil, glusterEnvs, "%s not found in PATH; install glusterfs-server (bash scripts/deps.sh)", prog)
	}
	_, herr := glfsheal()
	need(t, herr == nil, glusterEnvs, "%v", herr)
	held, err := wildcardListener(24007)
	if err != nil {
		t.Fatalf("read /proc/net/tcp: %v", err)
	}
	need(t, !held, glusterEnvs, "a process already listens on *:24007 (the system glusterd?), so no glusterd can bind 127.a.b.N:24007; stop it (systemctl stop glusterd)")
}

// RequireFUSE skips (or fails) unless /dev/fuse can be opened.
func RequireFUSE(t T) {
	t.Helper()
	RequireRoot(t)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	need(t, err == nil, fuseEnvs, "cannot open /dev/fuse (%v); modprobe fuse, or run with --device /dev/fuse", err)
}

// run runs a command with a timeout and returns its combined output; the
// error names the command and carries the output.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// waitFor polls cond every 100ms until it reports true or timeout passes, then
// fails the test with the last detail cond gave.
func waitFor(t T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procCmdline is the command line of pid with NULs as spaces, "" if gone.
func procCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// procState is the state letter of pid from /proc/PID/stat (R, S, T, Z...),
// 0 if the process does not exist.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool {
	s := procState(pid)
	return s != 0 && s != 'Z' && s != 'X'
}

// procDead reports whether every thread of pid has exited (the process is
// gone or a zombie whose threads are all gone, so its sockets are closed).
// A zombie group leader alone is not enough: its other threads may still
// hold the files open.
func procDead(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X' {
			return false
		}
	}
	return true
}

// waitGone waits until pid is dead (see procDead) and, if reaped is true,
// also reaped: /proc/PID must vanish, since GlusterFS takes a process whose
// /proc/PID/cmdline can be opened for a running one (gf_is_pid_running,
// libglusterfs/src/common-utils.c), zombies included. Orphaned daemons are
// reaped by init, normally within a second.
func waitGone(pid int, timeout time.Duration, reaped bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if reaped && procState(pid) == 0 || !reaped && procDead(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pidsMatching lists live processes (not this one) whose command line
// contains s.
func pidsMatching(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(procCmdline(pid), s) && procAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// clientPids lists the FUSE daemons serving mnt (brickfs, or glusterfs
// for a native mount): processes with mnt in their command line that run
// one of those programs, not a program working in mnt (fio).
func clientPids(mnt string) []int {
	var out []int
	for _, pid := range pidsMatching(mnt) {
		f := strings.Fields(procCmdline(pid))
		if len(f) == 0 {
			continue
		}
		switch filepath.Base(f[0]) {
		case "brickfs", "mount.brickfs", "glusterfs":
			out = append(out, pid)
		}
	}
	return out
}

// signalIfOurs sends sig to pid only if its command line still contains
// mark (the run directory), so that a reused pid is never signalled.
func signalIfOurs(pid int, mark string, sig syscall.Signal) error {
	if pid <= 0 {
		return fmt.Errorf("no pid")
	}
	if !strings.Contains(procCmdline(pid), mark) {
		return fmt.Errorf("pid %d is not ours any more (command line %q)", pid, procCmdline(pid))
	}
	return syscall.Kill(pid, sig)
}

// wildcardListener reports whether some socket listens on 0.0.0.0:port or
// [::]:port.
func wildcardListener(port int) (bool, error) {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		socks, err := readProcNet(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, s := range socks {
			if s.state == "0A" && strings.HasSuffix(s.local, want) && strings.Trim(strings.Split(s.local, ":")[0], "0") == "" {
				return true, nil
			}
		}
	}
	return false, nil
}

type procSock struct{ local, remote, state string }

func readProcNet(path string) ([]procSock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var socks []procSock
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		socks = append(socks, procSock{local: fs[1], remote: fs[2], state: fs[3]})
	}
	return socks, sc.Err()
}

// prefixInUse reports whether any IPv4 TCP or UDP socket uses an address
// 127.a.b.x, as local or remote end.
func prefixInUse(a, b int) (bool, error) {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/udp"} {
		socks, err := readProcNet(f)
		if err != nil {
			return false, err
		}
		for _, s := range socks {
			for _, addr := range []string{s.local, s.remote} {
				// Little-endian hex: 127.a.b.c is "cc bb aa 7F".
				h := strings.Split(addr, ":")[0]
				if len(h) != 8 {
					continue
				}
				v, err := strconv.ParseUint(h, 16, 32)
				if err != nil {
					continue
				}
				if v&0xff == 127 && int(v>>8&0xff) == a && int(v>>16&0xff) == b {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// mounted reports whether mnt is a mount point in /proc/mounts.
func mounted(mnt string) bool {
	for _, m := range mountsUnder(mnt) {
		if m == mnt {
			return true
		}
	}
	return false
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		mp := unescapeMount(fs[1])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append([]string{mp}, out...)
		}
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for space) of /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
