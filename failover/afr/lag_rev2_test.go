package afr

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// R2-1. A replica set that leaves the graph (remove-brick renumbering: its
// bricks live on in the successor set) is closed while a brick lags: Close
// cancels the cut write, cutEnd sees closing and drops the deferred
// unlocks. The eager lock stays on a live brick, in the old domain.
func TestDeferredUnlockSurvivesClose(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Drain()
	eventually(t, 5*time.Second, "the create's locks to go", func() bool { return mems[2].Locks() == 0 })
	release := mems[2].Hang("WRITE")
	defer release()
	if _, _, _, err := r.Write(ctx, f, 0, []byte("x"), nil); err != nil { // cut on brick 2
		t.Fatal(err)
	}
	_ = r.Release(ctx, f) // last fd: post-op and unlock now; brick 2's unlock is deferred
	if mems[2].Locks() == 0 {
		t.Fatal("precondition: brick 2's unlock was not deferred")
	}
	r.Close() // as retire() does after Drain; the brick client is kept
	release()
	time.Sleep(200 * time.Millisecond)
	if n := mems[2].Locks(); n != 0 {
		t.Errorf("%d lock(s) of the closed set left on brick 2, which lives on in the successor set", n)
	}
}

// R2-2. A lock just granted in takeLocks' non-blocking pass and undone
// because another client contends is deferred like an unlock after a
// change, though nothing was written under it. The contended path's
// deadlock avoidance (undo everything, then block in index order) breaks:
// the other client, blocking in index order, holds brick 0 and waits on
// brick 2 for our undo; we wait on brick 0. Neither moves until an
// unrelated cut call on brick 2 ends (up to the fop timeout, then a Kick).
func TestContendedUndoIsNotDeferred(t *testing.T) {
	mems := make([]*foptest.Mem, 3)
	names := make([]string, 3)
	for i := range mems {
		names[i] = fmt.Sprintf("v-client-%d", i)
		mems[i] = foptest.NewMem(names[i])
	}
	stuck := &stuckWrite{Mem: mems[2], gate: make(chan struct{})}
	defer close(stuck.gate)
	r, err := NewReplicate("v-replicate-0", []Child{mems[0], mems[1], stuck}, names, lagOpts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.healOnce.Do(func() { r.healKick = make(chan struct{}, 1) })
	t.Cleanup(r.Close)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("x"), nil); err != nil { // stuck on brick 2: lagging
		t.Fatal(err)
	}
	mems[1].SetDown(true) // quorum now needs brick 2: changeSet keeps it
	eventually(t, 5*time.Second, "brick 1 down", func() bool { return !r.up()[1] })
	// Another client (AFR's algorithm) holds "d" on brick 0 ...
	other := internal(ctx, []byte("otherown"))
	if _, err := mems[0].Entrylk(other, foptest.RootGFID, "d", r.name, fop.EntrylkLockNB, fop.LkWrite, nil); err != nil {
		t.Fatal(err)
	}
	go func() {
		// ... and, once we block on brick 0, goes on in index order to
		// brick 2, where our undone lock should be gone.
		for mems[0].Waiters() == 0 {
			time.Sleep(time.Millisecond)
		}
		bctx, cancel := context.WithTimeout(other, 30*time.Second)
		defer cancel()
		_, _ = mems[2].Entrylk(bctx, foptest.RootGFID, "d", r.name, fop.EntrylkLock, fop.LkWrite, nil)
		_, _ = mems[2].Entrylk(other, foptest.RootGFID, "d", r.name, fop.EntrylkUnlock, fop.LkWrite, nil)
		_, _ = mems[0].Entrylk(other, foptest.RootGFID, "d", r.name, fop.EntrylkUnlock, fop.LkWrite, nil)
	}()
	within(t, 5*time.Second, "a contended mkdir", func() error {
		_, _, err := r.Mkdir(ctx, foptest.RootGFID, "d", 0o755, 0, foptest.GFID(3), nil)
		return err
	})
}

// R2-3. callNs folds in every completed call, whatever its kind and
// however slow all bricks were: one change that took d on every brick
// sets 8x the average to d. A brick that then freezes never completes a
// call, so its average never decays: two 1.2 s changes put it above a 2 s
// fop timeout, and the frozen brick is no longer cut but waited for up to
// the fop timeout and dropped (Kick), the behaviour lag cuts replace.
func TestStaleAverageStillCutsAFrozenBrick(t *testing.T) {
	o := lagOpts
	o.FopTimeout = 2 * time.Second
	r, mems := memReplicaWith(t, o)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	for _, m := range mems { // e.g. a large ftruncate or fallocate, slow everywhere
		m.Delay("WRITE", 1200*time.Millisecond)
	}
	for n := 0; n < 2; n++ {
		if _, _, _, err := r.Write(ctx, f, 0, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range mems {
		m.Delay("WRITE", 0)
	}
	t.Logf("callNs after: %v %v %v", time.Duration(r.lag.callNs[0].Load()), time.Duration(r.lag.callNs[1].Load()), time.Duration(r.lag.callNs[2].Load()))
	release := mems[2].Hang("WRITE")
	defer release()
	start := time.Now()
	if _, _, _, err := r.Write(ctx, f, 0, []byte("y"), nil); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took > time.Second || len(mems[2].Kicks()) > 0 || r.Cuts() == 0 {
		t.Errorf("a write with brick 2 frozen took %v (cuts %d, kicks %v): want a lag cut well under the 2 s fop timeout",
			took.Round(time.Millisecond), r.Cuts(), mems[2].Kicks())
	}
}
