package bricktest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/xdr"
)

func dial(t *testing.T, addr string) *sunrpc.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := sunrpc.Dial(ctx, addr, 1, sunrpc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var cred = sunrpc.CredV2(0, 0, 0, nil, []byte{0, 0, 0, 0})

func TestFakeBehavesLikeABrick(t *testing.T) {
	f := New(t, Options{})
	ctx := context.Background()

	gd := dial(t, f.Addr(f.GlusterdPort()))
	e := xdr.NewEncoder(32)
	e.String(f.BrickPath())
	body, err := gd.Call(ctx, ProgPortmap, 1, ProcPortByBrick, cred, e.B, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := xdr.NewDecoder(body)
	if ret, _, _, port := d.Int32(), d.Int32(), d.Int32(), d.Int32(); ret != 0 || int(port) != f.BrickPort() {
		t.Fatalf("PORTBYBRICK = %d %d", ret, port)
	}
	e = xdr.NewEncoder(32)
	e.String("/other")
	body, _ = gd.Call(ctx, ProgPortmap, 1, ProcPortByBrick, cred, e.B, nil)
	if ret := xdr.NewDecoder(body).Int32(); ret != -1 {
		t.Fatalf("unknown brick answered %d", ret)
	}

	b := dial(t, f.Addr(f.BrickPort()))
	// A fop before SETVOLUME is GARBAGE_ARGS, as on a 10.3 brick.
	_, err = b.Call(ctx, ProgFOP, VersFOP, ProcFlush, cred, make([]byte, 36), nil)
	var re *sunrpc.RPCError
	if !errors.As(err, &re) || re.Stat != GarbageArgs {
		t.Fatalf("fop before SETVOLUME: %v", err)
	}
	e = xdr.NewEncoder(64)
	e.Opaque(xdr.OldDict{}.Set("process-uuid", "x").Marshal())
	body, err = b.Call(ctx, ProgHandshake, 2, ProcSetVolume, cred, e.B, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ret := xdr.NewDecoder(body).Int32(); ret != 0 {
		t.Fatalf("SETVOLUME = %d", ret)
	}
	if _, err = b.Call(ctx, ProgFOP, VersFOP, ProcFlush, cred, make([]byte, 36), nil); err != nil {
		t.Fatal(err)
	}
	// No handler: PROC_UNAVAIL.
	if _, err = b.Call(ctx, ProgFOP, VersFOP, 1, cred, nil, nil); !errors.As(err, &re) || re.Stat != ProcUnavail {
		t.Fatalf("unhandled fop: %v", err)
	}
	if len(f.FopCalls(ProcFlush)) != 2 {
		t.Fatalf("recorded %d FLUSH calls", len(f.FopCalls(ProcFlush)))
	}

	old := f.BrickPort()
	f.Restart()
	if f.BrickPort() == old || f.Restarts() != 1 {
		t.Fatal("restart kept the port")
	}
	<-b.Done()
	b2 := dial(t, f.Addr(f.BrickPort()))
	if _, err := b2.Call(ctx, ProgDump, 1, ProcPing, cred, nil, nil); err != nil {
		t.Fatal(err)
	}
}
