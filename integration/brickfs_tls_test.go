package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
)

// TestBrickfsTLS: a replica-3 volume with client.ssl and server.ssl on
// (the bricks speak only TLS and check the client's certificate). brickfs
// mounts it, writes and reads, fails over when a brick is killed and
// reconnects over TLS when it returns; the native client reads the same
// bytes, and the backends match after heal.
func TestBrickfsTLS(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	c := NewCluster(t, 3)
	const vol = "rtls"
	c.CreateVolume(t, vol, Replica3)
	cert, key, ca, err := bricktest.TLSFiles(filepath.Join(c.Dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{
		{"ssl.own-cert", cert}, {"ssl.private-key", key}, {"ssl.ca-list", ca},
		{"auth.ssl-allow", "*"}, {"client.ssl", "on"}, {"server.ssl", "on"},
	} {
		c.Set(t, vol, kv[0], kv[1])
	}
	c.Start(t, vol)
	mnt := c.MountBrickfs(t, c.Spec(vol))
	content := []byte(strings.Repeat("over TLS\n", 1000))
	if err := os.WriteFile(filepath.Join(mnt, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	c.KillBrick(t, vol, 1)
	if err := os.WriteFile(filepath.Join(mnt, "g"), content, 0o644); err != nil {
		t.Fatalf("write with a brick down: %v", err)
	}
	c.RestartBrick(t, vol, 1)
	waitFor(t, 30*time.Second, "brickfs to reconnect to brick 1 over TLS", func() (bool, string) {
		lines := LogLines(c.MountLog(mnt), "brick connected")
		n := 0
		for _, l := range lines {
			if strings.Contains(l, vol+"-client-1") {
				n++
			}
		}
		return n >= 2, ""
	})
	c.WaitHealed(t, vol, []string{"f", "g"}, repHealWait)
	native := c.MountNative(t, vol)
	for _, f := range []string{"f", "g"} {
		c.CheckBackends(t, vol, Replica3, f, mnt, native)
	}
	// A handshake cut by the killed brick (refused, reset, EOF) is
	// expected; one refused by TLS itself (certificate, version, alert)
	// is not.
	for _, l := range LogLines(c.MountLog(mnt), "TLS handshake with") {
		if !cutByPeer.MatchString(l) {
			t.Errorf("TLS refused a handshake: %s", l)
		}
	}
}

// cutByPeer matches a connection error that comes from the peer going
// away rather than from TLS.
var cutByPeer = regexp.MustCompile(`connection reset by peer|connection refused|broken pipe|: EOF`)
