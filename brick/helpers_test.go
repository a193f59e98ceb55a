package brick

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/internal/golden"
	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/xdr"
)

// wire loads a golden record from testdata/wire (see its README.md).
func wire(tb testing.TB, name string) []byte { return golden.Record(tb, name) }

// replyBody is the procedure result of a golden reply record.
func replyBody(tb testing.TB, name string) []byte {
	tb.Helper()
	m, err := sunrpc.ParseMessage(wire(tb, name))
	if err != nil || m.Type != sunrpc.MsgReply || m.Err != nil {
		tb.Fatalf("%s: %v %v", name, err, m.Err)
	}
	return m.Body
}

// callOf splits a golden call record into credential flavor, body and args.
func callOf(tb testing.TB, rec []byte) (flavor uint32, cred, args []byte) {
	tb.Helper()
	d := xdr.NewDecoder(rec)
	for i := 0; i < 6; i++ {
		_ = d.Uint32()
	}
	flavor = d.Uint32()
	cred = d.Opaque(400)
	_ = d.Uint32()
	_ = d.Opaque(400)
	if d.Err() != nil {
		tb.Fatal(d.Err())
	}
	return flavor, cred, d.Remaining()
}

// fastConfig is a Config for the fake with short timers.
func fastConfig(fk *bricktest.Fake) Config {
	return Config{
		Name:            "fake-client-0",
		RemoteHost:      fk.Host(),
		RemotePort:      fk.GlusterdPort(),
		RemoteSubvolume: fk.BrickPath(),
		VolfileKey:      "/fake",
		PingInterval:    time.Second,
		PingTimeout:     5 * time.Second,
		ReconnectMax:    50 * time.Millisecond,
		DialTimeout:     5 * time.Second,
	}
}

// startClient connects a Client to fk; the client is closed in t.Cleanup
// (registered after the fake's, so it runs first).
func startClient(tb testing.TB, fk *bricktest.Fake, mod func(*Config)) *Client {
	tb.Helper()
	cfg := fastConfig(fk)
	if mod != nil {
		mod(&cfg)
	}
	var c *Client
	if t, ok := tb.(*testing.T); ok {
		c = New(cfg, zaptest.NewLogger(t))
	} else {
		c = New(cfg, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func mustGFID(tb testing.TB, s string) xdr.GFID {
	tb.Helper()
	g, err := xdr.ParseGFID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// fixed answers every call with body.
func fixed(body []byte) bricktest.Handler {
	return func(*bricktest.Call) bricktest.Reply { return bricktest.OK(body) }
}
