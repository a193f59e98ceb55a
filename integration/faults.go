package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DropHost makes node n silent: every packet to or from 127.a.b.n is
// dropped by iptables, in a chain of this cluster's own (BRICKFS-a-b, jumped
// to first from INPUT and OUTPUT). Connections stay open and time out, as
// with a host that lost power. Traffic of the node with itself (its bricks
// and its glusterd) is dropped too, since all of it crosses lo.
func (c *Cluster) DropHost(t T, n int) {
	t.Helper()
	_, err := exec.LookPath("iptables")
	need(t, err == nil, glusterEnvs, "iptables not found; install iptables (bash scripts/deps.sh)")
	c.ensureChain(t)
	c.mu.Lock()
	already := c.dropped[n]
	c.dropped[n] = true
	chain := c.chain
	c.mu.Unlock()
	if already {
		return
	}
	h := c.Host(n)
	for _, rule := range [][]string{{"-d", h}, {"-s", h}} {
		if _, err := run(30*time.Second, "iptables", append([]string{"-w", "-A", chain}, append(rule, "-j", "DROP")...)...); err != nil {
			t.Fatalf("DropHost %d: %v", n, err)
		}
	}
	t.Logf("dropping all packets to and from node %d (%s)", n, h)
}

// UndropHost removes DropHost's rules for node n.
func (c *Cluster) UndropHost(t T, n int) {
	t.Helper()
	c.mu.Lock()
	was := c.dropped[n]
	delete(c.dropped, n)
	chain := c.chain
	c.mu.Unlock()
	if !was {
		return
	}
	h := c.Host(n)
	for _, rule := range [][]string{{"-d", h}, {"-s", h}} {
		if _, err := run(30*time.Second, "iptables", append([]string{"-w", "-D", chain}, append(rule, "-j", "DROP")...)...); err != nil {
			t.Fatalf("UndropHost %d: %v", n, err)
		}
	}
	t.Logf("node %d (%s) reachable again", n, h)
}

func (c *Cluster) ensureChain(t T) {
	t.Helper()
	c.mu.Lock()
	have := c.chain != ""
	c.mu.Unlock()
	if have {
		return
	}
	chain := "BRICKFS-" + strings.ReplaceAll(strings.TrimPrefix(c.Prefix, "127."), ".", "-")
	if _, err := run(30*time.Second, "iptables", "-w", "-N", chain); err != nil {
		t.Fatalf("create iptables chain: %v", err)
	}
	c.mu.Lock()
	c.chain = chain // from here on teardown removes it
	c.mu.Unlock()
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		if _, err := run(30*time.Second, "iptables", "-w", "-I", hook, "1", "-j", chain); err != nil {
			t.Fatalf("hook iptables chain: %v", err)
		}
	}
}

// removeChain deletes the cluster's iptables chain and its jumps.
func (c *Cluster) removeChain() {
	c.mu.Lock()
	chain := c.chain
	c.chain = ""
	c.dropped = map[int]bool{}
	c.mu.Unlock()
	if chain == "" {
		return
	}
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		// Delete every jump, in case one was inserted twice.
		for i := 0; i < 10; i++ {
			if _, err := run(30*time.Second, "iptables", "-w", "-D", hook, "-j", chain); err != nil {
				break
			}
		}
	}
	var errs []string
	for _, args := range [][]string{{"-F", chain}, {"-X", chain}} {
		if _, err := run(30*time.Second, "iptables", append([]string{"-w"}, args...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		c.t.Errorf("teardown: remove iptables chain %s: %s", chain, strings.Join(errs, "; "))
	}
}

// Dropped reports whether node n is behind DropHost.
func (c *Cluster) Dropped(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped[n]
}

// String is "cluster 127.a.b (3 nodes) in DIR".
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster %s (%d nodes) in %s", c.Prefix, len(c.nodes), c.Dir)
}
