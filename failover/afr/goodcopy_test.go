package afr

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
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
	r.postOpNow(ino) // the post-op, as slow there, is waited for too
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
	r.postOpNow(ino)
	release := lagBrick0(t, r, mems)
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

// The only good copy fails the flush, and a stale copy the write, under
// the default quorum: the flush falls short of quorum, the write fails,
// and the good copy is neither accused nor made unreadable.
func TestFailedFlushShortOfQuorumKeepsGoodCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	mems[2].Refuse("WRITE", syscall.EIO)
	mems[0].Refuse("FSYNC", syscall.EIO)
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err == nil {
		t.Error("a write flushed on one brick of three succeeded")
	}
	noneAccuses(t, r, mems, ino)
}

// lagBrick0 makes brick 0 lag: a write to another file hangs there and is
// cut. The returned function lets brick 0's writes go on.
func lagBrick0(t *testing.T, r *Replicate, mems []*foptest.Mem) func() {
	t.Helper()
	ctx := context.Background()
	g, _, _, err := r.Create(ctx, foptest.RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release(ctx, g) })
	release := mems[0].Hang("WRITE")
	t.Cleanup(release)
	if _, _, _, err := r.Write(ctx, g, 0, []byte("other"), nil); err != nil {
		t.Fatal(err)
	}
	if !r.lagging()[0] {
		t.Fatal("brick 0 is not lagging: the scenario did not happen")
	}
	return release
}

// refreshWhileGoodCopyLags: a refresh (any child event makes the next read
// refresh) while the only good copy lags keeps it the good copy, reads
// serve its data, and the next write waits for it rather than blame it
// from the stale copies.
func refreshWhileGoodCopyLags(t *testing.T, r *Replicate, mems []*foptest.Mem, f *fop.Fd, ino *inode) {
	t.Helper()
	ctx := context.Background()
	r.postOpNow(ino)
	release := lagBrick0(t, r, mems)
	r.gen.Add(1)
	if b, _, err := r.Read(ctx, f, 0, 5, nil); err != nil || string(b) != "first" {
		t.Errorf("a read after the refresh: %q, %v; want first", b, err)
	}
	ino.mu.Lock()
	readable := clone(ino.readable)
	ino.mu.Unlock()
	if want := []bool{true, false, false}; !slices.Equal(readable, want) {
		t.Errorf("readable after a refresh while the good copy lags: %v, want %v", readable, want)
	}
	time.AfterFunc(10*lagOpts.LagTimeout, release)
	if _, _, _, err := r.Write(ctx, f, 8, []byte("x"), nil); err != nil {
		t.Errorf("a write after the refresh: %v", err)
	}
	noneAccuses(t, r, mems, ino)
}

func TestRefreshWhileGoodCopyLags(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	refreshWhileGoodCopyLags(t, r, mems, f, ino)
}

// The usual replica-3 history: the stale copies accuse each other too
// (each missed a change the other two took).
func TestRefreshWhileGoodCopyLagsStaleAccuseEachOther(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	for i, who := range map[int][]bool{1: {false, false, true}, 2: {false, true, false}} {
		if _, _, err := mems[i].Xattrop(ctx, ino.gfid, fop.XattropAddArray, r.changelog(counts{}, blame(who, slotData)), nil); err != nil {
			t.Fatal(err)
		}
	}
	refreshWhileGoodCopyLags(t, r, mems, f, ino)
}

// The only good copy is slow to answer a refresh: the refresh cuts it
// and decides from the others, but it stays the good copy.
func TestSlowRefreshOnGoodCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	r.postOpNow(ino)
	r.gen.Add(1)
	mems[0].Delay("FSTAT", 10*lagOpts.LagTimeout)
	mems[0].Delay("LOOKUP", 10*lagOpts.LagTimeout)
	if b, _, err := r.Read(context.Background(), f, 0, 5, nil); err != nil || string(b) != "first" {
		t.Errorf("a read whose refresh the good copy was slow to answer: %q, %v; want first", b, err)
	}
	noneAccuses(t, r, mems, ino)
}

// A refresh that a down brick cannot answer decides from the others, as
// AFR does: the copies they do not accuse are good, also when the down
// one was the good copy before (it would otherwise be unreadable until
// it came back, however long that is).
func TestRefreshWithoutADownBrick(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	r.postOpNow(ino)
	mems[0].SetDown(true)
	eventually(t, 5*time.Second, "brick 0 to be down", func() bool { return !r.up()[0] })
	if _, _, err := r.Read(context.Background(), f, 0, 5, nil); err != nil {
		t.Errorf("a read with the good copy down: %v", err)
	}
	ino.mu.Lock()
	readable := clone(ino.readable)
	ino.mu.Unlock()
	if want := []bool{false, true, true}; !slices.Equal(readable, want) {
		t.Errorf("readable after a refresh without the down brick: %v, want %v", readable, want)
	}
}

// The only good copy of the metadata lags: a metadata change locks it all
// the same, and nobody blames it.
func TestMetaChangeKeepsLaggingGoodMetaCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	if _, _, err := mems[0].Xattrop(ctx, ino.gfid, fop.XattropAddArray, r.changelog(counts{}, blame([]bool{false, true, true}, slotMeta)), nil); err != nil {
		t.Fatal(err)
	}
	ino.mu.Lock()
	ino.metaRead = []bool{true, false, false}
	ino.mu.Unlock()
	r.postOpNow(ino)
	lagBrick0(t, r, mems)
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Errorf("a metadata change while its only good copy lagged: %v", err)
	}
	for i := 1; i < 3; i++ {
		if v := slotAcc(mems[i], ino.gfid, 0, slotMeta); v != 0 {
			t.Errorf("brick %d accuses brick 0, the only good metadata copy, of %d metadata changes", i, v)
		}
	}
}

// The only good copy of the metadata fails a metadata change the others
// take: EIO, and nobody blames it.
func TestMetaChangeFailedOnGoodMetaCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	ino.mu.Lock()
	ino.metaRead = []bool{true, false, false}
	ino.mu.Unlock()
	mems[0].Refuse("FSETATTR", syscall.EIO)
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); fop.Errno(err) != syscall.EIO {
		t.Errorf("a metadata change its only good copy failed: %v, want EIO", err)
	}
	for i := 1; i < 3; i++ {
		if v := slotAcc(mems[i], ino.gfid, 0, slotMeta); v != 0 {
			t.Errorf("brick %d accuses brick 0, the only good metadata copy, of %d metadata changes", i, v)
		}
	}
}

// The good copy went down while the eager lock was held: the post-op on
// the stale copies cannot include it, so a stale copy that hangs is cut
// as usual rather than waited for until the fop timeout (quorum fixed at
// 1, so that one stale copy answering is a quorum).
func TestPostOpWithoutGoodCopyCutsAHungBrick(t *testing.T) {
	o := lagOpts
	o.Quorum = 1
	r, mems, f, ino := lastGoodCopy(t, o)
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	mems[0].SetDown(true)
	eventually(t, 5*time.Second, "brick 0 to be down", func() bool { return !r.up()[0] })
	release := mems[2].Hang("XATTROP")
	defer release()
	within(t, 20*lagOpts.LagTimeout, "the post-op", func() error { r.postOpNow(ino); return nil })
}

// rootGoodCopy makes brick 0 hold the only good copy of the root
// directory's entries: it accuses bricks 1 and 2 on disk, and the replica
// set knows it.
func rootGoodCopy(t *testing.T, r *Replicate, mems []*foptest.Mem) {
	t.Helper()
	d := r.changelog(counts{}, blame([]bool{false, true, true}, slotEntry))
	if _, _, err := mems[0].Xattrop(context.Background(), foptest.RootGFID, fop.XattropAddArray, d, nil); err != nil {
		t.Fatal(err)
	}
	root := r.inode(foptest.RootGFID)
	root.mu.Lock()
	root.readable, root.isDir = []bool{true, false, false}, true
	root.mu.Unlock()
}

// noneAccusesRoot fails the test if a brick accuses brick 0, the only good
// copy of the root's entries.
func noneAccusesRoot(t *testing.T, mems []*foptest.Mem) {
	t.Helper()
	for i := 1; i < 3; i++ {
		if v := slotAcc(mems[i], foptest.RootGFID, 0, slotEntry); v != 0 {
			t.Errorf("brick %d accuses brick 0, the only good copy of the root's entries, of %d entry changes", i, v)
		}
	}
}

// The only good copy of a directory's entries lags: a mkdir in it locks
// that copy all the same, and nobody blames it.
func TestEntryChangeKeepsLaggingGoodParentCopy(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	lagBrick0(t, r, mems)
	rootGoodCopy(t, r, mems)
	if _, _, err := r.Mkdir(context.Background(), foptest.RootGFID, "d", 0o755, 0, foptest.GFID(3), nil); err != nil {
		t.Errorf("a mkdir while the only good copy of its parent lagged: %v", err)
	}
	if !slices.Contains(mems[0].Names(foptest.RootGFID), "d") {
		t.Error("the mkdir left out brick 0, the only good copy of its parent")
	}
	noneAccusesRoot(t, mems)
}

// The only good copy of a directory's entries fails a mkdir the others
// take: EIO, and nobody blames it.
func TestEntryChangeFailedOnGoodParentCopy(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	rootGoodCopy(t, r, mems)
	mems[0].Refuse("MKDIR", syscall.EIO)
	if _, _, err := r.Mkdir(context.Background(), foptest.RootGFID, "d", 0o755, 0, foptest.GFID(3), nil); fop.Errno(err) != syscall.EIO {
		t.Errorf("a mkdir that the only good copy of its parent failed: %v, want EIO", err)
	}
	noneAccusesRoot(t, mems)
}

// A lookup trusts only the children whose copy of the parent is good: a
// stale one may hold an older file of the same name, whose changelog says
// nothing of the file the others hold.
func TestLookupIgnoresOldFileOnStaleParent(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	old, cur := foptest.GFID(4), foptest.GFID(5)
	for i, g := range []xdr.GFID{cur, cur, old} {
		f, _, _, err := mems[i].Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, g, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = mems[i].Release(ctx, f)
	}
	for i := 0; i < 2; i++ { // bricks 0 and 1 hold the root's good entries
		if _, _, err := mems[i].Xattrop(ctx, foptest.RootGFID, fop.XattropAddArray, r.changelog(counts{}, blame([]bool{false, false, true}, slotEntry)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The old file on brick 2 accuses bricks 0 and 1 of missing its data.
	if _, _, err := mems[2].Xattrop(ctx, old, fop.XattropAddArray, r.changelog(counts{}, blame([]bool{true, true, false}, slotData)), nil); err != nil {
		t.Fatal(err)
	}
	st, _, err := r.Lookup(ctx, foptest.RootGFID, "f", xdr.GFID{}, nil)
	if err != nil || st.GFID != cur {
		t.Fatalf("lookup: %v, gfid %v; want the file of bricks 0 and 1, %v", err, st.GFID, cur)
	}
	ino := r.inode(cur)
	ino.mu.Lock()
	readable := clone(ino.readable)
	ino.mu.Unlock()
	if !readable[0] || !readable[1] {
		t.Errorf("readable %v: the old file's changelog on brick 2 counted against the current one", readable)
	}
}

// This mount heals the metadata of a file whose only good metadata copy
// was brick 0, then brick 0 goes down: a chmod goes on with the healed
// copies, as what it knew of the good copies predates the heal.
func TestMetaChangeAfterOwnHeal(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	r.postOpNow(ino)
	if _, _, err := mems[0].Xattrop(ctx, ino.gfid, fop.XattropAddArray, r.changelog(counts{}, blame([]bool{false, true, true}, slotMeta)), nil); err != nil {
		t.Fatal(err)
	}
	ino.mu.Lock()
	ino.metaRead = []bool{true, false, false}
	ino.mu.Unlock()
	if healed, err := r.healMeta(ctx, ino.gfid); !healed || err != nil {
		t.Fatalf("metadata heal: %v, %v", healed, err)
	}
	mems[0].SetDown(true)
	eventually(t, 5*time.Second, "brick 0 to be down", func() bool { return !r.up()[0] })
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Errorf("a chmod after the metadata was healed, its source down: %v", err)
	}
}

// The good copy answers a refresh with an error of its own (its copy is
// gone): that is an answer, not a silence, and the others decide.
func TestRefreshTakesAGoodCopysOwnError(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	r.postOpNow(ino)
	r.gen.Add(1)
	mems[0].Refuse("FSTAT", syscall.ESTALE)
	if b, _, err := r.Read(context.Background(), f, 0, 5, nil); err != nil || string(b) != "first" {
		t.Errorf("a read after the refresh: %q, %v", b, err)
	}
	ino.mu.Lock()
	readable := clone(ino.readable)
	ino.mu.Unlock()
	if want := []bool{false, true, true}; !slices.Equal(readable, want) {
		t.Errorf("readable after the good copy answered ESTALE: %v, want %v", readable, want)
	}
}

// The same when another client (the self-heal daemon) healed the
// metadata: brick 0 going down is a child event, after which a change
// asks the bricks again rather than trust what it knew.
func TestMetaChangeAfterAnotherHeal(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	r.postOpNow(ino)
	accuse := func(n int32) map[int]counts {
		return map[int]counts{1: slotOnly(slotMeta, n), 2: slotOnly(slotMeta, n)}
	}
	if _, _, err := mems[0].Xattrop(ctx, ino.gfid, fop.XattropAddArray, r.changelog(counts{}, accuse(1)), nil); err != nil {
		t.Fatal(err)
	}
	ino.mu.Lock()
	ino.metaRead = []bool{true, false, false}
	ino.mu.Unlock()
	// The heal daemon's work: the metadata copied, the accusations gone.
	if _, _, err := mems[0].Xattrop(ctx, ino.gfid, fop.XattropAddArray, r.changelog(counts{}, accuse(-1)), nil); err != nil {
		t.Fatal(err)
	}
	mems[0].SetDown(true)
	eventually(t, 5*time.Second, "brick 0 to be down", func() bool { return !r.up()[0] })
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Errorf("a chmod after another client healed the metadata, its source down: %v", err)
	}
}

func rootReadable(r *Replicate) []bool {
	root := r.inode(foptest.RootGFID)
	root.mu.Lock()
	defer root.mu.Unlock()
	return clone(root.readable)
}

// Three mkdirs, each refused (ENOSPC) by another brick, in one generation:
// each accusation marks the copy it blames, so the third, which would
// blame the last copy nobody accused, fails instead.
func TestEntryChangesNeverBlameTheLastGoodCopy(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	if _, _, err := r.Lookup(ctx, foptest.RootGFID, "", foptest.RootGFID, nil); err != nil {
		t.Log("root lookup:", err)
	}
	r.freshen(ctx, r.inode(foptest.RootGFID), nil)
	t.Logf("root readable at start %v", rootReadable(r))
	steps := []int{2, 0, 1}
	for n, bad := range steps {
		for i := range mems {
			mems[i].Refuse("MKDIR", 0)
		}
		mems[bad].Refuse("MKDIR", syscall.ENOSPC)
		_, _, err := r.Mkdir(ctx, foptest.RootGFID, string(rune('a'+n)), 0o755, 0, foptest.GFID(byte(10+n)), nil)
		t.Logf("mkdir %c with brick %d refusing: %v; root readable now %v", 'a'+n, bad, err, rootReadable(r))
	}
	accused := 0
	for j := 0; j < 3; j++ {
		for i := 0; i < 3; i++ {
			if i != j && slotAcc(mems[i], foptest.RootGFID, j, slotEntry) != 0 {
				accused++
				t.Logf("brick %d accuses brick %d of entries", i, j)
				break
			}
		}
	}
	if accused == 3 {
		t.Errorf("every copy of the root's entries is accused: the only good copy was blamed")
	}
}

// A directory whose copies all are accused (rolling restarts before the
// heal caught up) has no good copy to protect: entry changes go on, as in
// AFR (the heal's conservative merge resolves it).
func TestEntryChangeInADirectoryWithNoGoodCopy(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	for i := range mems {
		// i accuses the next one only: a cycle
		w := make([]bool, 3)
		w[(i+1)%3] = true
		if _, _, err := mems[i].Xattrop(ctx, foptest.RootGFID, fop.XattropAddArray, r.changelog(counts{}, blame(w, slotEntry)), nil); err != nil {
			t.Fatal(err)
		}
	}
	r.gen.Add(1)
	if _, _, err := r.Mkdir(ctx, foptest.RootGFID, "d", 0o755, 0, foptest.GFID(3), nil); err != nil {
		t.Errorf("mkdir in a directory whose copies all are accused: %v (readable %v)", err, rootReadable(r))
	}
	if _, err := r.Unlink(ctx, foptest.RootGFID, "nope", nil); fop.Errno(err) != syscall.ENOENT {
		t.Errorf("unlink of a missing name there: %v, want ENOENT", err)
	}
}

// The only good copy of the parent answers EEXIST (the stale copies
// missed the name): that is the answer, not EIO.
func TestEntryChangeTakesTheGoodCopysRefusal(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	rootGoodCopy(t, r, mems)
	if _, _, err := mems[0].Mkdir(ctx, foptest.RootGFID, "d", 0o755, 0, foptest.GFID(3), nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Mkdir(ctx, foptest.RootGFID, "d", 0o755, 0, foptest.GFID(4), nil)
	t.Logf("mkdir of a name only the good copy holds: %v", err)
	if fop.Errno(err) != syscall.EEXIST {
		t.Errorf("got %v, want EEXIST", err)
	}
}

// A brick whose copy of the parent is stale but which holds the same file
// (same gfid): its changelog of the file counts, and the copy it accuses
// is not taken as good.
func TestLookupReadsTheSameFileOnAStaleParent(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	g := foptest.GFID(5)
	for i := range mems {
		f, _, _, err := mems[i].Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, g, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = mems[i].Release(ctx, f)
	}
	// root: bricks 0 and 1 accuse 2 of entries
	for i := 0; i < 2; i++ {
		if _, _, err := mems[i].Xattrop(ctx, foptest.RootGFID, fop.XattropAddArray, r.changelog(counts{}, blame([]bool{false, false, true}, slotEntry)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// f: bricks 1 and 2 accuse 0 of data
	for i := 1; i < 3; i++ {
		if _, _, err := mems[i].Xattrop(ctx, g, fop.XattropAddArray, r.changelog(counts{}, blame([]bool{true, false, false}, slotData)), nil); err != nil {
			t.Fatal(err)
		}
	}
	mems[1].SetDown(true)
	eventually(t, 5*time.Second, "brick 1 down", func() bool { return !r.up()[1] })
	_, _, err := r.Lookup(ctx, foptest.RootGFID, "f", xdr.GFID{}, nil)
	ino := r.inode(g)
	ino.mu.Lock()
	rd := clone(ino.readable)
	ino.mu.Unlock()
	t.Logf("lookup: %v; readable %v", err, rd)
	if rd != nil && rd[0] {
		t.Errorf("brick 0, accused of f's data by brick 2 (same gfid), taken as good: %v", rd)
	}
}

// A refresh that fails for a passing reason (EIO from the bricks, no
// quorum, an interrupt) does not stop the next change of the generation
// from asking the bricks again: else it would trust what it knew before
// the event, and blame the only good copy.
func TestPassingRefreshFailureIsRepeated(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	ctx := context.Background()
	r.postOpNow(ino)
	ino.mu.Lock()
	ino.metaRead = []bool{true, true, true} // known before the event
	ino.mu.Unlock()
	// Other clients' chmods, each while one of bricks 1 and 2 was away:
	// brick 0 alone holds good metadata, and each accusation is on a
	// quorum (bricks 1 and 2 accuse each other).
	for i, who := range map[int][]bool{0: {false, true, true}, 1: {false, false, true}, 2: {false, true, false}} {
		if _, _, err := mems[i].Xattrop(ctx, ino.gfid, fop.XattropAddArray, r.changelog(counts{}, blame(who, slotMeta)), nil); err != nil {
			t.Fatal(err)
		}
	}
	r.gen.Add(1) // the child event
	// One refresh fails for a passing reason (EIO from two bricks at once).
	for _, m := range mems {
		m.Refuse("FSTAT", syscall.EIO)
	}
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o640}, fop.SetAttrMode, nil); err == nil {
		t.Error("a chmod whose refresh failed went on what it knew before the event")
	}
	for _, m := range mems {
		m.Refuse("FSTAT", 0)
	}
	lagBrick0(t, r, mems)
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Logf("chmod: %v", err)
	}
	ino.mu.Lock()
	t.Logf("metaRead %v", ino.metaRead)
	ino.mu.Unlock()
	for i := 1; i < 3; i++ {
		if v := slotAcc(mems[i], ino.gfid, 0, slotMeta); v != 0 {
			t.Errorf("brick %d accuses brick 0, the only good metadata copy, of %d metadata changes", i, v)
		}
	}
}

// An open file unlinked has no gfid handle left: changes through its fd
// ask the bricks again through the fd (FSTAT) after a child event, and
// go on.
func TestGfidRefreshFailureKeepsFdRefresh(t *testing.T) {
	r, mems, f := eagerLockHeld(t, lagOpts)
	ctx := context.Background()
	ino := r.inode(foptest.GFID(1))
	r.postOpNow(ino)
	for _, m := range mems {
		m.Refuse("LOOKUP", syscall.ESTALE)
	}
	r.gen.Add(1)
	before := mems[0].Calls("FSTAT")
	if _, _, _, err := r.Write(ctx, f, 0, []byte("x"), nil); err != nil {
		t.Errorf("a write through an fd whose file has no gfid handle left: %v", err)
	}
	if _, _, _, err := r.Fsetattr(ctx, f, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Fatal(err)
	}
	if mems[0].Calls("FSTAT")-before == 0 {
		t.Errorf("no refresh through the fd ran after the child event")
	}
}

// claimBlame checks that a good copy stays among the children a change
// stands on and marks the blamed ones in one step: of two changes failing
// on different good copies, the second finds the first's mark and is
// refused, rather than both passing and blaming every good copy.
func TestClaimBlameKeepsAGoodCopy(t *testing.T) {
	r, _ := memReplicaWith(t, lagOpts)
	ino := r.inode(foptest.GFID(9))
	ino.mu.Lock()
	ino.readable, ino.metaRead = []bool{true, true, false}, []bool{false, false, false}
	ino.mu.Unlock()
	if !r.claimBlame(ino, []bool{false, true, true}, []bool{true, false, false}, slotData) {
		t.Fatal("blaming brick 0 while brick 1, a good copy, took the change: refused")
	}
	if r.claimBlame(ino, []bool{true, false, true}, []bool{false, true, false}, slotData) {
		t.Error("blaming brick 1, the last good copy, from bricks 0 (just blamed) and 2: allowed")
	}
	ino.mu.Lock()
	got := clone(ino.readable)
	ino.mu.Unlock()
	if want := []bool{false, true, false}; !slices.Equal(got, want) {
		t.Errorf("readable %v, want %v", got, want)
	}
	// Every metadata copy accused: nothing to protect, as in AFR.
	if !r.claimBlame(ino, []bool{true, true, false}, []bool{false, false, true}, slotMeta) {
		t.Error("a metadata change with every copy accused: refused")
	}
}

// A write cuts brick 0 as slow because brick 1, a good copy, took it;
// before the outcome is judged, another change finds brick 1 stale. The
// write waits for brick 0, which took it after all, and stands on it,
// instead of failing (EIO) for want of a good copy.
func TestCutGoodCopyRescuesTheWrite(t *testing.T) {
	r, mems, f := eagerLockHeld(t, lagOpts)
	ino := r.inode(foptest.GFID(1))
	ino.mu.Lock()
	ino.readable = []bool{true, true, false}
	ino.mu.Unlock()
	staleAfterChange(t, ino, 1)
	mems[0].Delay("WRITE", 10*lagOpts.LagTimeout)
	cuts := r.lag.cuts.Load()
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err != nil {
		t.Errorf("a write whose slow good copy took it after all: %v", err)
	}
	if r.lag.cuts.Load() == cuts {
		t.Fatal("brick 0 was not cut: the scenario did not happen")
	}
	for i := 1; i < 3; i++ {
		if v := slotAcc(mems[i], ino.gfid, 0, slotData); v != 0 {
			t.Errorf("brick %d accuses brick 0, which took the write, of %d data changes", i, v)
		}
	}
}

// The good copy really failed the write, and only a stale copy was cut as
// slow: waiting for the cut one cannot give the write a good copy, so the
// EIO comes at once, not when the slow brick is done (replica 5).
func TestNoGoodCopyCutFailsAtOnce(t *testing.T) {
	r, mems, f := eagerLockHeldN(t, 5, lagOpts)
	ctx := context.Background()
	ino := r.inode(foptest.GFID(1))
	ino.mu.Lock()
	ino.readable = []bool{true, true, false, false, false}
	ino.mu.Unlock()
	staleAfterChange(t, ino, 0)
	mems[1].Refuse("WRITE", syscall.EIO)
	release := mems[4].Hang("WRITE")
	defer release()
	within(t, 20*lagOpts.LagTimeout, "the write with no good copy left", func() error {
		_, _, _, err := r.Write(ctx, f, 8, []byte("x"), nil)
		if fop.Errno(err) != syscall.EIO {
			t.Errorf("a write no good copy took: %v, want EIO", err)
		}
		return nil
	})
}

// staleAfterChange has the next data change of ino find brick i stale
// once its replies are in, before they are judged: as a concurrent write
// failing on brick i would.
func staleAfterChange(t *testing.T, ino *inode, i int) {
	afterChangeHook = func(in *inode) {
		if in == ino {
			in.mu.Lock()
			in.readable[i] = false
			in.mu.Unlock()
		}
	}
	t.Cleanup(func() { afterChangeHook = nil })
}
