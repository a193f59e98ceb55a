package integration

import (
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// glfshealPaths are where distributions put glfsheal, the program
// `gluster volume heal VOL info` runs (GLFSHEAL_PREFIX is libexecdir).
var glfshealPaths = []string{
	"/usr/lib/*/glusterfs/glfsheal",
	"/usr/libexec/glusterfs/glfsheal",
	"/usr/lib/glusterfs/glfsheal",
}

// glfsheal finds the glfsheal program.
func glfsheal() (string, error) {
	for _, pat := range glfshealPaths {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[0], nil
		}
	}
	return "", fmt.Errorf("glfsheal not found in %s; install glusterfs-common (bash scripts/deps.sh)", strings.Join(glfshealPaths, ", "))
}

// HealEntries is one brick's line of `gluster volume heal VOL info`.
type HealEntries struct {
	Brick   string // host:path
	Status  string // "Connected", or why not
	Entries int    // -1 when the brick could not be asked
}

// HealInfo is `gluster volume heal VOL info` for this cluster. The gluster
// CLI runs glfsheal with no socket argument, so glfsheal asks the system
// glusterd at /var/run/glusterd.socket, which is not one of ours; here
// glfsheal runs the same way but is told node n's glusterd socket
// (its documented `glusterd-sock FILE` argument). Everything else, the
// bricks it connects to and the index it lists, is what the CLI shows.
func (c *Cluster) HealInfo(n int, volume string) ([]HealEntries, error) {
	prog, err := glfsheal()
	if err != nil {
		return nil, err
	}
	out, err := run(60*time.Second, prog, volume, "--xml", "glusterd-sock", c.GlusterdSock(n))
	if err != nil {
		return nil, err
	}
	return parseHealInfo(out)
}

// parseHealInfo reads glfsheal's --xml output.
func parseHealInfo(out string) ([]HealEntries, error) {
	// run returns stdout and stderr together; the XML document starts at
	// its declaration.
	if i := strings.Index(out, "<?xml"); i > 0 {
		out = out[i:]
	}
	var doc struct {
		OpRet  int    `xml:"opRet"`
		OpErr  string `xml:"opErrstr"`
		Bricks []struct {
			Name    string `xml:"name"`
			Status  string `xml:"status"`
			Entries string `xml:"numberOfEntries"`
		} `xml:"healInfo>bricks>brick"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("glfsheal output is not its XML (%v): %q", err, out)
	}
	if doc.OpRet != 0 {
		return nil, fmt.Errorf("glfsheal failed (opRet %d): %s", doc.OpRet, doc.OpErr)
	}
	var res []HealEntries
	for _, b := range doc.Bricks {
		e := HealEntries{Brick: b.Name, Status: b.Status, Entries: -1}
		if n, err := strconv.Atoi(strings.TrimSpace(b.Entries)); err == nil {
			e.Entries = n
		}
		res = append(res, e)
	}
	return res, nil
}

// healInfoPending lists why heal info is not drained: a brick of a node
// that is not dropped that is not connected or still lists entries.
func (c *Cluster) healInfoPending(t T, volume string) []string {
	info, err := c.HealInfo(c.cliNode(t), volume)
	if err != nil {
		return []string{"heal info: " + err.Error()}
	}
	skip := map[string]bool{}
	for _, b := range c.Bricks(t, volume) {
		if c.Dropped(b.Node) {
			skip[b.Host+":"+b.Path] = true
		}
	}
	var why []string
	for _, e := range info {
		switch {
		case skip[e.Brick]:
		case e.Status != "Connected":
			why = append(why, fmt.Sprintf("heal info: %s: %s", e.Brick, e.Status))
		case e.Entries != 0:
			why = append(why, fmt.Sprintf("heal info: %s: %d entries", e.Brick, e.Entries))
		}
	}
	if len(info) == 0 {
		why = append(why, "heal info listed no bricks")
	}
	return why
}
