package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestSmoke brings up a 3-node cluster with a single-brick and a replica-3
// volume, writes and reads a file through GlusterFS's own FUSE client and
// checks that the file reached the brick with a GFID.
func TestSmoke(t *testing.T) {
	start := time.Now()
	c := NewCluster(t, 3)
	c.CreateVolume(t, "single", Single, 2)
	c.Start(t, "single")
	c.CreateVolume(t, "rep3", Replica3)
	c.Set(t, "rep3", "network.ping-timeout", "5")
	c.Start(t, "rep3")
	t.Logf("cluster and two volumes up in %v", time.Since(start).Round(time.Millisecond))

	// Every brick listens on its own node's address only: that is what
	// keeps the three glusterds' port allocations from colliding.
	for _, vol := range []string{"single", "rep3"} {
		for _, b := range c.Bricks(t, vol) {
			if b.PID == 0 || b.Port == 0 {
				t.Fatalf("brick %s: want a pid and a port", b)
			}
			addrs, err := ListenAddrs(b.Port)
			if err != nil {
				t.Fatal(err)
			}
			want := b.Host + ":" + strconv.Itoa(b.Port)
			if len(addrs) != 1 || addrs[0] != want {
				t.Errorf("brick %s: listening on %v, want only %s", b, addrs, want)
			}
		}
	}
	if out := c.MustGluster(t, 3, "volume", "get", "rep3", "network.ping-timeout"); !regexp.MustCompile(`network\.ping-timeout\s+5`).MatchString(out) {
		t.Errorf("volume set did not take: %s", out)
	}

	mnt := c.MountNative(t, "single")
	want := []byte("hello from brickfs integration\n")
	if err := os.WriteFile(filepath.Join(mnt, "hello.txt"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %q, want %q", got, want)
	}

	b := c.Brick(t, "single", 0)
	onBrick, err := os.ReadFile(filepath.Join(b.Path, "hello.txt"))
	if err != nil || !bytes.Equal(onBrick, want) {
		t.Errorf("brick backend file: %q, %v; want %q", onBrick, err, want)
	}
	gfid, err := Getfattr(filepath.Join(b.Path, "hello.txt"), "trusted.gfid")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^0x[0-9a-f]{32}$`).MatchString(gfid) {
		t.Errorf("trusted.gfid = %q, want 16 bytes", gfid)
	}
	t.Logf("hello.txt on %s has trusted.gfid=%s", b, gfid)
}

// TestFaultHelpers exercises every fault helper once against a replica-3
// volume mounted with the native client, so that later failover tests can
// rely on them.
func TestFaultHelpers(t *testing.T) {
	c := NewCluster(t, 3)
	c.CreateVolume(t, "rep3", Replica3)
	c.Set(t, "rep3", "network.ping-timeout", "3")
	c.Start(t, "rep3")
	mnt := c.MountNative(t, "rep3")
	write := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(mnt, name), []byte(name), 0o644); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	write("before")

	// Crash and restart a brick: the mount keeps working on two.
	old := c.KillBrick(t, "rep3", 0)
	if Listening(old.Host, old.Port, time.Second) {
		t.Errorf("killed brick %s still accepts connections", old)
	}
	write("one-down")
	nb := c.RestartBrick(t, "rep3", 0)
	if nb.PID == 0 || nb.PID == old.PID {
		t.Errorf("restarted brick has pid %d, old pid %d", nb.PID, old.PID)
	}
	if !Listening(nb.Host, nb.Port, time.Second) {
		t.Errorf("restarted brick %s does not accept connections", nb)
	}

	// Hang a brick and resume it.
	c.StopBrick(t, "rep3", 1)
	if s := procState(c.Brick(t, "rep3", 1).PID); s != 'T' {
		t.Errorf("stopped brick in state %q", s)
	}
	c.ContBrick(t, "rep3", 1)
	if s := procState(c.Brick(t, "rep3", 1).PID); s == 'T' {
		t.Errorf("resumed brick still stopped")
	}

	// Silence a host: its glusterd port stops answering, then answers again.
	c.DropHost(t, 3)
	if Listening(c.Host(3), 24007, time.Second) {
		t.Errorf("dropped host %s still answers on 24007", c.Host(3))
	}
	c.UndropHost(t, 3)
	if !Listening(c.Host(3), 24007, 5*time.Second) {
		t.Errorf("undropped host %s does not answer on 24007", c.Host(3))
	}

	// Restart a glusterd: it rejoins the pool; bricks stay up.
	c.RestartGlusterd(t, 2)
	write("after")
	for _, name := range []string{"before", "one-down", "after"} {
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || string(got) != name {
			t.Errorf("read %s: %q, %v", name, got, err)
		}
	}

	// A brick dropped behind DropHost at the end is cleaned up by teardown.
	c.DropHost(t, 1)
	c.StopBrick(t, "rep3", 2)
}
