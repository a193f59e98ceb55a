package failover

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// memReplica is a replica set over three in-memory bricks; its heal worker
// does not run (tests call the heals themselves).
func memReplica(t *testing.T) (*Replicate, []*foptest.Mem) {
	t.Helper()
	mems := make([]*foptest.Mem, 3)
	kids := make([]Child, 3)
	names := make([]string, 3)
	for i := range mems {
		names[i] = "v-client-" + string(rune('0'+i))
		mems[i] = foptest.NewMem(names[i])
		kids[i] = mems[i]
	}
	r, err := NewReplicate("v-replicate-0", kids, names,
		ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: 5 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.healOnce.Do(func() { r.healKick = make(chan struct{}, 1) })
	t.Cleanup(r.Close)
	return r, mems
}

// The fop contract holds for a replica set over three bricks.
func TestReplicateContract(t *testing.T) {
	r, mems := memReplica(t)
	foptest.Contract(t, r)
	// And every brick ends as the contract left the volume: empty.
	for _, m := range mems {
		if n := m.Names(foptest.RootGFID); len(n) != 0 {
			t.Errorf("%s holds %v", m.Name(), n)
		}
	}
}

// A fop that got the fd before its release does not open it on a child
// that came back meanwhile: that brick fd would never be released.
func TestNoChildOpenAfterRelease(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	mems[2].SetDown(true)
	f, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(false)
	rf, err := r.rfd(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	opens := mems[2].Calls("OPEN")
	if _, err := r.child(ctx, rf, 2); brick.Errno(err) != syscall.EBADF {
		t.Errorf("opening a released fd on a child: %v, want EBADF", err)
	}
	if n := mems[2].Calls("OPEN") - opens; n != 0 {
		t.Errorf("%d OPENs reached the child after the release", n)
	}
	if _, err := r.Read(ctx, f, 0, 1); brick.Errno(err) != syscall.EBADF {
		t.Errorf("read after release: %v, want EBADF", err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Errorf("a second release: %v", err)
	}
}

// Writes made while a brick is down are marked against it on the others,
// and healData makes its copy equal and clears the marks.
func TestDataHealOverMem(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(ctx, f, 0, []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(true)
	r.ChildEvent(2, false)
	if _, err := r.Write(ctx, f, 0, []byte("AFTER!"), nil); err != nil {
		t.Fatalf("write with 2 of 3 bricks: %v", err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	r.postOpNow(r.inode(foptest.GFID(1)))
	key := "trusted.afr.v-client-2"
	for _, m := range mems[:2] {
		if b, _ := m.Xattr(foptest.GFID(1), key); len(b) < 4 || b[3] == 0 {
			t.Errorf("%s does not blame client-2 for the data: %s=%x", m.Name(), key, b)
		}
	}
	mems[2].SetDown(false)
	r.ChildEvent(2, true)
	if d, _ := mems[2].Data(foptest.GFID(1)); string(d) != "before" {
		t.Fatalf("the brick that was down holds %q before the heal", d)
	}
	healed, err := r.healData(ctx, foptest.GFID(1))
	if err != nil || !healed {
		t.Fatalf("healData: %v, %v", healed, err)
	}
	for _, m := range mems {
		if d, _ := m.Data(foptest.GFID(1)); string(d) != "AFTER!" {
			t.Errorf("%s holds %q after the heal, want AFTER!", m.Name(), d)
		}
		for _, k := range []string{"trusted.afr.v-client-0", "trusted.afr.v-client-1", key} {
			if b, ok := m.Xattr(foptest.GFID(1), k); ok {
				if c, _ := parseCounts(b); c != (counts{}) {
					t.Errorf("%s: %s=%x after the heal, want zeros", m.Name(), k, b)
				}
			}
		}
	}
}

var _ Child = (*foptest.Mem)(nil)
