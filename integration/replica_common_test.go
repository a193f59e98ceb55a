package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The TestReplica* tests each bring up a cluster of their own: their faults
// (dropped hosts, restarted glusterds, killed bricks) would disturb any test
// sharing it. Each runs fio with verification on a brickfs mount while a
// fault happens, then clears the fault, waits for the self-heal daemon and
// checks that every brick holds the same data the mount reads.
//
// The longest single I/O during each fault is logged as "STALL name=1.23s"
// and never asserted: machines are noisy. Only correctness is asserted.

// Sizes and durations of the replica tests.
const (
	repFileSize   = "32M"
	repFioRun     = 16 * time.Second // one fio run with a fault in it
	repFaultAfter = 3 * time.Second  // fio runs this long before the fault
	repHold       = 8 * time.Second  // a hang (SIGSTOP, dropped host) lasts this long
	repHealWait   = 2 * time.Minute
)

// repEnv is one replica test's cluster, volume and brickfs mount.
type repEnv struct {
	t    *testing.T
	c    *Cluster
	vol  string
	kind Kind
	mnt  string // brickfs mount
	// sharded: the volume runs `group virt` with 4 MB blocks, so a file
	// is its base file plus blocks in .shard.
	sharded bool
}

// newRepEnv brings up a 3-node cluster with volume vol of the given kind,
// started, and mounts it with brickfs.
func newRepEnv(t *testing.T, vol string, kind Kind, mountOpts ...string) *repEnv {
	t.Helper()
	return newRepEnvWith(t, vol, kind, false, mountOpts...)
}

// newShardEnv is newRepEnv for a sharded volume (`group virt`, 4 MB
// blocks: the test file spans 8 of them).
func newShardEnv(t *testing.T, vol string, kind Kind, mountOpts ...string) *repEnv {
	t.Helper()
	return newRepEnvWith(t, vol, kind, true, mountOpts...)
}

func newRepEnvWith(t *testing.T, vol string, kind Kind, sharded bool, mountOpts ...string) *repEnv {
	t.Helper()
	return newRepEnvFS(t, vol, kind, sharded, nil, mountOpts...)
}

// newRepEnvFS is newRepEnvWith with brick i on filesystem i of fss, made
// by make (one per node) when fss is non-nil.
func newRepEnvFS(t *testing.T, vol string, kind Kind, sharded bool, fss func(c *Cluster) []*BackingFS, mountOpts ...string) *repEnv {
	t.Helper()
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	if _, err := os.Stat("/usr/bin/fio"); err != nil {
		need(t, false, bothEnvs, "fio not installed; install fio (bash scripts/deps.sh)")
	}
	return newRepEnvOn(t, NewCluster(t, 3), vol, kind, sharded, fss, mountOpts...)
}

// newRepEnvOn is newRepEnvFS on cluster c, made by the caller.
func newRepEnvOn(t *testing.T, c *Cluster, vol string, kind Kind, sharded bool, fss func(c *Cluster) []*BackingFS, mountOpts ...string) *repEnv {
	t.Helper()
	if fss != nil {
		c.CreateVolumeOn(t, vol, kind, fss(c)...)
	} else {
		c.CreateVolume(t, vol, kind)
	}
	if sharded {
		c.ShardVolume(t, vol, "4MB")
	}
	c.Start(t, vol)
	e := &repEnv{t: t, c: c, vol: vol, kind: kind, sharded: sharded}
	e.mnt = c.MountBrickfs(t, c.Spec(vol), mountOpts...)
	t.Cleanup(func() {
		if t.Failed() {
			repDumpLog(t, c, e.mnt)
		}
		// BRICKFS_REPLICA_LOGS=DIR keeps every brickfs log of these tests.
		if dir := os.Getenv("BRICKFS_REPLICA_LOGS"); dir != "" {
			if b, err := os.ReadFile(c.MountLog(e.mnt)); err == nil && os.MkdirAll(dir, 0o755) == nil {
				os.WriteFile(filepath.Join(dir, t.Name()+".log"), b, 0o644)
			}
		}
	})
	return e
}

// repDumpLog prints the brickfs log's warnings and errors (the harness
// prints only its tail).
func repDumpLog(t *testing.T, c *Cluster, mnt string) {
	log := c.MountLog(mnt)
	if log == "" {
		return
	}
	lines := LogLines(log, `"level":"warn"`, `"level":"error"`, "WARN", "ERROR")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	t.Logf("brickfs log %s, warnings and errors (last %d):\n%s", log, len(lines), strings.Join(lines, "\n"))
}

// fill writes the test file with fio's verify headers through the mount.
func (e *repEnv) fill(name string) string {
	e.t.Helper()
	path := filepath.Join(e.mnt, name)
	if r := FioFill(context.Background(), path, repFileSize); !r.Clean() {
		e.t.Fatalf("fill %s: %v\n%s", name, r, r.Stderr)
	}
	return path
}

// faultRun runs a verifying fio randwrite on the file for runtime and calls
// fault (in the test goroutine) after repFaultAfter. It fails the test
// unless fio was clean, and returns fio's result.
func (e *repEnv) faultRun(name, file string, runtime time.Duration, fault func()) FioResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runtime+3*time.Minute)
	defer cancel()
	job := Fio{Name: "rw-" + name, File: file, Size: repFileSize, RW: "randwrite", IODepth: 4, Runtime: runtime, Verify: true}
	done := make(chan FioResult, 1)
	go func() { done <- job.Run(ctx, filepath.Dir(file)) }()
	select {
	case r := <-done:
		e.t.Fatalf("fio ended before the fault: %v\n%s", r, r.Stderr)
	case <-time.After(repFaultAfter):
	}
	start := time.Now()
	fault()
	e.t.Logf("fault %q and its recovery took %v", name, time.Since(start).Round(time.Millisecond))
	r := <-done
	e.t.Logf("STALL %s=%.2fs (max write %v, max verify read %v, %d writes, %d verify reads)",
		name, r.MaxStall().Seconds(), r.MaxWrite.Round(time.Millisecond), r.MaxRead.Round(time.Millisecond), r.WriteIOs, r.ReadIOs)
	if !r.Clean() {
		e.t.Errorf("fio during fault %q: %v\n%s", name, r, r.Stderr)
	}
	if r.WriteIOs == 0 {
		e.t.Errorf("fio during fault %q wrote nothing", name)
	}
	return r
}

// healAndCheck waits until the bricks have nothing left to heal, then
// checks every block of the files with fio and compares the backends.
func (e *repEnv) healAndCheck(names ...string) {
	e.t.Helper()
	took := e.c.WaitHealed(e.t, e.vol, e.files(names...), repHealWait)
	e.t.Logf("healed in %v", took.Round(time.Millisecond))
	for _, n := range names {
		if r := FioCheck(context.Background(), filepath.Join(e.mnt, n), repFileSize); !r.Clean() {
			e.t.Errorf("verify %s after heal: %v\n%s", n, r, r.Stderr)
		}
		if e.sharded {
			e.c.CheckShardBackends(e.t, e.vol, e.kind, n, e.mnt)
		} else {
			e.c.CheckBackends(e.t, e.vol, e.kind, n, e.mnt)
		}
	}
}

// files lists what the bricks hold of names: on a sharded volume also
// .shard and every block of them.
func (e *repEnv) files(names ...string) []string {
	if !e.sharded {
		return names
	}
	return e.c.ShardFiles(e.t, e.vol, names...)
}

// waitBrickUsed waits until brickfs writes to brick i again: a new file
// created through the mount appears on that brick's backend with no
// pending marks against it. It returns how long that took.
func (e *repEnv) waitBrickUsed(i int, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	b := e.c.Brick(e.t, e.vol, i)
	n := 0
	waitFor(e.t, timeout, fmt.Sprintf("brickfs to use brick %d again", i), func() (bool, string) {
		n++
		name := fmt.Sprintf("probe-%d-%d", i, n)
		if err := os.WriteFile(filepath.Join(e.mnt, name), []byte(name), 0o644); err != nil {
			return false, fmt.Sprintf("write %s: %v", name, err)
		}
		got, err := os.ReadFile(filepath.Join(b.Path, name))
		if err != nil || string(got) != name {
			return false, fmt.Sprintf("%s on brick %d: %q, %v", name, i, got, err)
		}
		return true, ""
	})
	d := time.Since(start)
	e.t.Logf("brickfs wrote to brick %d again %v after it was back", i, d.Round(time.Millisecond))
	return d
}

// requirePending waits until a surviving brick blames brick i
// (trusted.afr.VOL-client-I non-zero on the file) and fails the test if
// none does within 30 s: writes made while it is down must be marked for
// heal, or shd would never copy them.
func (e *repEnv) requirePending(i int) {
	e.t.Helper()
	e.requirePendingOn(i, "data")
}

// requirePendingOn is requirePending on the named files.
func (e *repEnv) requirePendingOn(i int, names ...string) {
	e.t.Helper()
	key := fmt.Sprintf("trusted.afr.%s-client-%d", e.vol, i)
	waitFor(e.t, 30*time.Second, fmt.Sprintf("a surviving brick to blame brick %d (%s) while fio writes", i, key), func() (bool, string) {
		for _, b := range e.c.Bricks(e.t, e.vol) {
			if b.Index == i {
				continue
			}
			for _, f := range e.files(names...) {
				if st, err := AFRState(filepath.Join(b.Path, f)); err == nil && !hexZero(st[key]) {
					e.t.Logf("while brick %d is down, brick %d blames it on %s: %s=%s", i, b.Index, f, key, st[key])
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("pending state: %v", e.c.PendingHeal(e.t, e.vol, nil))
	})
}

// holdFault keeps a fault on for d from start, whatever the checks during
// it took: the length of a fault is part of the scenario.
func holdFault(start time.Time, d time.Duration) {
	time.Sleep(time.Until(start.Add(d)))
}

// requireHealInfoPending checks that `gluster volume heal VOL info`
// (HealInfo) shows brick i as not connected and entries to heal on every
// other brick: what brickfs marked while i was down is in the indices the
// self-heal daemon and heal info read. Only for a crashed brick: glfsheal
// would wait on a hung one.
func (e *repEnv) requireHealInfoPending(i int) {
	e.t.Helper()
	n := 1
	for _, b := range e.c.Bricks(e.t, e.vol) {
		if b.Index != i {
			n = b.Node
			break
		}
	}
	info, err := e.c.HealInfo(n, e.vol)
	if err != nil {
		e.t.Errorf("heal info while brick %d is down: %v", i, err)
		return
	}
	bricks := e.c.Bricks(e.t, e.vol)
	if len(info) != len(bricks) {
		e.t.Errorf("heal info lists %d bricks, the volume has %d: %+v", len(info), len(bricks), info)
		return
	}
	for _, b := range bricks {
		h := info[b.Index]
		switch {
		case b.Index == i && h.Status == "Connected":
			e.t.Errorf("heal info: brick %d is down but shows as connected: %+v", i, h)
		case b.Index != i && (h.Status != "Connected" || h.Entries < 1):
			e.t.Errorf("heal info: brick %d is up and should list what brick %d missed: %+v", b.Index, i, h)
		}
	}
	e.t.Logf("heal info while brick %d is down: %+v", i, info)
}

// restartIfDown restarts brick i if its process is gone: a brick whose
// filesystem stayed frozen past storage.health-check-timeout stops itself
// (posix's health check), as GlusterFS bricks do.
func (e *repEnv) restartIfDown(i int) {
	e.t.Helper()
	if b := e.c.Brick(e.t, e.vol, i); b.PID > 0 {
		e.t.Logf("brick %d (pid %d) is still running", i, b.PID)
		return
	}
	e.t.Logf("brick %d stopped itself (health check); restarting it", i)
	e.c.RestartBrick(e.t, e.vol, i)
}
