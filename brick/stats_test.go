package brick

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
)

// A client's figures follow what happened on the wire: calls, bytes,
// errors, in-flight calls, the ping round trip, a lost connection (last
// error and when) and the reconnect after it.
func TestClientStats(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	hold := make(chan struct{})
	var held atomic.Bool
	held.Store(true)
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply {
		if held.Load() {
			return bricktest.Reply{Body: statReply(c), Hold: hold}
		}
		return bricktest.OK(statReply(c))
	})
	fk.Handle(opAccess, fixed(bricktest.CommonRsp(-1, int32(syscall.EACCES))))
	c := startClient(t, fk, func(cfg *Config) { cfg.PingInterval = 20 * time.Millisecond })
	before := time.Now()
	s := c.Stats()
	if !s.Connected || s.Port != fk.BrickPort() || s.Host != fk.Host() || s.Path != fk.BrickPath() || s.Since.IsZero() || s.Reconnects != 0 {
		t.Fatalf("after start: %+v", s)
	}
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() { _, _, err := c.Stat(ctx, gfidN(1), nil); done <- err }()
	waitFor(t, 5*time.Second, "a STAT in flight", func() bool { s := c.Stats(); return s.Inflight == 1 && s.Pending >= 1 })
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	held.Store(false)
	if _, err := c.Access(ctx, gfidN(2), 4, nil); Errno(err) != syscall.EACCES {
		t.Fatalf("access: %v", err)
	}
	waitFor(t, 5*time.Second, "a ping answered", func() bool { return c.Stats().PingRTT > 0 })
	s = c.Stats()
	if s.Calls != 2 || s.Errors != 1 || s.BytesSent == 0 || s.BytesReceived == 0 || s.Inflight != 0 {
		t.Fatalf("after a STAT and a failed ACCESS: %+v", s)
	}
	fk.DropConnections()
	waitFor(t, 5*time.Second, "the reconnect", func() bool { s := c.Stats(); return s.Reconnects == 1 && s.Connected })
	s = c.Stats()
	if s.Disconnects != 1 || s.LastError == "" || s.LastErrorAt.Before(before) || !s.Since.After(s.LastErrorAt.Add(-time.Millisecond)) {
		t.Fatalf("after the reconnect: %+v", s)
	}
}

// A brick that is down shows no ping round trip: the last one was of a
// connection that is gone.
func TestClientStatsPingResetOnDisconnect(t *testing.T) {
	var s clientStats
	s.connected(49152)
	s.pingRTT.Store(int64(300 * time.Microsecond))
	s.disconnected()
	if rtt := s.pingRTT.Load(); rtt != 0 {
		t.Errorf("ping RTT after a disconnect: %v, want 0", time.Duration(rtt))
	}
}
