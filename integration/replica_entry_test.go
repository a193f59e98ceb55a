package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReplicaRmdirDisagreement: brick 0 loses an entry of a directory
// behind GlusterFS's back (as a disk repair might), so when brickfs
// removes the directory the two other bricks refuse with ENOTEMPTY while
// brick 0 removes it. brickfs must answer ENOTEMPTY, have the two blame
// brick 0 on the parent, and heal the directory and the entry back onto
// brick 0 by itself: identical backends and heal info at zero.
func TestReplicaRmdirDisagreement(t *testing.T) {
	e := newRepEnv(t, "rrmdir", Replica3)
	dir := filepath.Join(e.mnt, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := []byte("kept by two bricks of three\n")
	if err := os.WriteFile(filepath.Join(dir, "kept"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	b0 := e.c.Brick(t, e.vol, 0)
	removeBackendEntry(t, b0.Path, "d/kept")

	err := syscall.Rmdir(dir)
	if !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a directory two bricks of three hold entries in: %v, want ENOTEMPTY", err)
	}
	// Right after the refusal the parent blames brick 0 on the two others.
	key := fmt.Sprintf("trusted.afr.%s-client-0", e.vol)
	for _, b := range e.c.Bricks(t, e.vol)[1:] {
		st, err := AFRState(b.Path)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("brick %d root after the refused rmdir: %v", b.Index, st)
	}
	// brickfs heals this itself: the self-heal daemon is not told (its
	// next index crawl is minutes away), so nothing triggers it here.
	files := []string{"", "d", "d/kept"}
	start := time.Now()
	waitFor(t, 30*time.Second, "brickfs to heal the refused rmdir", func() (bool, string) {
		why := e.c.PendingHeal(t, e.vol, files)
		return len(why) == 0, strings.Join(why, "; ")
	})
	t.Logf("brickfs healed it in %v", time.Since(start).Round(time.Millisecond))
	// The log line follows the heal's last xattrop: wait for it rather
	// than race it (a loaded machine wrote it after the check once).
	waitFor(t, 10*time.Second, "brickfs to log its entry heal", func() (bool, string) {
		return len(LogLines(e.c.MountLog(e.mnt), "directory healed")) > 0, "no \"directory healed\" in the mount log"
	})
	e.c.WaitHealed(t, e.vol, files, repHealWait) // and heal info is at zero

	var gfids []string
	for _, b := range e.c.Bricks(t, e.vol) {
		g, err := Getfattr(filepath.Join(b.Path, "d"), "trusted.gfid")
		if err != nil {
			t.Errorf("d on brick %d after heal: %v", b.Index, err)
			continue
		}
		gfids = append(gfids, g)
	}
	if len(gfids) == 3 && (gfids[0] != gfids[1] || gfids[1] != gfids[2]) {
		t.Errorf("d has gfids %v on the three bricks after heal, want one", gfids)
	}
	e.c.CheckBackends(t, e.vol, e.kind, "d/kept", e.mnt)
	got, err := os.ReadFile(filepath.Join(dir, "kept"))
	if err != nil || string(got) != string(content) {
		t.Errorf("d/kept through brickfs after heal: %q, %v", got, err)
	}
	if lines := LogLines(e.c.MountLog(e.mnt), "the bricks that refused it mark the others"); len(lines) == 0 {
		t.Errorf("brickfs did not log the refused rmdir's marks (key %s)", key)
	}
}

// removeBackendEntry deletes a file from a brick's backend together with
// its gfid handle under .glusterfs, as if the brick had lost it.
func removeBackendEntry(t *testing.T, brickPath, rel string) {
	t.Helper()
	p := filepath.Join(brickPath, rel)
	g, err := Getfattr(p, "trusted.gfid")
	if err != nil {
		t.Fatal(err)
	}
	h := strings.TrimPrefix(g, "0x")
	if len(h) != 32 {
		t.Fatalf("trusted.gfid of %s is %q", p, g)
	}
	uuid := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	handle := filepath.Join(brickPath, ".glusterfs", h[0:2], h[2:4], uuid)
	for _, f := range []string{p, handle} {
		if err := os.Remove(f); err != nil {
			t.Fatalf("remove %s from the backend: %v", f, err)
		}
	}
}
