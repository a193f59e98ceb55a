package afr

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// The tests here hold one file whose only good copy is on brick 0 (see
// lastGoodCopy) and check that no path of a data change leaves it out
// while it is only slow, or blames it when it fails: the heal would have
// no source left.

// The only good copy is slow to raise dirty in the pre-op: it is waited
// for, not cut (a pre-op on the stale copies alone fails the write).
func TestSlowPreOpOnLastGoodCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	r.postOpNow(ino) // the next write takes the lock and runs the pre-op
	mems[0].Delay("XATTROP", 10*lagOpts.LagTimeout)
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err != nil {
		t.Errorf("a write whose only good copy was slow in the pre-op: %v", err)
	}
	if r.lagging()[0] {
		t.Error("the brick holding the only good copy was cut for lagging")
	}
	noneAccuses(t, r, mems, ino)
}

// Another client holds the file's lock, so the lock is taken again one
// brick at a time, while the only good copy lags (a cut on another
// file): it is locked in that blocking round too, not left out.
func TestContendedLockKeepsLaggingGoodCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	g, _, _, err := r.Create(ctx, foptest.RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, g)
	r.postOpNow(ino)
	release := mems[0].Hang("WRITE")
	defer release()
	if _, _, _, err := r.Write(ctx, g, 0, []byte("other"), nil); err != nil {
		t.Fatal(err)
	}
	if !r.lagging()[0] {
		t.Fatal("brick 0 is not lagging: the scenario did not happen")
	}
	other := owner("other")
	if _, err := mems[1].Inodelk(other, ino.gfid, r.name, fop.LkSet, dataRange, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, _, err := r.Write(ctx, f, 8, []byte("x"), nil)
		done <- err
	}()
	// The write waits on brick 1's lock in the blocking round; once it
	// does, the other client lets go, and brick 0 may write.
	eventually(t, 10*time.Second, "the write to wait on brick 1", func() bool { return mems[1].Waiters() > 0 })
	if _, err := mems[1].Inodelk(other, ino.gfid, r.name, fop.LkSet, unlockOf(dataRange), nil); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("a contended write while its only good copy lagged: %v", err)
	}
	noneAccuses(t, r, mems, ino)
}

// With quorum fixed at 1, a stale copy fails the write and the only good
// copy fails the flush that must precede an accusation: the write fails
// (EIO) and nobody is accused, as when the good copy fails the write.
func TestFailedFlushOnLastGoodCopyAccusesNobody(t *testing.T) {
	o := lagOpts
	o.Quorum = 1
	r, mems, f, ino := lastGoodCopy(t, o)
	mems[2].Refuse("WRITE", syscall.EIO)
	mems[0].Refuse("FSYNC", syscall.EIO)
	_, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil)
	if fop.Errno(err) != syscall.EIO {
		t.Errorf("a write whose only good copy failed the flush: %v, want EIO", err)
	}
	noneAccuses(t, r, mems, ino)
}

// The only good copy and one stale copy fail a write: it falls short of
// quorum, and the good copy stays readable (it lacks only the failed
// change), so reads do not fail as split-brain until a refresh.
func TestShortOfQuorumKeepsGoodCopyReadable(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	mems[0].Refuse("WRITE", syscall.EIO)
	mems[1].Refuse("WRITE", syscall.EIO)
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err == nil {
		t.Fatal("a write two of three bricks failed succeeded")
	}
	noneAccuses(t, r, mems, ino)
	mems[0].Refuse("WRITE", 0)
	mems[1].Refuse("WRITE", 0)
	if _, _, err := r.Read(context.Background(), f, 0, 5, nil); err != nil {
		t.Errorf("a read after the failed write: %v", err)
	}
}
