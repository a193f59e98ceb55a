package integration

import (
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/brick/tlsconf"
)

// Timeouts for GlusterFS operations; generous because CI machines are slow.
const (
	cliTimeout   = 2 * time.Minute
	readyTimeout = 60 * time.Second
)

// Cluster is a set of glusterd "nodes" on 127.a.b.1..N of this machine, with
// the volumes created on them. Create it with [NewCluster]; it tears itself
// down in t.Cleanup.
type Cluster struct {
	// Prefix is "127.a.b"; node N listens on Prefix+".N".
	Prefix string
	// Dir is the run directory holding all state, logs and mount points.
	Dir string

	t     T
	nodes []*node // index 0 is node 1
	claim string  // lock directory reserving Prefix
	opts  ClusterOptions
	gdLib string // with ManagementTLS: the copy of /var/lib/glusterd mounted over it

	mu      sync.Mutex
	atStart map[string][][2]string // GUARDED_BY(mu); options Start sets first (SetAtStart)
	pids    map[int]string         // GUARDED_BY(mu): recorded pid -> what it is
	sockets map[string]bool        // GUARDED_BY(mu): brick/shd unix sockets to remove
	vols    map[string]*vol        // GUARDED_BY(mu)
	dropped map[int]bool           // GUARDED_BY(mu): nodes behind DropHost
	stopped map[int]bool           // GUARDED_BY(mu): pids sent SIGSTOP
	chain   string                 // GUARDED_BY(mu): iptables chain, "" until first DropHost
	seq     int                    // GUARDED_BY(mu): counter for mount and log names
	mounts  map[string]mount       // GUARDED_BY(mu): live mounts by mount point
	fss     []*BackingFS           // GUARDED_BY(mu): filesystems MakeFS made, in order
}

type node struct {
	n    int    // 1-based
	host string // 127.a.b.n
	dir  string // DIR/nn
	sock string // DIR/nn/gd.sock
	args []string

	// GUARDED_BY(Cluster.mu)
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// NewCluster starts n glusterds on a fresh 127.a.b.0/24 prefix and a fresh
// run directory, and joins them into one trusted pool with peer probe.
// Everything is torn down in t.Cleanup.
func NewCluster(t T, n int) *Cluster {
	t.Helper()
	return NewClusterWith(t, n, ClusterOptions{})
}

// ClusterOptions change how NewClusterWith starts the glusterds.
type ClusterOptions struct {
	// ManagementTLS, when set, is a directory holding glusterfs.pem,
	// glusterfs.key and glusterfs.ca: every glusterd runs with
	// management TLS on and these files, as on a server with
	// /var/lib/glusterd/secure-access, without touching the host's
	// files. GlusterFS reads that path and OpenSSL's directory
	// (/usr/lib/ssl for Debian's build), both fixed at build time, so
	// each glusterd runs in a mount namespace of its own (the bricks and
	// daemons it starts inherit it) where a copy of /var/lib/glusterd
	// with a secure-access file, and this directory over each of
	// tlsconf.OpenSSLDirs that exists, are bind-mounted. The namespace
	// copies the host's mounts when glusterd starts (other runs' are
	// unmounted in it); where / is not a shared mount, as here, mounts
	// made on the host later (MakeFS filesystems) do not appear in it,
	// so such a cluster's bricks are plain directories.
	// Clients on the host (brickfs with BRICKFS_SECURE_ACCESS and
	// BRICKFS_SSL_DIR) then need management TLS to reach glusterd;
	// the native client cannot.
	ManagementTLS string
}

// NewClusterWith is NewCluster with options.
func NewClusterWith(t T, n int, opts ClusterOptions) *Cluster {
	t.Helper()
	RequireGlusterFS(t)
	if n < 1 || n > 9 {
		t.Fatalf("NewCluster: %d nodes; want 1..9", n)
	}
	start := time.Now()
	c := &Cluster{
		t:       t,
		pids:    map[int]string{},
		sockets: map[string]bool{},
		vols:    map[string]*vol{},
		dropped: map[int]bool{},
		stopped: map[int]bool{},
		mounts:  map[string]mount{},
		opts:    opts,
	}
	c.pickPrefix(t)
	dir, err := os.MkdirTemp("", "brickfs-it-")
	if err != nil {
		c.releasePrefix()
		t.Fatalf("run directory: %v", err)
	}
	c.Dir = dir
	// Brick sockets go to /var/run/gluster whatever the run directory.
	if err := os.MkdirAll("/var/run/gluster", 0o755); err != nil {
		t.Fatalf("create /var/run/gluster: %v", err)
	}
	t.Cleanup(c.teardown)
	if opts.ManagementTLS != "" {
		c.prepareManagementTLS(t)
	}

	for i := 1; i <= n; i++ {
		nd := &node{n: i, host: fmt.Sprintf("%s.%d", c.Prefix, i), dir: filepath.Join(dir, fmt.Sprintf("n%d", i))}
		nd.sock = filepath.Join(nd.dir, "gd.sock")
		for _, d := range []string{"wd", "run", "logs", "bricks"} {
			if err := os.MkdirAll(filepath.Join(nd.dir, d), 0o755); err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
		base := 49152 + 1000*(i-1)
		nd.args = []string{"-N",
			"--xlator-option", "management.working-directory=" + filepath.Join(nd.dir, "wd"),
			"--xlator-option", "management.transport.socket.bind-address=" + nd.host,
			"--xlator-option", "management.run-directory=" + filepath.Join(nd.dir, "run"),
			"--xlator-option", "management.glusterd-sockfile=" + nd.sock,
			"--xlator-option", "management.logging-directory=" + filepath.Join(nd.dir, "logs"),
			"--xlator-option", fmt.Sprintf("management.base-port=%d", base),
			"--xlator-option", fmt.Sprintf("management.max-port=%d", base+999),
			"--log-file=" + filepath.Join(nd.dir, "logs", "glusterd.log"),
			"--pid-file=" + filepath.Join(nd.dir, "glusterd.pid"),
		}
		c.nodes = append(c.nodes, nd)
	}
	// Launch all, then wait: a glusterd needs about 2s before it answers.
	for i := 1; i <= n; i++ {
		c.launchGlusterd(t, i)
	}
	for i := 1; i <= n; i++ {
		c.waitGlusterd(t, i)
	}
	answered := time.Since(start)
	for i := 2; i <= n; i++ {
		c.MustGluster(t, 1, "peer", "probe", c.Host(i))
	}
	for i := 1; i <= n; i++ {
		c.waitPeers(t, i)
	}
	t.Logf("cluster %s.1-%d up in %v (glusterds answered after %v), run dir %s", c.Prefix, n,
		time.Since(start).Round(time.Millisecond), answered.Round(time.Millisecond), c.Dir)
	return c
}

// pickPrefix chooses a random 127.a.b that no socket uses and that no other
// run has claimed (a lock directory under the temp dir).
func (c *Cluster) pickPrefix(t T) {
	t.Helper()
	claims := filepath.Join(os.TempDir(), "brickfs-it-prefixes")
	if err := os.MkdirAll(claims, 0o755); err != nil {
		t.Fatalf("prefix claims: %v", err)
	}
	for try := 0; try < 100; try++ {
		a, b := 16+rand.IntN(224), 1+rand.IntN(254) // 127.16.1 .. 127.239.254
		busy, err := prefixInUse(a, b)
		if err != nil {
			t.Fatalf("read /proc/net: %v", err)
		}
		if busy {
			continue
		}
		prefix := fmt.Sprintf("127.%d.%d", a, b)
		claim := filepath.Join(claims, prefix)
		if err := os.Mkdir(claim, 0o755); err != nil {
			// Held by another run, or left by one that was killed: a
			// claim whose owner pid is gone is taken over.
			raw, _ := os.ReadFile(filepath.Join(claim, "pid"))
			owner, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			if owner <= 0 || procAlive(owner) {
				continue
			}
			os.RemoveAll(claim)
			if os.Mkdir(claim, 0o755) != nil {
				continue
			}
		}
		if err := os.WriteFile(filepath.Join(claim, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			t.Fatalf("prefix claim: %v", err)
		}
		c.Prefix, c.claim = prefix, claim
		return
	}
	t.Fatalf("no free 127.a.b prefix found in 100 tries")
}

func (c *Cluster) releasePrefix() {
	if c.claim != "" {
		os.RemoveAll(c.claim)
	}
}

// Nodes is the number of nodes.
func (c *Cluster) Nodes() int { return len(c.nodes) }

// Host is the address of node n (1-based): "127.a.b.n".
func (c *Cluster) Host(n int) string { return c.node(n).host }

// Spec is the volfile-server spec of vol on node 1: "127.a.b.1:/vol".
func (c *Cluster) Spec(vol string) string { return c.Host(1) + ":/" + vol }

// BackupVolfileServers is "127.a.b.2:127.a.b.3:...": every node but node 1,
// the value of the backup-volfile-servers mount option.
func (c *Cluster) BackupVolfileServers() string {
	var hs []string
	for i := 2; i <= len(c.nodes); i++ {
		hs = append(hs, c.Host(i))
	}
	return strings.Join(hs, ":")
}

// GlusterdSock is the CLI socket of node n, for gluster --glusterd-sock.
func (c *Cluster) GlusterdSock(n int) string { return c.node(n).sock }

// LogDir is where client logs go (DIR/logs).
func (c *Cluster) LogDir() string { return filepath.Join(c.Dir, "logs") }

func (c *Cluster) node(n int) *node {
	if n < 1 || n > len(c.nodes) {
		panic(fmt.Sprintf("integration: node %d of a %d-node cluster", n, len(c.nodes)))
	}
	return c.nodes[n-1]
}

// record remembers a pid the harness started or found, so that teardown
// stops it, and the unix socket (-S) of a GlusterFS daemon so that teardown
// removes it.
func (c *Cluster) record(pid int, what string) {
	if pid <= 0 {
		return
	}
	cmdline := procCmdline(pid)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pids[pid]; !ok {
		c.pids[pid] = what
	}
	fs := strings.Fields(cmdline)
	for i, f := range fs {
		if f == "-S" && i+1 < len(fs) && strings.HasPrefix(fs[i+1], "/var/run/gluster/") {
			c.sockets[fs[i+1]] = true
		}
	}
}

// Gluster runs the gluster CLI against node n's glusterd in script mode and
// returns its output.
func (c *Cluster) Gluster(n int, args ...string) (string, error) {
	nd := c.node(n)
	full := append([]string{"--mode=script", "--glusterd-sock=" + nd.sock,
		"--log-file=" + filepath.Join(nd.dir, "logs", "cli.log")}, args...)
	return run(cliTimeout, "gluster", full...)
}

// MustGluster is Gluster that fails the test on error.
func (c *Cluster) MustGluster(t T, n int, args ...string) string {
	t.Helper()
	out, err := c.Gluster(n, args...)
	if err != nil {
		t.Fatalf("node %d: %v%s", n, err, c.glusterdErrors())
	}
	return out
}

// glusterdErrors is the last error lines of every node's glusterd log, for
// a failed command's message: "Commit failed on HOST" names a node, whose
// own log says why.
func (c *Cluster) glusterdErrors() string {
	var b strings.Builder
	for _, nd := range c.nodes {
		var errs []string
		for _, l := range LogLines(filepath.Join(nd.dir, "logs", "glusterd.log"), "] E [") {
			errs = append(errs, l)
		}
		if len(errs) > 10 {
			errs = errs[len(errs)-10:]
		}
		if len(errs) > 0 {
			fmt.Fprintf(&b, "\nglusterd of node %d (%s), its last errors:\n  %s", nd.n, nd.host, strings.Join(errs, "\n  "))
		}
	}
	return b.String()
}

// cliNode is a node whose glusterd runs and is not dropped, preferring
// node 1.
func (c *Cluster) cliNode(t T) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.cmd != nil && !c.dropped[nd.n] {
			return nd.n
		}
	}
	t.Fatalf("no node with a running, reachable glusterd")
	return 0
}

// StartGlusterd starts node n's glusterd and waits until its CLI socket
// answers. It fails if it is already running.
func (c *Cluster) StartGlusterd(t T, n int) {
	t.Helper()
	c.launchGlusterd(t, n)
	c.waitGlusterd(t, n)
}

func (c *Cluster) launchGlusterd(t T, n int) {
	t.Helper()
	nd := c.node(n)
	c.mu.Lock()
	running := nd.cmd != nil
	c.mu.Unlock()
	if running {
		t.Fatalf("StartGlusterd(%d): already running", n)
	}
	out, err := os.OpenFile(filepath.Join(nd.dir, "logs", "glusterd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("glusterd output file: %v", err)
	}
	defer out.Close()
	cmd := exec.Command("glusterd", nd.args...)
	if c.opts.ManagementTLS != "" {
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "slave", "sh", "-c", mgmtTLSScript, "sh",
			c.gdLib, c.opts.ManagementTLS, strings.Join(tlsconf.OpenSSLDirs(), " "), c.Dir, "glusterd"}, nd.args...)...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a ^C on the test does not kill glusterd before
	// teardown can stop the volumes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start glusterd %d: %v", n, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.mu.Lock()
	nd.cmd, nd.done = cmd, done
	c.mu.Unlock()
	c.record(cmd.Process.Pid, fmt.Sprintf("glusterd %d", n))
}

// mgmtTLSScript runs glusterd in its own mount namespace with management
// TLS (ClusterOptions.ManagementTLS): $1 is mounted over /var/lib/glusterd,
// $2 over each directory of the list $3 that exists, then the rest of the
// arguments run, as the same process (unshare and sh exec).
const mgmtTLSScript = `set -e
mount --bind "$1" /var/lib/glusterd
for d in $3; do
	if [ -d "$d" ]; then mount --bind "$2" "$d"; fi
done
# The namespace got a copy of every mount of the host, and an unmount on
# the host does not reach it: other runs' FUSE mounts and filesystems
# would stay pinned here (their daemons never exit, their loop devices
# stay busy) for as long as this glusterd runs. Only this cluster's own
# stay.
awk '$3 ~ /^fuse/ || $2 ~ /^\/tmp\/brickfs-it-/ {print $2}' /proc/self/mounts | while read -r m; do
	case "$m" in "$4"|"$4"/*) ;; *) umount -l "$m" 2>/dev/null || true ;; esac
done
shift 4
exec "$@"`

// prepareManagementTLS makes the /var/lib/glusterd the glusterds see: a
// copy of the host's (its hooks and groups), with a secure-access file.
func (c *Cluster) prepareManagementTLS(t T) {
	t.Helper()
	for _, tool := range []string{"unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("ManagementTLS needs %s: %v; install util-linux (bash scripts/deps.sh)", tool, err)
		}
	}
	for _, f := range []string{"glusterfs.pem", "glusterfs.key", "glusterfs.ca"} {
		if _, err := os.Stat(filepath.Join(c.opts.ManagementTLS, f)); err != nil {
			t.Fatalf("ManagementTLS: %v", err)
		}
	}
	c.gdLib = filepath.Join(c.Dir, "var-lib-glusterd")
	if err := os.MkdirAll(c.gdLib, 0o755); err != nil {
		t.Fatalf("ManagementTLS: %v", err)
	}
	if _, err := os.Stat("/var/lib/glusterd"); err == nil {
		if _, err := run(time.Minute, "cp", "-a", "/var/lib/glusterd/.", c.gdLib); err != nil {
			t.Fatalf("ManagementTLS: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.gdLib, "secure-access"), nil, 0o644); err != nil {
		t.Fatalf("ManagementTLS: %v", err)
	}
}

func (c *Cluster) waitGlusterd(t T, n int) {
	t.Helper()
	nd := c.node(n)
	c.mu.Lock()
	cmd, done := nd.cmd, nd.done
	c.mu.Unlock()
	waitFor(t, readyTimeout, fmt.Sprintf("glusterd %d (%s) to answer", n, nd.host), func() (bool, string) {
		select {
		case <-done:
			return false, fmt.Sprintf("glusterd exited: %v; log:\n%s", cmd.ProcessState, tail(filepath.Join(nd.dir, "logs", "glusterd.log"), 20))
		default:
		}
		_, err := c.Gluster(n, "volume", "list")
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// StopGlusterd stops node n's glusterd (SIGTERM, then SIGKILL after 15s).
// Its bricks keep running, as when glusterd crashes on a real server.
func (c *Cluster) StopGlusterd(t T, n int) {
	t.Helper()
	if err := c.stopGlusterd(n); err != nil {
		t.Fatalf("%v", err)
	}
}

func (c *Cluster) stopGlusterd(n int) error {
	nd := c.node(n)
	c.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.cmd, nd.done = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Second):
	}
	cmd.Process.Kill()
	select {
	case <-done:
		return fmt.Errorf("glusterd %d ignored SIGTERM for 15s; killed", n)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("glusterd %d (pid %d) did not exit after SIGKILL", n, cmd.Process.Pid)
	}
}

// RestartGlusterd stops node n's glusterd and starts it again, then waits
// until it is back in the pool and the volumes' processes are recorded again
// (glusterd restarts the self-heal daemon and any brick that is not
// running).
func (c *Cluster) RestartGlusterd(t T, n int) {
	t.Helper()
	c.StopGlusterd(t, n)
	c.StartGlusterd(t, n)
	c.waitPeers(t, n)
	for _, v := range c.startedVolumes() {
		c.waitBricks(t, v, nil)
	}
}

type peerStatusXML struct {
	OpRet    int    `xml:"opRet"`
	OpErrstr string `xml:"opErrstr"`
	Peers    []struct {
		Hostname  string `xml:"hostname"`
		Connected int    `xml:"connected"`
		StateStr  string `xml:"stateStr"`
	} `xml:"peerStatus>peer"`
}

// waitPeers waits until node n sees every other node, except dropped ones
// and ones whose glusterd is stopped, as a connected member of the pool.
func (c *Cluster) waitPeers(t T, n int) {
	t.Helper()
	want := map[string]bool{}
	c.mu.Lock()
	for _, nd := range c.nodes {
		if nd.n != n && nd.cmd != nil && !c.dropped[nd.n] {
			want[nd.host] = true
		}
	}
	c.mu.Unlock()
	waitFor(t, readyTimeout, fmt.Sprintf("node %d to see its peers connected", n), func() (bool, string) {
		out, err := c.Gluster(n, "peer", "status", "--xml")
		if err != nil {
			return false, err.Error()
		}
		var ps peerStatusXML
		if err := xml.Unmarshal([]byte(out), &ps); err != nil {
			return false, fmt.Sprintf("parse peer status: %v: %s", err, out)
		}
		got := 0
		for _, p := range ps.Peers {
			if want[p.Hostname] && p.Connected == 1 && p.StateStr == "Peer in Cluster" {
				got++
			}
		}
		return got == len(want), out
	})
}

// teardown undoes everything, also after a failure. It never calls Fatalf:
// every step runs.
func (c *Cluster) teardown() {
	t := c.t
	start := time.Now()
	// A process blocked on a frozen filesystem cannot even be killed.
	c.thawAll()
	// Mounts first: their own cleanups normally did it already.
	c.mu.Lock()
	var mps []string
	for mp := range c.mounts {
		mps = append(mps, mp)
	}
	c.mu.Unlock()
	for _, mp := range mps {
		c.unmount(mp)
	}
	c.removeChain()

	c.mu.Lock()
	for pid := range c.stopped {
		signalIfOurs(pid, c.Dir, syscall.SIGCONT)
	}
	c.mu.Unlock()

	// Stop the volumes while all glusterds run, so bricks exit cleanly.
	for _, v := range c.startedVolumes() {
		n := 0
		c.mu.Lock()
		for _, nd := range c.nodes {
			if nd.cmd != nil {
				n = nd.n
				break
			}
		}
		c.mu.Unlock()
		if n == 0 {
			break
		}
		if _, err := c.Gluster(n, "volume", "stop", v, "force"); err != nil {
			t.Logf("teardown: %v", err)
		}
	}
	for _, nd := range c.nodes {
		if err := c.stopGlusterd(nd.n); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}

	// Whatever is left of what we recorded, and anything else running from
	// our run directory (a client, a re-spawned shd), is killed by pid.
	for _, pid := range pidsMatching(c.Dir) {
		c.record(pid, "found")
	}
	c.mu.Lock()
	pids := make([]int, 0, len(c.pids))
	what := make(map[int]string, len(c.pids))
	for pid, w := range c.pids {
		pids = append(pids, pid)
		what[pid] = w
	}
	c.mu.Unlock()
	sort.Ints(pids)
	for _, pid := range pids {
		if procAlive(pid) && signalIfOurs(pid, c.Dir, syscall.SIGKILL) == nil {
			t.Logf("teardown: killed pid %d (%s)", pid, what[pid])
			if !waitGone(pid, 10*time.Second, false) {
				t.Errorf("teardown: pid %d (%s) survived SIGKILL", pid, what[pid])
			}
		}
	}
	c.removeFSs()
	for _, mp := range mountsUnder(c.Dir) {
		t.Errorf("teardown: %s still mounted; lazy unmount", mp)
		run(30*time.Second, "umount", "-l", mp)
	}

	if t.Failed() {
		c.dumpLogs()
	}
	c.mu.Lock()
	for s := range c.sockets {
		os.Remove(s)
	}
	c.mu.Unlock()
	if t.Failed() && os.Getenv("BRICKFS_KEEP_RUN_DIR") == "1" {
		t.Logf("keeping run directory %s (BRICKFS_KEEP_RUN_DIR=1)", c.Dir)
	} else if len(mountsUnder(c.Dir)) == 0 {
		// Retry once: a daemon that was dying may still have written a file.
		err := os.RemoveAll(c.Dir)
		if _, serr := os.Stat(c.Dir); err != nil || serr == nil {
			time.Sleep(time.Second)
			for _, pid := range pidsMatching(c.Dir) {
				t.Errorf("teardown: pid %d still runs from the run directory: %s", pid, procCmdline(pid))
				signalIfOurs(pid, c.Dir, syscall.SIGKILL)
			}
			if err := os.RemoveAll(c.Dir); err != nil {
				t.Errorf("teardown: %v", err)
			}
		}
	}
	c.releasePrefix()
	t.Logf("cluster %s torn down in %v", c.Prefix, time.Since(start).Round(time.Millisecond))
}

// dumpLogs prints the tail of every log file under the run directory.
func (c *Cluster) dumpLogs() {
	lines := 100
	if v, err := strconv.Atoi(os.Getenv("BRICKFS_LOG_LINES")); err == nil && v > 0 {
		lines = v
	}
	var files []string
	filepath.WalkDir(c.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (filepath.Base(path) == "bricks" && filepath.Base(filepath.Dir(path)) != "logs" || filepath.Base(path) == "mnt") {
			return filepath.SkipDir // brick backends and mount points
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".log") || strings.HasSuffix(path, ".out")) {
			files = append(files, path)
		}
		return nil
	})
	for _, f := range files {
		rel, _ := filepath.Rel(c.Dir, f)
		c.t.Logf("==== %s (last %d lines) ====\n%s", rel, lines, tail(f, lines))
	}
}
