package integration

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReplicaKillBrick: SIGKILL one brick of a replica-3 volume during a
// verifying fio run, restart it (on a new port); brickfs must reconnect by
// itself, write to it again, and the self-heal daemon must make the three
// copies identical.
func TestReplicaKillBrick(t *testing.T) {
	e := newRepEnv(t, "rkill", Replica3)
	file := e.fill("data")
	e.faultRun("kill", file, repFioRun, func() {
		start := time.Now()
		old := e.c.KillBrick(t, e.vol, 0)
		e.requirePending(0)
		holdFault(start, 3*time.Second) // writes run on two bricks
		e.requireHealInfoPending(0)
		// Hold the old port so that glusterd must give the brick a new
		// one (it picks a port it can bind on every address); whoever
		// connects there is hung up on, as by a service that took it.
		hold := holdPort(t, old.Host, old.Port)
		nb := e.c.RestartBrick(t, e.vol, 0)
		hold.Close()
		if nb.Port == old.Port {
			t.Fatalf("restarted brick got its old port %d although it was held", nb.Port)
		}
		t.Logf("brick 0 moved from port %d to %d", old.Port, nb.Port)
		// While fio still writes: brickfs must find the new port itself.
		t.Logf("RECONNECT kill=%.2fs", e.waitBrickUsed(0, 30*time.Second).Seconds())
	})
	e.healAndCheck("data")
}

// TestReplicaStopBrick: SIGSTOP one brick for repHold (a hung brick: its
// connections stay open and nothing answers), then SIGCONT.
func TestReplicaStopBrick(t *testing.T) {
	e := newRepEnv(t, "rstop", Replica3)
	file := e.fill("data")
	e.faultRun("stop", file, repFioRun, func() {
		start := time.Now()
		e.c.StopBrick(t, e.vol, 2)
		t.Logf("brick 2 stopped at %s", time.Now().UTC().Format("15:04:05.000"))
		e.requirePending(2)
		holdFault(start, repHold)
		e.c.ContBrick(t, e.vol, 2)
	})
	e.waitBrickUsed(2, 30*time.Second)
	e.healAndCheck("data")
}

// TestReplicaDropHost: every packet to and from brick 2's node is dropped
// for repHold (its glusterd too), then let through again.
func TestReplicaDropHost(t *testing.T) {
	e := newRepEnv(t, "rdrop", Replica3)
	file := e.fill("data")
	e.faultRun("drop", file, repFioRun, func() {
		start := time.Now()
		e.c.DropHost(t, 3)
		e.requirePending(2)
		holdFault(start, repHold)
		e.c.UndropHost(t, 3)
	})
	e.waitBrickUsed(2, 60*time.Second)
	e.healAndCheck("data")
}

// TestReplicaSequentialFaults: a fault on brick 0, recovery and heal, then
// a fault on brick 1; never two at once, so quorum always holds.
func TestReplicaSequentialFaults(t *testing.T) {
	e := newRepEnv(t, "rseq", Replica3)
	file := e.fill("data")
	e.faultRun("seq-kill-b0", file, repFioRun, func() {
		start := time.Now()
		e.c.KillBrick(t, e.vol, 0)
		e.requirePending(0)
		holdFault(start, 3*time.Second)
		e.c.RestartBrick(t, e.vol, 0)
	})
	e.waitBrickUsed(0, 30*time.Second)
	e.healAndCheck("data")
	e.faultRun("seq-stop-b1", file, repFioRun, func() {
		start := time.Now()
		e.c.StopBrick(t, e.vol, 1)
		e.requirePending(1)
		holdFault(start, repHold)
		e.c.ContBrick(t, e.vol, 1)
	})
	e.waitBrickUsed(1, 30*time.Second)
	e.healAndCheck("data")
}

// TestReplicaGlusterdRestart: every node's glusterd restarts in turn while
// fio writes; the bricks keep running, so I/O should not notice.
func TestReplicaGlusterdRestart(t *testing.T) {
	e := newRepEnv(t, "rgd", Replica3)
	file := e.fill("data")
	e.faultRun("glusterd-restart", file, 25*time.Second, func() {
		for n := 1; n <= e.c.Nodes(); n++ {
			start := time.Now()
			e.c.RestartGlusterd(t, n)
			t.Logf("glusterd %d restarted in %v", n, time.Since(start).Round(time.Millisecond))
		}
	})
	e.healAndCheck("data")
	if lines := LogLines(e.c.MountLog(e.mnt), "child down", "brick stopped answering"); len(lines) > 0 {
		t.Errorf("a glusterd restart took a brick down in brickfs:\n%s", joinLines(lines))
	}
}

// holdPort listens on host:port and closes every connection it accepts,
// until the returned listener is closed.
func holdPort(t *testing.T, host string, port int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("hold the dead brick's port %s:%d: %v", host, port, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

func joinLines(ls []string) string {
	out := ""
	for _, l := range ls {
		out += l + "\n"
	}
	return out
}

// repFreeze is how long TestReplicaFreezeBrick keeps a brick's filesystem
// frozen: longer than the fop timeout and than the brick's own health
// check timeout (storage.health-check-timeout, 20 s).
const repFreeze = 30 * time.Second

// TestReplicaFreezeBrick: brick 2's XFS filesystem is frozen (fsfreeze)
// for repFreeze during a verifying fio run: the brick process stays up and
// answers pings while every write it makes blocks (GlusterFS #1500: the
// native client's writers hang for as long as the freeze lasts). brickfs
// must carry on with the other two, blame brick 2, and have it healed once
// thawed.
func TestReplicaFreezeBrick(t *testing.T) {
	var fss []*BackingFS
	e := newRepEnvFS(t, "rfreeze", Replica3, false, func(c *Cluster) []*BackingFS {
		for n := 1; n <= 3; n++ {
			fss = append(fss, c.MakeFS(t, n, "xfs", 512))
		}
		return fss
	})
	fs := fss[2]
	file := e.fill("data")
	e.faultRun("freeze", file, repFreeze+8*time.Second, func() {
		start := time.Now()
		e.c.Freeze(t, fs)
		t.Logf("brick 2's filesystem frozen at %s", time.Now().UTC().Format("15:04:05.000"))
		e.requirePending(2)
		holdFault(start, repFreeze)
		e.c.Thaw(t, fs)
	})
	// What carried the writes through: brick 2 left behind for lagging,
	// not dropped at the fop timeout.
	lagged := false
	for _, l := range LogLines(e.c.MountLog(e.mnt), "lagging behind its peers") {
		lagged = lagged || strings.Contains(l, e.vol+"-client-2")
	}
	if !lagged {
		t.Errorf("brickfs never found brick 2 lagging while its filesystem was frozen")
	}
	e.restartIfDown(2)
	e.waitBrickUsed(2, 60*time.Second)
	e.healAndCheck("data")
}

// repFlap is how long TestReplicaFlappingNetwork flaps a node's network.
const repFlap = 2 * time.Minute

// TestReplicaFlappingNetwork: every packet of brick 2's node is dropped
// and let through again every 2 s for repFlap under a verifying fio run:
// no error, no verify mismatch; the mount's goroutines, fds and memory do
// not grow with the number of flaps (statedumps before and after); the
// heal drains at the end.
func TestReplicaFlappingNetwork(t *testing.T) {
	dumps := t.TempDir()
	e := newRepEnv(t, "rflap", Replica3, "statedump-dir="+dumps)
	file := e.fill("data")
	before := e.c.Statedump(t, e.mnt, dumps)
	flaps := 0
	e.faultRun("flap", file, repFlap+10*time.Second, func() {
		end := time.Now().Add(repFlap)
		for time.Now().Before(end) {
			e.c.DropHost(t, 3)
			time.Sleep(2 * time.Second)
			e.c.UndropHost(t, 3)
			time.Sleep(2 * time.Second)
			flaps++
		}
	})
	t.Logf("%d flaps", flaps)
	during := e.c.Statedump(t, e.mnt, dumps)
	e.waitBrickUsed(2, 60*time.Second)
	e.healAndCheck("data")
	after := e.c.Statedump(t, e.mnt, dumps)
	// A leak of one goroutine or fd per flap (30 of them) or per
	// reconnect shows; what a live mount keeps in flight does not.
	if g := after["goroutines"]; g > before["goroutines"]+25 {
		t.Errorf("goroutines grew from %d to %d (%d after the flaps) over %d flaps", before["goroutines"], g, during["goroutines"], flaps)
	}
	if f := after["fds"]; f > before["fds"]+10 {
		t.Errorf("open fds grew from %d to %d (%d after the flaps) over %d flaps", before["fds"], f, during["fds"], flaps)
	}
	if r := after["rss_kib"]; r > 2*before["rss_kib"]+64<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB (%d after the flaps) over %d flaps", before["rss_kib"], r, during["rss_kib"], flaps)
	}
}

// TestReplicaAllGlusterdsDown: every glusterd stops while fio verifies,
// and brick 0 crashes while none is up: the mount goes on with the
// bricks it has (no glusterd is asked for anything while they run; a
// brick cannot start again without one, it fetches its volfile there).
// The glusterds come back, brick 0 is started again on a new port (its
// old one is held), and brickfs finds it there by itself.
func TestReplicaAllGlusterdsDown(t *testing.T) {
	e := newRepEnv(t, "rgdown", Replica3)
	file := e.fill("data")
	e.faultRun("glusterds-down", file, 30*time.Second, func() {
		start := time.Now()
		for n := 1; n <= e.c.Nodes(); n++ {
			e.c.StopGlusterd(t, n)
		}
		t.Logf("every glusterd stopped in %v", time.Since(start).Round(time.Millisecond))
		old := e.c.KillBrick(t, e.vol, 0)
		e.requirePending(0)
		hold := holdPort(t, old.Host, old.Port)
		holdFault(start, 8*time.Second)
		for n := 1; n <= e.c.Nodes(); n++ {
			e.c.StartGlusterd(t, n)
		}
		nb := e.c.RestartBrick(t, e.vol, 0)
		hold.Close()
		if nb.Port == old.Port {
			t.Fatalf("brick 0 came back on its old port %d although it was held", nb.Port)
		}
		t.Logf("brick 0 moved from port %d to %d while no glusterd ran", old.Port, nb.Port)
		t.Logf("RECONNECT glusterds-down=%.2fs", e.waitBrickUsed(0, 60*time.Second).Seconds())
	})
	e.healAndCheck("data")
}
