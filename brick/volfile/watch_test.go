package volfile

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// A volfile server that accepts and hangs up at once (glusterd shutting
// down, or at its connection limit) is retried with backoff, not in a
// tight loop, and Watch returns promptly when its context ends.
func TestFollowBacksOffFromServersThatHangUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const retry = 100 * time.Millisecond
	accepted := make(chan time.Time, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- time.Now():
			default:
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, []Server{{Host: "127.0.0.1", Port: port}}, "v", nil, WatchOptions{Check: time.Second, Retry: retry}, zaptest.NewLogger(t),
			func([]byte) ([]string, error) { t.Error("no volfile was served, yet one was applied"); return nil, nil })
	}()
	// Five connections: the retries between them must be spaced by the
	// backoff (a tight loop made thousands a second). Only a lower bound:
	// a slow machine makes them later, never sooner.
	var at []time.Time
	for len(at) < 5 {
		select {
		case ts := <-accepted:
			at = append(at, ts)
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d connections in 30 s; Watch stopped retrying", len(at))
		}
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < retry*8/10 {
			t.Errorf("connection %d came %v after the one before; want the retry backoff (%v) between them", i+1, gap, retry)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}
