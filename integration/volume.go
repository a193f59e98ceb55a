package integration

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kind is the layout of a volume: how many bricks, replicated how.
type Kind struct {
	Replica int // 0 or 1: a single brick per subvolume
	Arbiter int // 1: the last brick of each replica set is an arbiter
	Dist    int // 0 or 1: one subvolume; N: distributed over N subvolumes
}

// The volume kinds the tests use.
var (
	Single           = Kind{}
	Replica2         = Kind{Replica: 2}
	Replica3         = Kind{Replica: 3}
	Replica3Arbiter1 = Kind{Replica: 3, Arbiter: 1}
	Dist3            = Kind{Dist: 3}                         // 3x1
	Dist2Replica3    = Kind{Dist: 2, Replica: 3}             // 2x3
	Dist2Arbiter     = Kind{Dist: 2, Replica: 3, Arbiter: 1} // 2x(2+1)
)

// Set is the number of bricks in one subvolume (a replica set, or one
// brick).
func (k Kind) Set() int {
	if k.Replica < 2 {
		return 1
	}
	return k.Replica
}

// Subvolumes is the number of subvolumes DHT places files over.
func (k Kind) Subvolumes() int { return max(1, k.Dist) }

// Bricks is the number of bricks of a volume of this kind.
func (k Kind) Bricks() int { return k.Set() * k.Subvolumes() }

func (k Kind) String() string {
	var s string
	switch {
	case k.Replica < 2:
		s = "single"
	case k.Arbiter > 0:
		s = fmt.Sprintf("replica %d arbiter %d", k.Replica, k.Arbiter)
	default:
		s = fmt.Sprintf("replica %d", k.Replica)
	}
	if k.Dist > 1 {
		if k.Replica < 2 {
			return fmt.Sprintf("distribute %d", k.Dist)
		}
		return fmt.Sprintf("%d x %s", k.Dist, s)
	}
	return s
}

type vol struct {
	name    string
	kind    Kind
	bricks  []*brick
	made    int // bricks ever made, for the next brick's directory name
	started bool
}

type brick struct {
	node int
	path string
	port int // last port glusterd reported
}

// BrickInfo describes brick i of a volume as it is now.
type BrickInfo struct {
	Index int    // 0-based position in the volume
	Name  string // client xlator name: VOL-client-I, as in trusted.afr.VOL-client-I
	Node  int    // 1-based node
	Host  string // 127.a.b.N
	Path  string // backend directory
	Port  int    // TCP port; the last one glusterd reported if it is down now
	PID   int    // glusterfsd pid; 0 if not running
}

func (b BrickInfo) String() string {
	return fmt.Sprintf("%s %s:%s port %d pid %d", b.Name, b.Host, b.Path, b.Port, b.PID)
}

// CreateVolume creates volume name of the given kind with `volume create
// ... force`. nodes, if given, says which node holds each brick (1-based,
// one per brick); by default brick i is on node i%Nodes()+1. Brick
// directories are DIR/nN/bricks/NAME-bI. The volume is not started.
func (c *Cluster) CreateVolume(t T, name string, kind Kind, nodes ...int) {
	t.Helper()
	n := kind.Bricks()
	if len(nodes) == 0 {
		for i := 0; i < n; i++ {
			nodes = append(nodes, i%len(c.nodes)+1)
		}
	}
	if len(nodes) != n {
		t.Fatalf("CreateVolume %s: %s needs %d bricks, got nodes %v", name, kind, n, nodes)
	}
	var bricks []*brick
	for i, nn := range nodes {
		bricks = append(bricks, &brick{node: nn, path: filepath.Join(c.node(nn).dir, "bricks", fmt.Sprintf("%s-b%d", name, i))})
	}
	c.createVolume(t, name, kind, bricks)
}

// CreateVolumeOn is CreateVolume with brick i in a directory of its own on
// fss[i] (made by MakeFS), on that filesystem's node.
func (c *Cluster) CreateVolumeOn(t T, name string, kind Kind, fss ...*BackingFS) {
	t.Helper()
	if len(fss) != kind.Bricks() {
		t.Fatalf("CreateVolumeOn %s: %s needs %d bricks, got %d filesystems", name, kind, kind.Bricks(), len(fss))
	}
	var bricks []*brick
	for i, f := range fss {
		bricks = append(bricks, &brick{node: f.Node, path: filepath.Join(f.Dir, fmt.Sprintf("%s-b%d", name, i))})
	}
	c.createVolume(t, name, kind, bricks)
}

func (c *Cluster) createVolume(t T, name string, kind Kind, bricks []*brick) {
	t.Helper()
	v := &vol{name: name, kind: kind, bricks: bricks}
	args := []string{"volume", "create", name}
	if kind.Replica >= 2 {
		args = append(args, "replica", strconv.Itoa(kind.Replica))
		if kind.Arbiter > 0 {
			args = append(args, "arbiter", strconv.Itoa(kind.Arbiter))
		}
	}
	args = append(args, "transport", "tcp")
	for _, b := range bricks {
		args = append(args, c.Host(b.node)+":"+b.path)
	}
	args = append(args, "force")
	c.mu.Lock()
	_, dup := c.vols[name]
	c.mu.Unlock()
	if dup {
		t.Fatalf("CreateVolume: volume %s exists", name)
	}
	c.MustGluster(t, c.cliNode(t), args...)
	v.made = len(v.bricks)
	c.mu.Lock()
	c.vols[name] = v
	c.mu.Unlock()
}

// Set runs `gluster volume set VOL KEY VALUE`.
func (c *Cluster) Set(t T, volume, key, value string) {
	t.Helper()
	c.MustGluster(t, c.cliNode(t), "volume", "set", volume, key, value)
}

// Start starts the volume and waits until every brick is online with a pid
// and a port, recording the pids of bricks and self-heal daemons.
func (c *Cluster) Start(t T, volume string) {
	t.Helper()
	v := c.vol(t, volume)
	c.mu.Lock()
	opts := c.atStart[volume]
	c.mu.Unlock()
	for _, o := range opts {
		c.Set(t, volume, o[0], o[1])
	}
	c.MustGluster(t, c.cliNode(t), "volume", "start", volume)
	c.mu.Lock()
	v.started = true
	c.mu.Unlock()
	c.waitBricks(t, volume, nil)
}

// SetAtStart has Start set key to value on volume before it starts it:
// for options a running brick does not take back once it has acted on
// them (storage.health-check-interval 0 does not stop a health-check
// thread that is already running).
func (c *Cluster) SetAtStart(volume, key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.atStart == nil {
		c.atStart = map[string][][2]string{}
	}
	c.atStart[volume] = append(c.atStart[volume], [2]string{key, value})
}

// Brick describes brick i (0-based) of the volume now. It asks no glusterd
// (a `volume status` with a silent peer blocks for minutes): the pid comes
// from glusterd's pid file for the brick, checked to be alive and to serve
// this brick, the port from the brick's --brick-port argument, or the last
// port seen if the brick is down.
func (c *Cluster) Brick(t T, volume string, i int) BrickInfo {
	t.Helper()
	v := c.vol(t, volume)
	if i < 0 || i >= len(v.bricks) {
		t.Fatalf("Brick(%s, %d): volume has %d bricks", volume, i, len(v.bricks))
	}
	b := v.bricks[i]
	pid := c.brickPID(volume, b)
	c.mu.Lock()
	if p := brickPort(pid); p > 0 {
		b.port = p
	}
	port := b.port
	c.mu.Unlock()
	return BrickInfo{
		Index: i,
		Name:  fmt.Sprintf("%s-client-%d", volume, i),
		Node:  b.node,
		Host:  c.Host(b.node),
		Path:  b.path,
		Port:  port,
		PID:   pid,
	}
}

// brickPort is the --brick-port argument of a running brick, 0 if none.
func brickPort(pid int) int {
	if pid <= 0 {
		return 0
	}
	fs := strings.Fields(procCmdline(pid))
	for i, f := range fs {
		if f == "--brick-port" && i+1 < len(fs) {
			p, _ := strconv.Atoi(strings.SplitN(fs[i+1], ",", 2)[0])
			return p
		}
	}
	return 0
}

// Bricks describes every brick of the volume.
func (c *Cluster) Bricks(t T, volume string) []BrickInfo {
	t.Helper()
	v := c.vol(t, volume)
	out := make([]BrickInfo, len(v.bricks))
	for i := range v.bricks {
		out[i] = c.Brick(t, volume, i)
	}
	return out
}

// brickPID reads the pid file glusterd keeps for the brick
// (DIR/nN/run/vols/VOL/HOST-PATH-WITH-DASHES.pid) and returns the pid if that
// process runs this brick, else 0.
func (c *Cluster) brickPID(volume string, b *brick) int {
	raw, err := os.ReadFile(c.brickPIDFile(volume, b))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || !procAlive(pid) || !strings.Contains(procCmdline(pid), "--brick-name "+b.path) {
		return 0
	}
	return pid
}

func (c *Cluster) brickPIDFile(volume string, b *brick) string {
	file := c.Host(b.node) + strings.ReplaceAll(b.path, "/", "-") + ".pid"
	return filepath.Join(c.node(b.node).dir, "run", "vols", volume, file)
}

func (c *Cluster) vol(t T, name string) *vol {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vols[name]
	if !ok {
		t.Fatalf("no volume %q in this cluster", name)
	}
	return v
}

func (c *Cluster) startedVolumes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, v := range c.vols {
		if v.started {
			out = append(out, name)
		}
	}
	return out
}

type volStatusXML struct {
	OpRet    int    `xml:"opRet"`
	OpErrstr string `xml:"opErrstr"`
	Volumes  []struct {
		Name  string `xml:"volName"`
		Nodes []struct {
			Hostname string `xml:"hostname"`
			Path     string `xml:"path"`
			Status   int    `xml:"status"`
			Port     string `xml:"port"`
			PID      string `xml:"pid"`
		} `xml:"node"`
	} `xml:"volStatus>volumes>volume"`
}

type statusEntry struct {
	online bool
	port   int
	pid    int
}

// status runs `volume status VOL --xml` on node n and returns the entries by
// "host:path" (bricks) or "Self-heal Daemon:host" (shd).
func (c *Cluster) status(n int, volume string) (map[string]statusEntry, error) {
	out, err := c.Gluster(n, "volume", "status", volume, "--xml")
	if err != nil {
		return nil, err
	}
	var st volStatusXML
	if err := xml.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("parse volume status: %v: %s", err, out)
	}
	if st.OpRet != 0 {
		return nil, fmt.Errorf("volume status %s: %s", volume, st.OpErrstr)
	}
	m := map[string]statusEntry{}
	for _, v := range st.Volumes {
		for _, nd := range v.Nodes {
			port, _ := strconv.Atoi(nd.Port)
			pid, _ := strconv.Atoi(nd.PID)
			m[nd.Hostname+":"+nd.Path] = statusEntry{online: nd.Status == 1, port: port, pid: pid}
		}
	}
	return m, nil
}

func (c *Cluster) recordStatus(v *vol, st map[string]statusEntry) {
	for key, e := range st {
		if e.pid > 0 && procAlive(e.pid) && strings.Contains(procCmdline(e.pid), c.Dir) {
			what := "brick " + key
			if strings.HasPrefix(key, "Self-heal Daemon:") {
				what = "shd " + key
			}
			c.record(e.pid, what)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range v.bricks {
		if e, ok := st[c.nodes[b.node-1].host+":"+b.path]; ok && e.online && e.port > 0 {
			b.port = e.port
		}
	}
}

// waitBricks waits until every brick of the volume (or, with only set, those
// bricks) is online in `volume status`, has a live pid, and, if old[i] is
// set, a pid different from old[i]. It records the pids it sees. With
// again, it runs again every startRetry while some brick is not online.
func (c *Cluster) waitBricks(t T, volume string, old map[int]int, again ...func()) {
	t.Helper()
	v := c.vol(t, volume)
	tried := time.Now()
	waitFor(t, readyTimeout, "bricks of "+volume+" online", func() (ok bool, detail string) {
		defer func() {
			if !ok && len(again) > 0 && time.Since(tried) >= startRetry {
				t.Logf("bricks of %s still not online after %v (%s): starting them again", volume, startRetry, detail)
				again[0]()
				tried = time.Now()
			}
		}()
		// With a silent peer `volume status` blocks until the CLI times
		// out; then a brick counts as online when it accepts connections.
		var st map[string]statusEntry
		c.mu.Lock()
		anyDropped := len(c.dropped) > 0
		c.mu.Unlock()
		if !anyDropped {
			var err error
			if st, err = c.status(c.cliNode(t), volume); err != nil {
				return false, err.Error()
			}
			c.recordStatus(v, st)
		}
		for i, b := range v.bricks {
			c.mu.Lock()
			reachable := !c.dropped[b.node] && c.nodes[b.node-1].cmd != nil
			c.mu.Unlock()
			if !reachable {
				continue // its glusterd cannot answer for it
			}
			key := c.Host(b.node) + ":" + b.path
			if st != nil {
				if e, ok := st[key]; !ok || !e.online || e.port == 0 {
					return false, fmt.Sprintf("brick %d (%s) not online: %+v", i, key, e)
				}
			} else if bi := c.Brick(t, volume, i); bi.PID == 0 || !Listening(bi.Host, bi.Port, time.Second) {
				return false, fmt.Sprintf("brick %s not listening", bi)
			}
			pid := c.brickPID(volume, b)
			if pid == 0 {
				return false, fmt.Sprintf("brick %d (%s): no live pid", i, key)
			}
			if o, ok := old[i]; ok && o == pid {
				return false, fmt.Sprintf("brick %d (%s) still has old pid %d", i, key, pid)
			}
			c.record(pid, "brick "+key)
		}
		// Record the self-heal daemons from their pid files too.
		for _, nd := range c.nodes {
			matches, _ := filepath.Glob(filepath.Join(nd.dir, "run", "shd", volume, "*.pid"))
			for _, f := range matches {
				raw, _ := os.ReadFile(f)
				if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && procAlive(pid) && strings.Contains(procCmdline(pid), c.Dir) {
					c.record(pid, "shd "+nd.host)
				}
			}
		}
		return true, ""
	})
}

// KillBrick sends SIGKILL to brick i of the volume (a crash) and waits until
// the process is gone. It returns the brick as it was.
func (c *Cluster) KillBrick(t T, volume string, i int) BrickInfo {
	t.Helper()
	b := c.Brick(t, volume, i)
	if b.PID == 0 {
		t.Fatalf("KillBrick: %s is not running", b)
	}
	c.mu.Lock()
	delete(c.stopped, b.PID)
	c.mu.Unlock()
	if err := signalIfOurs(b.PID, c.Dir, syscall.SIGKILL); err != nil {
		t.Fatalf("KillBrick %s: %v", b, err)
	}
	if !waitGone(b.PID, 10*time.Second, false) {
		t.Fatalf("KillBrick: %s survived SIGKILL", b)
	}
	// Until the zombie is reaped glusterd would take the brick for running
	// and `volume start force` would not restart it.
	if !waitGone(b.PID, 10*time.Second, true) {
		t.Logf("KillBrick: pid %d of %s not reaped after 10s; removing its pid file", b.PID, b)
		os.Remove(c.brickPIDFile(volume, c.vol(t, volume).bricks[i]))
	}
	t.Logf("killed brick %s", b)
	return b
}

// StopBrick sends SIGSTOP to brick i (a hung brick: connections stay open,
// nothing answers). Teardown resumes it if the test does not.
func (c *Cluster) StopBrick(t T, volume string, i int) BrickInfo {
	t.Helper()
	b := c.Brick(t, volume, i)
	if b.PID == 0 {
		t.Fatalf("StopBrick: %s is not running", b)
	}
	if err := signalIfOurs(b.PID, c.Dir, syscall.SIGSTOP); err != nil {
		t.Fatalf("StopBrick %s: %v", b, err)
	}
	c.mu.Lock()
	c.stopped[b.PID] = true
	c.mu.Unlock()
	waitFor(t, 10*time.Second, "brick to stop", func() (bool, string) {
		s := procState(b.PID)
		return s == 'T', fmt.Sprintf("state %q", s)
	})
	t.Logf("stopped brick %s", b)
	return b
}

// ContBrick sends SIGCONT to brick i after StopBrick.
func (c *Cluster) ContBrick(t T, volume string, i int) BrickInfo {
	t.Helper()
	b := c.Brick(t, volume, i)
	if b.PID == 0 {
		t.Fatalf("ContBrick: %s is not running", b)
	}
	if err := signalIfOurs(b.PID, c.Dir, syscall.SIGCONT); err != nil {
		t.Fatalf("ContBrick %s: %v", b, err)
	}
	c.mu.Lock()
	delete(c.stopped, b.PID)
	c.mu.Unlock()
	t.Logf("resumed brick %s", b)
	return b
}

// RestartBrick kills brick i if it runs (also if stopped), then runs
// `gluster volume start VOL force` and waits until it is online under a new
// pid. The brick's glusterd must be running and reachable.
func (c *Cluster) RestartBrick(t T, volume string, i int) BrickInfo {
	t.Helper()
	b := c.Brick(t, volume, i)
	old := map[int]int{}
	if b.PID != 0 {
		signalIfOurs(b.PID, c.Dir, syscall.SIGCONT)
		c.KillBrick(t, volume, i)
		old[i] = b.PID
	}
	c.MustGluster(t, c.cliNode(t), "volume", "start", volume, "force")
	c.waitBricks(t, volume, old, c.startForceAgain(t, volume))
	nb := c.Brick(t, volume, i)
	t.Logf("restarted brick %s", nb)
	return nb
}

// StartForce runs `gluster volume start VOL force`, which starts every brick
// of the volume that is not running, and waits until all are online.
func (c *Cluster) StartForce(t T, volume string) {
	t.Helper()
	c.MustGluster(t, c.cliNode(t), "volume", "start", volume, "force")
	c.waitBricks(t, volume, nil, c.startForceAgain(t, volume))
}

// startRetry is how long a brick `volume start force` should have started
// may stay offline before the command is given again.
const startRetry = 15 * time.Second

// startForceAgain gives `volume start VOL force` again. A glusterd that has
// just started its bricks itself skips one it still counts as starting,
// though the process is gone (killed at once): nothing starts it after.
func (c *Cluster) startForceAgain(t T, volume string) func() {
	return func() {
		if out, err := c.Gluster(c.cliNode(t), "volume", "start", volume, "force"); err != nil {
			t.Logf("volume start %s force again: %v %s", volume, err, out)
		}
	}
}

// ReplaceBrick moves brick i of the volume to a new directory on the same
// node with `gluster volume replace-brick VOL OLD NEW commit force` (the
// old brick process is stopped by glusterd, the new one started empty and
// marked for a full heal) and waits until the new brick is online.
func (c *Cluster) ReplaceBrick(t T, volume string, i int) BrickInfo {
	t.Helper()
	v := c.vol(t, volume)
	old := c.Brick(t, volume, i)
	c.mu.Lock()
	b := v.bricks[i]
	oldPath := b.path
	newPath := fmt.Sprintf("%s-r%d", oldPath, time.Now().UnixNano()%100000)
	c.mu.Unlock()
	// Every glusterd of this test cluster shares one filesystem, and each
	// node's pre-validation sets and removes the same test xattr on the new
	// brick path: two at once can take it from each other ("Removing test
	// extended attribute failed, reason: No data available"). A real
	// cluster has one filesystem per node; here the command is tried again.
	args := []string{"volume", "replace-brick", volume, c.Host(b.node) + ":" + oldPath, c.Host(b.node) + ":" + newPath, "commit", "force"}
	for try := 1; ; try++ {
		out, err := c.Gluster(c.cliNode(t), args...)
		if err == nil {
			break
		}
		if try == 3 || !strings.Contains(out+err.Error(), "test extended attribute") {
			t.Fatalf("%v", err)
		}
		t.Logf("replace-brick, try %d: %v; trying again", try, err)
	}
	c.mu.Lock()
	b.path = newPath
	b.port = 0
	c.mu.Unlock()
	pids := map[int]int{}
	if old.PID != 0 {
		pids[i] = old.PID
	}
	c.waitBricks(t, volume, pids)
	nb := c.Brick(t, volume, i)
	t.Logf("replaced brick %d: %s:%s -> %s", i, old.Host, oldPath, nb)
	return nb
}
