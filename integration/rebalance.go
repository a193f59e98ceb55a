package integration

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AddBrick adds one subvolume (a replica set, or one brick) to the volume
// with `gluster volume add-brick`, its bricks spread over the nodes as
// CreateVolume spreads them, and waits until they are online.
func (c *Cluster) AddBrick(t T, volume string) {
	t.Helper()
	v := c.vol(t, volume)
	c.mu.Lock()
	kind := v.kind
	first := v.made
	v.made += kind.Set()
	c.mu.Unlock()
	args := []string{"volume", "add-brick", volume}
	if kind.Replica >= 2 {
		args = append(args, "replica", strconv.Itoa(kind.Replica))
		if kind.Arbiter > 0 {
			args = append(args, "arbiter", strconv.Itoa(kind.Arbiter))
		}
	}
	var added []*brick
	for j := 0; j < kind.Set(); j++ {
		nn := (first+j)%len(c.nodes) + 1
		b := &brick{node: nn, path: filepath.Join(c.node(nn).dir, "bricks", fmt.Sprintf("%s-b%d", volume, first+j))}
		added = append(added, b)
		args = append(args, c.Host(nn)+":"+b.path)
	}
	args = append(args, "force")
	if _, err := c.Gluster(c.cliNode(t), args...); err != nil {
		// glusterd fails an add-brick's commit on a node whose self-heal
		// daemon it could not attach the grown volume to ("Failed to
		// attach shd svc", after a quick remove-brick), once the bricks
		// are in the volume. The bricks being there on every node, the
		// add-brick is done; waitBricks below checks they run.
		if !strings.Contains(err.Error(), "Commit failed") || !strings.Contains(c.glusterdErrors(), "Failed to attach shd svc") {
			t.Fatalf("%v%s", err, c.glusterdErrors())
		}
		if missing := c.bricksMissing(volume, added); len(missing) > 0 {
			t.Fatalf("%v (bricks missing from the volume: %v)%s", err, missing, c.glusterdErrors())
		}
		t.Logf("add-brick: %v; the bricks are in the volume on every node, so it is taken as done%s", err, c.glusterdErrors())
	}
	c.mu.Lock()
	v.bricks = append(v.bricks, added...)
	v.kind.Dist = max(1, v.kind.Dist) + 1
	c.mu.Unlock()
	c.waitBricks(t, volume, nil)
}

// bricksMissing lists the bricks of bs that some node's `volume info`
// does not show in volume.
func (c *Cluster) bricksMissing(volume string, bs []*brick) []string {
	var missing []string
	for _, nd := range c.nodes {
		out, err := c.Gluster(nd.n, "volume", "info", volume)
		for _, b := range bs {
			if want := c.Host(b.node) + ":" + b.path; err != nil || !strings.Contains(out, want+"\n") {
				missing = append(missing, fmt.Sprintf("%s on node %d", want, nd.n))
			}
		}
	}
	return missing
}

// RebalanceStatus sums up `gluster volume rebalance|remove-brick ...
// status` over the nodes.
type RebalanceStatus struct {
	Files, Failures, Skipped int64
	Nodes                    []string // each node's status, e.g. "completed"
}

// Done reports whether every node finished (completed or failed; a
// fix-layout says "fix-layout completed").
func (s RebalanceStatus) Done() bool {
	for _, n := range s.Nodes {
		if !strings.HasSuffix(n, "completed") && !strings.HasSuffix(n, "failed") {
			return false
		}
	}
	return len(s.Nodes) > 0
}

// Failed reports whether a node failed.
func (s RebalanceStatus) Failed() bool {
	for _, n := range s.Nodes {
		if strings.HasSuffix(n, "failed") {
			return true
		}
	}
	return false
}

type migrationNodeXML struct {
	Name      string `xml:"nodeName"`
	Files     int64  `xml:"files"`
	Failures  int64  `xml:"failures"`
	Skipped   int64  `xml:"skipped"`
	StatusStr string `xml:"statusStr"`
}

type rebalanceXML struct {
	OpRet     int                `xml:"opRet"`
	OpErrstr  string             `xml:"opErrstr"`
	Rebalance []migrationNodeXML `xml:"volRebalance>node"`
	Remove    []migrationNodeXML `xml:"volRemoveBrick>node"`
}

// rebalanceStatus runs a status command (its arguments after "volume")
// with --xml and parses it.
func (c *Cluster) rebalanceStatus(t T, args ...string) (RebalanceStatus, error) {
	t.Helper()
	out, err := c.Gluster(c.cliNode(t), append(append([]string{"volume"}, args...), "--xml")...)
	if err != nil {
		return RebalanceStatus{}, err
	}
	var x rebalanceXML
	if err := xml.Unmarshal([]byte(out), &x); err != nil {
		return RebalanceStatus{}, fmt.Errorf("parse: %v: %s", err, out)
	}
	if x.OpRet != 0 {
		return RebalanceStatus{}, fmt.Errorf("%s", x.OpErrstr)
	}
	var s RebalanceStatus
	for _, n := range append(x.Rebalance, x.Remove...) {
		s.Files += n.Files
		s.Failures += n.Failures
		s.Skipped += n.Skipped
		s.Nodes = append(s.Nodes, strings.ToLower(n.StatusStr))
	}
	return s, nil
}

// recordRebalance records the pids of the volume's rebalance daemons
// from glusterd's pid files (they exit by themselves when done).
func (c *Cluster) recordRebalance(volume string) {
	for _, nd := range c.nodes {
		matches, _ := filepath.Glob(filepath.Join(nd.dir, "wd", "vols", volume, "rebalance", "*.pid"))
		for _, f := range matches {
			raw, _ := os.ReadFile(f)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && procAlive(pid) && strings.Contains(procCmdline(pid), "rebalance") {
				c.record(pid, "rebalance "+nd.host)
			}
		}
	}
}

// Rebalance runs `gluster volume rebalance VOL [fix-layout] start` and
// waits until every node finished; a node whose daemon failed to start
// its crawl (it could not reach a brick in time) is retried. It returns
// the final status.
func (c *Cluster) Rebalance(t T, volume string, fixLayout bool) RebalanceStatus {
	t.Helper()
	start := []string{"volume", "rebalance", volume, "start"}
	if fixLayout {
		start = []string{"volume", "rebalance", volume, "fix-layout", "start"}
	}
	return c.runMigration(t, "rebalance of "+volume, volume, start, []string{"volume", "rebalance", volume, "stop"}, []string{"rebalance", volume, "status"})
}

// runMigration starts a rebalance or remove-brick, waits for it, and
// retries (stop, start) up to three times while a node fails with no
// file done.
func (c *Cluster) runMigration(t T, what, volume string, start, stop, status []string) RebalanceStatus {
	t.Helper()
	var st RebalanceStatus
	for try := 1; ; try++ {
		c.MustGluster(t, c.cliNode(t), start...)
		c.recordRebalance(volume)
		const wait = 3 * time.Minute
		last := time.Now().Add(wait - 2*time.Second)
		dumped := false
		waitFor(t, wait, what, func() (bool, string) {
			c.recordRebalance(volume)
			s, err := c.rebalanceStatus(t, status...)
			if err != nil {
				return false, err.Error()
			}
			st = s
			if !s.Done() && !dumped && time.Now().After(last) {
				// About to time out: say what the daemons are doing.
				dumped = true
				for _, nd := range c.nodes {
					t.Logf("%s rebalance log:\n%s", nd.host, tail(filepath.Join(nd.dir, "logs", volume+"-rebalance.log"), 40))
				}
			}
			return s.Done(), fmt.Sprintf("%+v", s)
		})
		if !st.Failed() || try == 3 {
			return st
		}
		t.Logf("%s: a node failed (%+v); starting it again", what, st)
		_, _ = c.Gluster(c.cliNode(t), stop...)
	}
}

// RemoveBrick removes subvolume set (0-based) with `remove-brick start`,
// waits for the data to move off it, and commits. It returns the
// migration's status; the commit fails the test if that left files
// behind (glusterd refuses it then).
func (c *Cluster) RemoveBrick(t T, volume string, set int) RebalanceStatus {
	t.Helper()
	v, gone, args := c.removeBrickArgs(t, volume, set)
	n := len(gone)
	verb := func(w string) []string { return append(append([]string{}, args...), w) }
	var st RebalanceStatus
	for try := 1; ; try++ {
		st = c.runMigration(t, "remove-brick of set "+strconv.Itoa(set)+" of "+volume, volume, verb("start"), verb("stop"),
			append(append([]string{}, args[1:]...), "status"))
		if !st.Failed() && st.Failures == 0 && st.Skipped == 0 {
			break
		}
		t.Logf("remove-brick left files behind: %+v; the rebalance daemons said:\n%s", st, strings.Join(c.rebalanceErrors(volume), "\n"))
		for _, nd := range c.nodes {
			t.Logf("%s rebalance log:\n%s", nd.host, tail(filepath.Join(nd.dir, "logs", volume+"-rebalance.log"), 25))
		}
		if try == 2 {
			t.Fatalf("remove-brick left files behind twice: %+v", st)
		}
		c.MustGluster(t, c.cliNode(t), verb("stop")...)
	}
	c.MustGluster(t, c.cliNode(t), verb("commit")...)
	c.mu.Lock()
	v.bricks = append(v.bricks[:set*n:set*n], v.bricks[(set+1)*n:]...)
	v.kind.Dist--
	c.mu.Unlock()
	return st
}

// rebalanceErrors returns the error and warning lines of the volume's
// rebalance logs on every node.
func (c *Cluster) rebalanceErrors(volume string) []string {
	var out []string
	for _, nd := range c.nodes {
		for _, l := range LogLines(filepath.Join(nd.dir, "logs", volume+"-rebalance.log"), " E [", " W [", "fail") {
			if !strings.Contains(l, "saved_frames") && !strings.Contains(l, "rpc_clnt_ping") {
				out = append(out, nd.host+": "+l)
			}
		}
	}
	return out
}

// RebalanceLog returns the lines of the volume's rebalance logs on every
// node that mention any of words.
func (c *Cluster) RebalanceLog(volume string, words ...string) []string {
	var out []string
	for _, nd := range c.nodes {
		for _, l := range LogLines(filepath.Join(nd.dir, "logs", volume+"-rebalance.log"), words...) {
			out = append(out, nd.host+": "+l)
		}
	}
	return out
}

// removeBrickArgs returns the volume, the bricks of subvolume set, and
// `volume remove-brick VOL [replica N] BRICKS...`.
func (c *Cluster) removeBrickArgs(t T, volume string, set int) (*vol, []*brick, []string) {
	t.Helper()
	v := c.vol(t, volume)
	c.mu.Lock()
	n := v.kind.Set()
	gone := append([]*brick{}, v.bricks[set*n:(set+1)*n]...)
	replica := v.kind.Replica
	c.mu.Unlock()
	args := []string{"volume", "remove-brick", volume}
	if replica >= 2 {
		args = append(args, "replica", strconv.Itoa(replica))
	}
	for _, b := range gone {
		args = append(args, c.Host(b.node)+":"+b.path)
	}
	return v, gone, args
}

// RemoveEmptyBrick removes subvolume set, which must hold no file data
// (a set just added, before any rebalance), with `remove-brick ... force`:
// nothing to migrate. (A `remove-brick start` of such a set still crawls
// the volume and, on 10.3, fails on hard-linked files elsewhere.)
func (c *Cluster) RemoveEmptyBrick(t T, volume string, set int) {
	t.Helper()
	v, gone, args := c.removeBrickArgs(t, volume, set)
	n := len(gone)
	for _, b := range gone {
		_ = filepath.WalkDir(b.path, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() && d.Name() == ".glusterfs" {
				return filepath.SkipDir
			}
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				if _, link := isLinktoFile(p); !link {
					t.Fatalf("remove-brick force of set %d: it holds %s", set, p)
				}
			}
			return nil
		})
	}
	c.MustGluster(t, c.cliNode(t), append(args, "force")...)
	c.mu.Lock()
	v.bricks = append(v.bricks[:set*n:set*n], v.bricks[(set+1)*n:]...)
	v.kind.Dist--
	c.mu.Unlock()
}
