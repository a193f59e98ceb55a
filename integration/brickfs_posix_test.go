package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixChildEnv names the posixtest case a re-executed test binary runs
// (see TestBrickfsPosixtestChild); posixDirEnv the directory it runs in.
const (
	posixChildEnv = "BRICKFS_IT_POSIX_CASE"
	posixDirEnv   = "BRICKFS_IT_POSIX_DIR"
)

// posixExcluded are the posixtest cases that brickfs is not asked to pass
// because GlusterFS's own client fails them the same way. TestBrickfsPosixtest
// runs them on both mounts anyway and fails if the native client starts
// passing one that brickfs fails.
var posixExcluded = map[string]string{
	// It opens the file twice in ONE process and expects the second
	// descriptor's F_SETLK to conflict with the first one's lock: OFD
	// semantics, which go-fuse's loopback gets from the OFD locks it takes
	// underneath. A FUSE filesystem sees the lock owner of the process's
	// files_struct, and GlusterFS scopes POSIX locks by (client, lk-owner),
	// so both descriptors are one owner and never conflict, as on a local
	// fs for one process. The native client fails it the same way:
	// "FcntlFlock returned <nil>, expected EAGAIN".
	// (FcntlFlockSetLk, the other lock case, checks with F_OFD_GETLK, which
	// the kernel answers for FUSE from the same owner rules; it passes on
	// both clients.)
	"FcntlFlockLocksFile": "OFD lock semantics expected; GlusterFS scopes POSIX locks by lk-owner (native fails too)",
}

// posixSkipOK are cases that skip themselves on brickfs, with the reason.
// Tmpfile and XAttrLarge skip on both clients: the brick's posix
// translator has no O_TMPFILE, and the backend fs no large xattrs.
// RenameOpenDir skips on brickfs with posixtest's own "known limitation"
// (fstat of an open directory that a rename replaced: ENOENT, the brick
// has dropped its GFID handle). The native client passes it only because
// md-cache still holds the attributes for its 1 s timeout: run by hand with
// a 2 s pause before the fstat, it fails with ESTALE.
var posixSkipOK = map[string]string{
	"Tmpfile":       "no O_TMPFILE in the brick's posix translator (native skips too)",
	"XAttrLarge":    "backend fs has no large xattrs (native skips too)",
	"RenameOpenDir": "fstat of an open, replaced directory: brickfs ENOENT at once; native ESTALE once md-cache (1s) expires",
}

// TestBrickfsPosixtest runs go-fuse's posixtest suite against a brickfs
// mount and, for comparison, against the native client on the same volume,
// each case in a fresh directory. Every case must pass on brickfs except
// those in posixExcluded, which must fail on the native client as well.
func TestBrickfsPosixtest(t *testing.T) {
	c, vol := newVolume(t, "posix")
	runPosixtest(t, c, vol)
}

// runPosixtest runs the posixtest cases on brickfs and the native client
// mounts of vol.
func runPosixtest(t *testing.T, c *Cluster, vol string) {
	bmnt := c.MountBrickfs(t, c.Spec(vol))
	dumpClientLog(t, c, bmnt)
	nmnt := c.MountNative(t, vol)

	var names []string
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)

	// The native client, each case in a child process: a failure there is
	// a fact to report, not a failure of this test.
	native := map[string]posixResult{}
	for _, name := range names {
		native[name] = runPosixChild(t, name, filepath.Join(nmnt, "native-"+name))
	}

	brickfs := map[string]string{}
	for _, name := range names {
		dir := filepath.Join(bmnt, "brickfs-"+name)
		if why, ok := posixExcluded[name]; ok {
			r := runPosixChild(t, name, dir)
			brickfs[name] = r.outcome + " (excluded)"
			switch {
			case r.outcome == "fail" && native[name].outcome != "fail":
				t.Errorf("posixtest %s fails on brickfs but %ss on the native client; it is excluded because %s:\nbrickfs: %s\nnative: %s",
					name, native[name].outcome, why, r.detail, native[name].detail)
			case r.outcome == "fail":
				t.Logf("posixtest %s: excluded (%s); brickfs: %s; native: %s", name, why, r.detail, native[name].detail)
			}
			continue
		}
		skipped := false
		ok := t.Run(name, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
		switch {
		case !ok:
			brickfs[name] = "fail"
		case skipped:
			brickfs[name] = "skip"
			if why, ok := posixSkipOK[name]; ok {
				t.Logf("posixtest %s skips on brickfs: %s", name, why)
			} else {
				t.Errorf("posixtest %s skips on brickfs (native: %s); only %v may", name, native[name].outcome, posixSkipOK)
			}
		default:
			brickfs[name] = "pass"
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-28s %-16s %s\n", "case", "brickfs", "native")
	for _, name := range names {
		fmt.Fprintf(&sb, "%-28s %-16s %s\n", name, brickfs[name], native[name].outcome)
	}
	t.Logf("posixtest results:\n%s", sb.String())
	for _, name := range names {
		if r := native[name]; r.outcome != "pass" {
			t.Logf("native %s %s: %s", name, r.outcome, r.detail)
		}
	}
}

type posixResult struct {
	outcome string // pass, fail, skip
	detail  string // the case's messages
}

// runPosixChild runs one posixtest case in dir in a child process (the test
// binary re-executed, see TestMain) and reports its outcome.
func runPosixChild(t *testing.T, name, dir string) posixResult {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return posixResult{"fail", fmt.Sprintf("mkdir %s: %v", dir, err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.v", "-test.count=1", "-test.timeout=110s")
	cmd.Env = append(os.Environ(), posixChildEnv+"="+name, posixDirEnv+"="+dir)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	detail := posixDetail(string(out))
	switch {
	case err == nil && strings.Contains(string(out), "--- SKIP: TestBrickfsPosixtestChild"):
		return posixResult{"skip", detail}
	case err == nil && strings.Contains(string(out), "--- PASS: TestBrickfsPosixtestChild"):
		return posixResult{"pass", detail}
	case err == nil:
		return posixResult{"fail", "child ran no test: " + string(out)}
	}
	return posixResult{"fail", detail}
}

// posixDetail keeps the case's own message lines of a child's output.
func posixDetail(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "=== RUN") || strings.HasPrefix(l, "--- ") ||
			l == "PASS" || l == "FAIL" || strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "exit status") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " | ")
}

// TestBrickfsPosixtestChild is one posixtest case run by
// TestBrickfsPosixtest in a child process (the test binary re-executed with
// posixChildEnv and posixDirEnv set). In a normal run it has nothing to do
// and passes.
func TestBrickfsPosixtestChild(t *testing.T) {
	name, dir := os.Getenv(posixChildEnv), os.Getenv(posixDirEnv)
	if name == "" {
		t.Log("runs only when TestBrickfsPosixtest re-executes the test binary")
		return
	}
	f, ok := posixtest.All[name]
	if !ok {
		t.Fatalf("no posixtest case %q", name)
	}
	f(t, dir)
}
