package failover

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/volfile"
)

// A volfile server that accepts and hangs up at once (glusterd shutting
// down, or at its connection limit) is retried with backoff, not in a
// tight loop, and Follow returns promptly when its context ends.
func TestFollowBacksOffFromServersThatHangUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepts atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	v := &Volume{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Follow(ctx, []volfile.Server{{Host: "127.0.0.1", Port: port}}, "v", nil, FollowOptions{Check: time.Second, Retry: time.Second}, zaptest.NewLogger(t))
	}()
	time.Sleep(2500 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Follow did not return after its context ended")
	}
	// One attempt at once, then one a second: 3 or 4 in 2.5 s.
	if n := accepts.Load(); n < 2 || n > 5 {
		t.Errorf("%d connections in 2.5 s to a server that hangs up; want a retry about every second", n)
	}
}
