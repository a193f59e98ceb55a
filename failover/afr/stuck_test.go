package afr

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Fop procedure numbers the fakes answer (GFS3_OP_*).
const (
	procOpen    = 11
	procWrite   = 13
	procFsync   = 16
	procFstat   = 25
	procInodelk = 29
	procXattrop = 33
)

// fakeBrick answers the fops of a write transaction. With stuck set it
// keeps answering pings but never answers a WRITE: a brick whose I/O is
// stuck while its network stack is fine.
func fakeBrick(t *testing.T, stuck bool, accused *atomic.Int32) *bricktest.Fake {
	fk := bricktest.New(t, bricktest.Options{})
	st := &xdr.Iatt{GFID: testGFID, Mode: syscall.S_IFREG | 0o644, Nlink: 1}
	fk.Handle(procOpen, func(c *bricktest.Call) bricktest.Reply {
		e := bricktest.Rsp(0, 0)
		e.Int64(7)
		return bricktest.OK(e.B)
	})
	fk.Handle(procInodelk, func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(bricktest.CommonRsp(0, 0)) })
	fk.Handle(procXattrop, func(c *bricktest.Call) bricktest.Reply {
		d := xdr.NewDecoder(c.Args)
		_ = d.GFID()
		_ = d.Uint32()
		dict := d.Dict()
		if b, ok := dict.Bytes("trusted.afr.v-client-2"); ok {
			if cs, _ := parseCounts(b); cs[slotData] > 0 && accused != nil {
				accused.Add(1)
			}
		}
		e := bricktest.Rsp(0, 0)
		_ = e.Dict(dict)
		e.Iatt(st)
		e.Iatt(st)
		return bricktest.OK(e.B)
	})
	fk.Handle(procWrite, func(c *bricktest.Call) bricktest.Reply {
		if stuck {
			return bricktest.Reply{Drop: true}
		}
		return bricktest.OK(bricktest.IattRsp(4, 0, 2, st))
	})
	fk.Handle(procFsync, func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(bricktest.IattRsp(0, 0, 2, st)) })
	// The refresh through the fd before the lock (clean changelog).
	fk.Handle(procFstat, func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(bricktest.IattRsp(0, 0, 1, st)) })
	return fk
}

// A brick that answers pings but completes no write must not stall the
// writer past fop-timeout: it is dropped, accused on the others, and the
// write succeeds on them.
func TestStuckBrickBoundedByFopTimeout(t *testing.T) {
	var accused atomic.Int32
	fakes := []*bricktest.Fake{fakeBrick(t, false, &accused), fakeBrick(t, false, &accused), fakeBrick(t, true, nil)}
	log := zaptest.NewLogger(t)
	kids := make([]Child, 3)
	for i, fk := range fakes {
		c := brick.New(brick.Config{Name: "v-client-" + string(rune('0'+i)), RemoteHost: fk.Host(), RemotePort: fk.GlusterdPort(),
			RemoteSubvolume: fk.BrickPath(), PingInterval: 100 * time.Millisecond, PingTimeout: 1500 * time.Millisecond}, log)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.Start(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		t.Cleanup(func() { _ = c.Close() })
		kids[i] = c
	}
	r, err := NewReplicate("v-replicate-0", kids, []string{"v-client-0", "v-client-1", "v-client-2"},
		ReplicateOptions{Arbiter: -1, FopTimeout: 400 * time.Millisecond, PostOpDelay: 50 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ctx := context.Background()
	fd, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, _, err := r.Write(ctx, fd, 0, []byte("data"), nil); err != nil {
		t.Fatalf("write with a stuck brick: %v", err)
	}
	took := time.Since(start)
	t.Logf("write returned after %v with fop-timeout 400ms and ping-timeout 1.5s", took)
	if accused.Load() < 2 {
		t.Fatalf("the stuck brick was accused on %d bricks, want 2", accused.Load())
	}
	// The stuck brick's connection was dropped, so it releases our locks;
	// the client reconnects to it.
	fakes[2].WaitCalls(5*time.Second, "a second SETVOLUME after the drop", func(cs []*bricktest.Call) bool {
		n := 0
		for _, c := range cs {
			if c.Prog == bricktest.ProgHandshake && c.Proc == 1 {
				n++
			}
		}
		return n >= 2
	})
}
