package integration

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The TestBrickfs* tests share one 3-node cluster per `go test` process
// (bringing one up costs seconds); each test group makes its own volume on
// it. The cluster is started by the first test that asks for it and torn
// down by TestMain after every test has run, also after failures.
//
// Requirements (root, FUSE, GlusterFS, built binaries) are checked with each
// test's own *testing.T before the shared cluster is used, so a missing one
// skips that test, or fails it under REQUIRE_FUSE=1 / REQUIRE_GLUSTER=1;
// TestMain only passes m.Run's exit code on, never turning it into 0.

// TestMain runs the tests, then tears down the shared cluster. Re-executed
// with lockHelperEnv set, the test binary is the lock-holding second process
// of the POSIX lock tests instead (see lockHelperMain); with fopHelperEnv
// set, it runs fops as another user (see fopHelperMain).
func TestMain(m *testing.M) {
	if os.Getenv(lockHelperEnv) != "" {
		os.Exit(lockHelperMain())
	}
	if os.Getenv(fopHelperEnv) != "" {
		os.Exit(fopHelperMain())
	}
	flag.Parse()
	if os.Getenv(posixChildEnv) != "" {
		// Re-executed by TestBrickfsPosixtest to run one posixtest case.
		flag.Set("test.run", "^TestBrickfsPosixtestChild$")
	}
	// ^C or a kill during the run still tears the shared cluster down.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "got %v; tearing down the shared cluster\n", s)
		if st := sharedState(); st != nil {
			st.runCleanups()
		}
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(sigs)
	if st := sharedState(); st != nil {
		st.runCleanups()
		if st.Failed() {
			fmt.Fprintf(os.Stderr, "shared cluster failed:\n%s", st.logs())
			if code == 0 {
				code = 1
			}
		} else if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "%s", st.logs())
		}
	}
	os.Exit(code)
}

var shared struct {
	once sync.Once
	t    *sharedT // set under mu
	c    *Cluster

	mu  sync.Mutex
	seq int // GUARDED_BY(mu): volume name counter
}

func sharedState() *sharedT {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.t
}

// sharedCluster returns the cluster shared by the TestBrickfs* tests,
// bringing it up on first use. It checks the requirements with t first.
func sharedCluster(t *testing.T) *Cluster {
	t.Helper()
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	MountBrickfsBin(t)
	shared.once.Do(func() {
		st := &sharedT{}
		shared.mu.Lock()
		shared.t = st
		shared.mu.Unlock()
		st.do(func() { shared.c = NewCluster(st, 3) })
	})
	if shared.c == nil || shared.t.Failed() {
		t.Fatalf("the shared cluster is not usable:\n%s", shared.t.logs())
	}
	return shared.c
}

// newVolume creates and starts a fresh single-brick volume on node 1 of the
// shared cluster, named after prefix, with the options sets gives (key,
// value) set before it starts, and returns the cluster and the name.
// If t fails, the tails of the volume's brick logs are printed.
func newVolume(t *testing.T, prefix string, sets ...[2]string) (*Cluster, string) {
	t.Helper()
	c := sharedCluster(t)
	shared.mu.Lock()
	shared.seq++
	name := fmt.Sprintf("%s%d", prefix, shared.seq)
	shared.mu.Unlock()
	c.CreateVolume(t, name, Single, 1)
	for _, kv := range sets {
		c.Set(t, name, kv[0], kv[1])
	}
	c.Start(t, name)
	b := c.Brick(t, name, 0)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(c.Dir, "n*", "logs", "bricks", "*"+name+"-b*.log"))
		for _, l := range logs {
			t.Logf("==== brick log %s ====\n%s", l, tail(l, 60))
		}
	})
	t.Logf("volume %s: brick %s", name, b)
	return c, name
}

// dumpClientLog prints the tail of the client log of mnt if t fails.
func dumpClientLog(t *testing.T, c *Cluster, mnt string) {
	t.Helper()
	c.mu.Lock()
	m := c.mounts[mnt]
	c.mu.Unlock()
	if m.log == "" {
		return
	}
	t.Cleanup(func() {
		if t.Failed() {
			lines := 80
			if v, err := strconv.Atoi(os.Getenv("BRICKFS_LOG_LINES")); err == nil && v > 0 {
				lines = v
			}
			t.Logf("==== client log %s ====\n%s", m.log, tail(m.log, lines))
		}
	})
}

// sharedT implements T for the shared cluster: Fatalf stops the function
// run by do, logs are kept, cleanups run when TestMain calls runCleanups.
type sharedT struct {
	teardown sync.Mutex // held while cleanups run
	mu       sync.Mutex
	failed   bool
	buf      bytes.Buffer
	cleanups []func()
}

type sharedStop struct{}

func (s *sharedT) do(f func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(sharedStop); !ok {
				s.Errorf("panic: %v", r)
			}
		}
	}()
	f()
}

// runCleanups runs the cleanups once, last registered first; a second
// caller (a signal during teardown) waits for the first.
func (s *sharedT) runCleanups() {
	s.teardown.Lock()
	defer s.teardown.Unlock()
	s.mu.Lock()
	cs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		s.do(cs[i])
	}
}

func (s *sharedT) Helper()          {}
func (s *sharedT) Name() string     { return "shared-cluster" }
func (s *sharedT) Cleanup(f func()) { s.mu.Lock(); s.cleanups = append(s.cleanups, f); s.mu.Unlock() }
func (s *sharedT) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.buf, "%s shared cluster: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
func (s *sharedT) Errorf(format string, args ...any) {
	s.Logf(format, args...)
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
}
func (s *sharedT) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	panic(sharedStop{})
}
func (s *sharedT) Skipf(format string, args ...any) {
	// Requirements are checked on the real test first; a skip here is
	// unexpected, so it counts as a failure.
	s.Fatalf("skipped: "+format, args...)
}
func (s *sharedT) Failed() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.failed }
func (s *sharedT) logs() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// statOf is syscall.Lstat that fails the test on error.
func statOf(t *testing.T, path string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return st
}

// oneLine checks that a failed command printed exactly one line to stderr
// and that it matches every pattern (case-insensitive regexps).
func oneLine(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	msg := strings.TrimRight(out, "\n")
	if msg == "" {
		t.Errorf("%s: no message", what)
		return
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: message has %d lines, want one:\n%s", what, strings.Count(msg, "\n")+1, msg)
	}
	for _, p := range patterns {
		if !regexp.MustCompile("(?i)" + p).MatchString(msg) {
			t.Errorf("%s: message %q does not match %q", what, msg, p)
		}
	}
}
