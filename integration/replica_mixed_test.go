package integration

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReplicaNativeAndBrickfs: GlusterFS's own client and brickfs write
// different files of one replica-3 volume at the same time; afterwards each
// file reads back the same through both mounts and on every brick.
func TestReplicaNativeAndBrickfs(t *testing.T) {
	e := newRepEnv(t, "rmixed", Replica3)
	native := e.c.MountNative(t, e.vol)
	e.fill("from-brickfs")
	if r := FioFill(context.Background(), filepath.Join(native, "from-native"), repFileSize); !r.Clean() {
		t.Fatalf("fill through the native mount: %v\n%s", r, r.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jobs := map[string]Fio{
		"brickfs": {Name: "b", File: filepath.Join(e.mnt, "from-brickfs"), Size: repFileSize, RW: "randwrite", IODepth: 4, Runtime: 15 * time.Second, Verify: true},
		"native":  {Name: "n", File: filepath.Join(native, "from-native"), Size: repFileSize, RW: "randwrite", IODepth: 4, Runtime: 15 * time.Second, Verify: true},
	}
	var mu sync.Mutex
	res := map[string]FioResult{}
	var wg sync.WaitGroup
	for who, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := j.Run(ctx, t.TempDir())
			mu.Lock()
			res[who] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	for who, r := range res {
		t.Logf("STALL mixed-%s=%.2fs (%d writes)", who, r.MaxStall().Seconds(), r.WriteIOs)
		if !r.Clean() || r.WriteIOs == 0 {
			t.Errorf("fio on the %s mount: %v\n%s", who, r, r.Stderr)
		}
	}
	files := []string{"from-brickfs", "from-native"}
	t.Logf("healed in %v", e.c.WaitHealed(t, e.vol, files, repHealWait).Round(time.Millisecond))
	for _, f := range files {
		for _, m := range []string{e.mnt, native} {
			if r := FioCheck(ctx, filepath.Join(m, f), repFileSize); !r.Clean() {
				t.Errorf("verify %s through %s: %v\n%s", f, m, r, r.Stderr)
			}
		}
		e.c.CheckBackends(t, e.vol, e.kind, f, e.mnt, native)
	}
}

// TestReplicaSharedFile: brickfs and GlusterFS's own client write two
// halves of one file at the same time, brickfs at queue depth 16 (a stream
// that keeps its eager lock busy without a gap). Each time the native
// client waits for the file's lock, the bricks say so in brickfs's write
// replies and brickfs hands the lock over: both make progress, nothing is
// taken for a failed brick, each half reads back through the other mount,
// and the bricks end identical.
func TestReplicaSharedFile(t *testing.T) {
	e := newRepEnv(t, "rshare", Replica3)
	native := e.c.MountNative(t, e.vol)
	const half = "32M"
	file := "shared"
	// Written whole first (every block with fio's header, for the checks
	// below), so that the two mounts do not race to create it.
	if r := FioFill(context.Background(), filepath.Join(e.mnt, file), "64M"); !r.Clean() {
		t.Fatalf("fill: %v\n%s", r, r.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type job struct {
		mnt    string
		offset string
		depth  int
	}
	jobs := map[string]job{"brickfs": {e.mnt, "0", 16}, "native": {native, half, 4}}
	var mu sync.Mutex
	res := map[string]FioResult{}
	var wg sync.WaitGroup
	for who, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Fio{Name: who, File: filepath.Join(j.mnt, file), Size: half, RW: "randwrite", IODepth: j.depth,
				Runtime: 15 * time.Second, Verify: true, Extra: []string{"--offset=" + j.offset}}.Run(ctx, t.TempDir())
			mu.Lock()
			res[who] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	for who, r := range res {
		t.Logf("STALL shared-%s=%.2fs (%d writes in %v)", who, r.MaxStall().Seconds(), r.WriteIOs, r.Took.Round(time.Millisecond))
		if !r.Clean() || r.WriteIOs == 0 {
			t.Errorf("fio on the %s mount: %v\n%s", who, r, r.Stderr)
		}
	}
	// Liveness, not speed: a client kept from the lock by brickfs's
	// stream would wait for as long as the stream lasts (15 s); one that
	// gets it when it asks waits for a few of brickfs's writes.
	if w := res["native"].MaxWrite; w > 7500*time.Millisecond {
		t.Errorf("a native write waited %v for the file's lock, half of brickfs's whole stream: brickfs did not hand the lock over", w)
	}
	if lines := LogLines(e.c.MountLog(e.mnt), falseFailover...); len(lines) > 0 {
		t.Errorf("brickfs took a healthy brick for a failed one while sharing a file (%d lines):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	// Each half through the mount that did not write it.
	for who, j := range jobs {
		other := native
		if who == "native" {
			other = e.mnt
		}
		r := Fio{Name: "check-" + who, File: filepath.Join(other, file), Size: half, RW: "read", IODepth: 16, Verify: true,
			Extra: []string{"--offset=" + j.offset}}.runAside(ctx)
		if !r.Clean() || r.ReadIOs == 0 {
			t.Errorf("the half %s wrote, read through the other mount: %v\n%s", who, r, r.Stderr)
		}
	}
	t.Logf("healed in %v", e.c.WaitHealed(t, e.vol, []string{file}, repHealWait).Round(time.Millisecond))
	e.c.CheckBackends(t, e.vol, e.kind, file, e.mnt, native)
}

// falseFailover are the brickfs log lines that mean a brick was taken for
// dead, or left behind as lagging (a needless heal).
var falseFailover = []string{"brick stopped answering", "child down", "dropping brick connection", "brick disconnected",
	"lagging behind its peers", "change missed bricks"}

// TestReplicaSaturated: a saturating load (4 jobs at queue depth 32) and no
// fault: a slow but healthy brick must not be taken for a hung one.
func TestReplicaSaturated(t *testing.T) {
	e := newRepEnv(t, "rsat", Replica3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := Fio{Name: "sat", Dir: e.mnt, Size: "64M", RW: "randwrite", IODepth: 32, NumJobs: 4, Runtime: 20 * time.Second}.Run(ctx, t.TempDir())
	t.Logf("STALL saturated=%.2fs (no fault; %d writes in %v)", r.MaxStall().Seconds(), r.WriteIOs, r.Took.Round(time.Millisecond))
	if !r.Clean() || r.WriteIOs == 0 {
		t.Errorf("fio: %v\n%s", r, r.Stderr)
	}
	if lines := LogLines(e.c.MountLog(e.mnt), falseFailover...); len(lines) > 0 {
		t.Errorf("brickfs dropped a healthy brick under load (%d lines):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var files []string
	for i := 0; i < 4; i++ {
		files = append(files, "sat."+string(rune('0'+i))+".0")
	}
	e.c.WaitHealed(t, e.vol, files, repHealWait)
	for _, f := range files {
		e.c.CheckBackends(t, e.vol, e.kind, f, e.mnt)
	}
}

// replicaKindKill runs a plain write/read/verify, then one SIGKILL fault on
// brick victim, on a volume of the given kind.
func replicaKindKill(t *testing.T, vol string, kind Kind, victim int) {
	e := newRepEnv(t, vol, kind)
	file := e.fill("data")
	if r := FioCheck(context.Background(), file, repFileSize); !r.Clean() {
		t.Fatalf("verify after fill: %v\n%s", r, r.Stderr)
	}
	e.c.CheckBackends(t, e.vol, kind, "data", e.mnt)
	e.faultRun("kill-"+vol, file, repFioRun, func() {
		start := time.Now()
		e.c.KillBrick(t, e.vol, victim)
		e.requirePending(victim)
		holdFault(start, 3*time.Second)
		e.c.RestartBrick(t, e.vol, victim)
		t.Logf("RECONNECT kill-%s=%.2fs", vol, e.waitBrickUsed(victim, 30*time.Second).Seconds())
	})
	e.healAndCheck("data")
}

// TestReplicaArbiter: replica 3 arbiter 1; a data brick is killed.
func TestReplicaArbiter(t *testing.T) {
	replicaKindKill(t, "rarb", Replica3Arbiter1, 1)
}

// TestReplica2: replica 2; quorum auto on two bricks is "half including
// child 0", so brick 1 is the one killed.
func TestReplica2(t *testing.T) {
	replicaKindKill(t, "rrep2", Replica2, 1)
}
