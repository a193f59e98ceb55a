package brick

import (
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// TestRetargetMovesToAnotherBrick: a brick moved in the volfile
// (replace-brick) is reached at its new glusterd and path; an fd opened
// on the old brick is reopened on the new one by gfid, and nothing more
// goes to the old one.
func TestRetargetMovesToAnotherBrick(t *testing.T) {
	g := gfidN(78)
	st := xdr.Iatt{GFID: g, Ino: g.Ino(), Mode: 0100644, Nlink: 1}
	writes := func(fk *bricktest.Fake) {
		fk.Handle(opOpen, func(*bricktest.Call) bricktest.Reply {
			e := bricktest.Rsp(0, 0)
			e.Int64(9)
			return bricktest.OK(e.B)
		})
		fk.Handle(opWrite, func(c *bricktest.Call) bricktest.Reply {
			return bricktest.OK(bricktest.IattRsp(int32(len(c.Args)-52), 0, 2, &st))
		})
	}
	oldFk := bricktest.New(t, bricktest.Options{BrickPath: "/bricks/old"})
	newFk := bricktest.New(t, bricktest.Options{BrickPath: "/bricks/new"})
	writes(oldFk)
	writes(newFk)
	c := startClient(t, oldFk, nil)
	ctx := testCtx(t)
	f, _, err := c.Open(ctx, g, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Write(ctx, f, 0, []byte("old"), nil); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(newFk)
	c.Retarget(cfg)
	if h, p, s := c.Target(); h != newFk.Host() || p != newFk.GlusterdPort() || s != "/bricks/new" {
		t.Fatalf("Target after Retarget: %s:%d %s", h, p, s)
	}
	newFk.WaitBrickConn(10 * time.Second)
	waitFor(t, 5*time.Second, "client up on the new brick", c.Up)
	oldWrites := len(oldFk.FopCalls(opWrite))
	if _, _, _, err := c.Write(ctx, f, 3, []byte("new"), nil); err != nil {
		t.Fatalf("write after the move: %v", err)
	}
	if n := len(newFk.FopCalls(opOpen)); n != 1 {
		t.Errorf("%d OPENs on the new brick, want the fd reopened once", n)
	}
	if n := len(newFk.FopCalls(opWrite)); n != 1 {
		t.Errorf("%d WRITEs on the new brick, want 1", n)
	}
	if n := len(oldFk.FopCalls(opWrite)); n != oldWrites {
		t.Errorf("the old brick got %d more WRITEs after the move", n-oldWrites)
	}
	if len(oldFk.BrickConns()) != 0 {
		t.Errorf("the old brick still has %d connections from the client", len(oldFk.BrickConns()))
	}
	for _, call := range newFk.Calls() {
		if call.Prog == bricktest.ProgHandshake && call.Proc == bricktest.ProcSetVolume {
			return
		}
	}
	t.Error("no SETVOLUME on the new brick")
}

// TestRetargetDuringReconnect: a Retarget that comes while a reconnect to
// the old brick is half done is not lost: that attempt is dropped and the
// client ends up on the new brick.
func TestRetargetDuringReconnect(t *testing.T) {
	oldFk := bricktest.New(t, bricktest.Options{BrickPath: "/bricks/old"})
	newFk := bricktest.New(t, bricktest.Options{BrickPath: "/bricks/new"})
	c := startClient(t, oldFk, nil)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	oldFk.SetSetVolume(func(d xdr.OldDict) bricktest.SetVolumeResult {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return bricktest.AcceptVolume(d)
	})
	oldFk.DropConnections()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect to the old brick")
	}
	c.Retarget(fastConfig(newFk))
	close(release)
	newFk.WaitBrickConn(10 * time.Second)
	waitFor(t, 5*time.Second, "client up", c.Up)
	// The attempt to the old brick, answered after the move, is dropped.
	waitFor(t, 5*time.Second, "the old brick's connection to close", func() bool { return len(oldFk.BrickConns()) == 0 })
	// The next fop goes to the new brick, nothing to the old one.
	oldCalls := len(oldFk.Calls())
	if _, _, err := c.Open(testCtx(t), gfidN(9), 0, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(newFk.FopCalls(opOpen)); n != 1 {
		t.Errorf("%d OPENs on the new brick, want 1", n)
	}
	if n := len(oldFk.Calls()); n != oldCalls {
		t.Errorf("the old brick got %d calls after the move", n-oldCalls)
	}
}
