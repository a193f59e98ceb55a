package integration

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// These tests change the volume while brickfs has it mounted; brickfs
// follows glusterd's volfile change notices (FETCHSPEC) as the native
// client does, without a remount.

// TestReplicaReplaceBrick: `gluster volume replace-brick ... commit force`
// moves brick 2 to a new, empty directory while fio writes with
// verification. brickfs must reconnect to the new brick by itself and use
// it, and after the self-heal daemon's full heal the three backends hold
// the same data.
func TestReplicaReplaceBrick(t *testing.T) {
	e := newRepEnv(t, "rrepl", Replica3)
	file := e.fill("data")
	e.faultRun("replace", file, repFioRun, func() {
		e.c.ReplaceBrick(t, e.vol, 2)
		t.Logf("REPLACED: brickfs writes to the new brick %v after the replace-brick",
			e.waitBrickUsed(2, 30*time.Second).Round(time.Millisecond))
	})
	if lines := LogLines(e.c.MountLog(e.mnt), "moved from"); len(lines) == 0 {
		t.Error("brickfs did not log the brick's move")
	}
	e.healAndCheck("data")
}

// TestReplicaQuorumFollowsVolfile: client quorum set with `gluster volume
// set` while mounted takes effect at once: with quorum-count 3 a write
// with one brick down fails with AFR's ENOTCONN; back to auto, it
// succeeds again.
func TestReplicaQuorumFollowsVolfile(t *testing.T) {
	e := newRepEnv(t, "rqvol", Replica3)
	path := filepath.Join(e.mnt, "q")
	write := func(s string) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = f.WriteAt([]byte(s), 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	if err := write("all up"); err != nil {
		t.Fatal(err)
	}
	applied := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, "brickfs to apply "+what, func() (bool, string) {
			return len(LogLines(e.c.MountLog(e.mnt), what)) > 0, ""
		})
	}
	e.c.Set(t, e.vol, "cluster.quorum-type", "fixed")
	e.c.Set(t, e.vol, "cluster.quorum-count", "3")
	applied("fixed at 3 of 3")
	e.c.KillBrick(t, e.vol, 2)
	if err := write("two up"); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("write with 2 of 3 bricks and quorum-count 3: %v, want ENOTCONN", err)
	}
	e.c.Set(t, e.vol, "cluster.quorum-type", "auto")
	applied("auto (2 of 3)")
	if err := write("two up, auto"); err != nil {
		t.Fatalf("write with 2 of 3 bricks and auto quorum: %v", err)
	}
	e.c.RestartBrick(t, e.vol, 2)
	e.waitBrickUsed(2, 30*time.Second)
	e.c.WaitHealed(t, e.vol, []string{"q"}, repHealWait)
	e.c.CheckBackends(t, e.vol, e.kind, "q", e.mnt)
	if got, err := os.ReadFile(path); err != nil || string(got) != "two up, auto" {
		t.Errorf("q after heal: %q, %v", got, err)
	}
}
