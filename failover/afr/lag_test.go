package afr

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// lagOpts: a fop timeout far beyond any test's patience, so only the cut
// for lagging can end a change that waits on a hung child.
var lagOpts = ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: time.Minute, LagTimeout: 50 * time.Millisecond}

// within runs fn and fails the test unless it returns within d: what it
// waits on would otherwise hang until the fop timeout.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not return within %v: it waits on a hung brick", what, d)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func accuses(m *foptest.Mem, i int) bool {
	b, ok := m.Xattr(foptest.GFID(1), fmt.Sprintf("trusted.afr.v-client-%d", i))
	return ok && len(b) >= 4 && (b[0]|b[1]|b[2]|b[3]) != 0
}

// A brick whose writes hang while it stays connected (a frozen
// filesystem) costs a write the lag wait, not the fop timeout: the write
// is acknowledged once the other two have it and they accuse the third;
// later writes leave the lagging brick out at once; when its hung write
// ends it takes part again.
func TestLaggingBrickCutFromWrites(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	release := mems[2].Hang("WRITE")
	defer release()
	within(t, 10*time.Second, "a write while brick 2 hangs", func() error {
		_, _, _, err := r.Write(ctx, f, 0, []byte("first"), nil)
		return err
	})
	for i := 0; i < 2; i++ {
		if !accuses(mems[i], 2) {
			t.Errorf("brick %d does not accuse the lagging brick 2 after the write was acknowledged", i)
		}
	}
	if !r.lagging()[2] || r.Cuts() == 0 {
		t.Fatalf("brick 2 is not lagging (lagging %v, cuts %d)", r.lagging(), r.Cuts())
	}
	if len(mems[2].Kicks()) > 0 {
		t.Errorf("a lagging brick was dropped: %v", mems[2].Kicks())
	}
	calls := mems[2].Calls("WRITE")
	within(t, 10*time.Second, "a second write while brick 2 lags", func() error {
		_, _, _, err := r.Write(ctx, f, 5, []byte("second"), nil)
		return err
	})
	if got := mems[2].Calls("WRITE"); got != calls {
		t.Errorf("a write went to the lagging brick (%d WRITE calls, were %d)", got, calls)
	}
	release()
	eventually(t, 10*time.Second, "brick 2 to stop lagging once its write ended", func() bool { return !r.lagging()[2] })
	within(t, 10*time.Second, "a write after brick 2 caught up", func() error {
		_, _, _, err := r.Write(ctx, f, 11, []byte("third"), nil)
		return err
	})
	if got := mems[2].Calls("WRITE"); got <= calls {
		t.Errorf("brick 2 takes no writes after it caught up (%d WRITE calls)", got)
	}
	for n := 0; n < 3; n++ {
		if got, _, err := r.Read(ctx, f, 0, 100, nil); err != nil || string(got) != "firstsecondthird" {
			t.Fatalf("read: %q, %v", got, err)
		}
	}
}

// A lock that a lagging brick grants after the change went on without it
// is given back: nothing of ours stays locked there.
func TestLaggingLockGrantedLateIsUndone(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	r.Drain()
	eventually(t, 10*time.Second, "the create's locks to go", func() bool { return mems[2].Locks() == 0 })
	release := mems[2].Hang("INODELK")
	defer release()
	within(t, 10*time.Second, "a write while brick 2's locks hang", func() error {
		_, _, _, err := r.Write(ctx, f, 0, []byte("data"), nil)
		return err
	})
	if !accuses(mems[0], 2) || !accuses(mems[1], 2) {
		t.Errorf("brick 2, left out of the write's lock, is not accused")
	}
	release()
	r.Drain()
	eventually(t, 10*time.Second, "brick 2 to stop lagging", func() bool { return !r.lagging()[2] })
	r.Drain()
	eventually(t, 10*time.Second, "no lock of ours left on any brick", func() bool {
		return mems[0].Locks() == 0 && mems[1].Locks() == 0 && mems[2].Locks() == 0
	})
}

// A brick slower than its peers, while it answers within lagFactor times
// their time, is waited for: no cut, no accusation, no heal.
func TestSlowBrickIsWaitedFor(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	// The quorum answers in 100 ms, so the third gets 800 ms more.
	for i, d := range []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond} {
		for _, op := range []string{"WRITE", "INODELK", "XATTROP"} {
			mems[i].Delay(op, d)
		}
	}
	for n := 0; n < 3; n++ {
		if _, _, _, err := r.Write(ctx, f, uint64(n), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if r.Cuts() != 0 || accuses(mems[0], 2) || accuses(mems[1], 2) {
		t.Fatalf("a brick 3x slower than its peers was cut (%d cuts, accused %v %v)", r.Cuts(), accuses(mems[0], 2), accuses(mems[1], 2))
	}
}

// A read waiting on a brick that a change finds lagging moves on to the
// next readable brick instead of waiting for the ping or fop timeout.
func TestReadMovesOffALaggingBrick(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	rf, err := r.rfd(f)
	if err != nil {
		t.Fatal(err)
	}
	order, err := r.readOrder(ctx, rf.ino, rf, false)
	if err != nil || len(order) != 3 {
		t.Fatalf("read order: %v, %v", order, err)
	}
	hung := order[0]
	releaseRead := mems[hung].Hang("READ")
	defer releaseRead()
	releaseWrite := mems[hung].Hang("WRITE")
	defer releaseWrite()
	got := make(chan string, 1)
	go func() {
		b, _, err := r.Read(ctx, f, 0, 100, nil)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	eventually(t, 10*time.Second, "the read to reach the hung brick", func() bool { return mems[hung].Calls("READ") > 0 })
	f2, _, _, err := r.Create(ctx, foptest.RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f2)
	within(t, 10*time.Second, "a write to another file", func() error {
		_, _, _, err := r.Write(ctx, f2, 0, []byte("x"), nil)
		return err
	})
	select {
	case s := <-got:
		if s != "before" {
			t.Fatalf("read: %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the read still waits on brick %d, which lags", hung)
	}
}

// A read waiting on a brick that hung between two pings (nothing lags in
// changes: no write went there) moves on once it has waited far longer
// than reads take, and the next reads go elsewhere first.
func TestReadMovesOffAHungBrick(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	rf, err := r.rfd(f)
	if err != nil {
		t.Fatal(err)
	}
	order, err := r.readOrder(ctx, rf.ino, rf, false)
	if err != nil || len(order) != 3 {
		t.Fatalf("read order: %v, %v", order, err)
	}
	hung := order[0]
	release := mems[hung].Hang("READ")
	defer release()
	for n := 0; n < 3; n++ {
		within(t, 10*time.Second, "a read while its brick hangs", func() error {
			b, _, err := r.Read(ctx, f, 0, 100, nil)
			if err == nil && string(b) != "before" {
				err = fmt.Errorf("read %q", b)
			}
			return err
		})
	}
	if got := mems[hung].Calls("READ"); got != 1 {
		t.Errorf("the hung brick got %d reads, want 1 (later reads go elsewhere first)", got)
	}
	if len(mems[hung].Kicks()) > 0 {
		t.Errorf("a brick slow to read was dropped")
	}
}

// A change is not held up by a child already lagging. Here a write is cut
// from a hung brick, and the eager lock it ends (the file's writes wait
// for that) is not unlocked there for another lag timeout: the unlock
// waits in the background for the cut write to end.
func TestAlreadyLaggingIsNotWaitedFor(t *testing.T) {
	o := lagOpts
	o.LagTimeout = 3 * time.Second
	o.PostOpDelay = time.Minute // the eager lock stays until the write fails
	r, mems := memReplicaWith(t, o)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("lock"), nil); err != nil {
		t.Fatal(err)
	}
	// Brick 2 hangs whole now, under the eager lock it granted.
	releaseWrite := mems[2].Hang("WRITE")
	defer releaseWrite()
	releaseLock := mems[2].Hang("INODELK")
	defer releaseLock()
	// The write waits one lag timeout (3 s) for brick 2, the unlock
	// after it none: well under two.
	within(t, 4500*time.Millisecond, "a write cut from a hung brick, and its unlock", func() error {
		_, _, _, err := r.Write(ctx, f, 4, []byte("data"), nil)
		return err
	})
	if !r.lagging()[2] {
		t.Fatal("brick 2 does not lag")
	}
	// Its unlock waits for its cut write: nobody may lock and heal brick
	// 2 before that write has landed there.
	if mems[2].Locks() == 0 {
		t.Errorf("the lagging brick was unlocked while a cut write of ours is pending there")
	}
	releaseLock()
	releaseWrite()
	eventually(t, 10*time.Second, "brick 2 unlocked once its write ended", func() bool { return mems[2].Locks() == 0 && !r.lagging()[2] })
}

// A slow brick cut from a write, and then another brick failing the
// flush before the accusation: the write has no quorum left among those
// that were waited for, so the cut brick's call is waited for after all
// (it only lagged), flushed, and the write succeeds on it and the third.
func TestCutBrickMakesUpQuorumAfterALaterFailure(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	mems[1].Delay("WRITE", 400*time.Millisecond) // slow, not stuck: cut at 50 ms
	mems[0].Refuse("FSYNC", syscall.EIO)         // brick 0 fails as the others are flushed
	within(t, 10*time.Second, "a write whose quorum needs the slow brick", func() error {
		_, _, _, err := r.Write(ctx, f, 0, []byte("data"), nil)
		return err
	})
	if r.Cuts() == 0 {
		t.Fatal("the slow brick was not cut: the scenario did not happen")
	}
	for _, i := range []int{1, 2} {
		if d, _ := mems[i].Data(foptest.GFID(1)); string(d) != "data" {
			t.Errorf("brick %d holds %q", i, d)
		}
		if !accuses(mems[i], 0) {
			t.Errorf("brick %d does not accuse brick 0, whose flush failed", i)
		}
	}
}

// Finding which copies are readable does not wait on a brick whose calls
// hang either (a frozen filesystem after the child came back): the probe
// cuts it as a change does, and the read goes on from the others.
func TestRefreshMovesOnFromAHungBrick(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	release := mems[1].Hang("FSTAT")
	defer release()
	r.gen.Add(1) // what the replica set knows of the file is stale: the read refreshes it
	within(t, 10*time.Second, "a read whose refresh meets a hung brick", func() error {
		b, _, err := r.Read(ctx, f, 0, 100, nil)
		if err == nil && string(b) != "before" {
			err = fmt.Errorf("read %q", b)
		}
		return err
	})
	if got := mems[1].Calls("FSTAT"); got != 1 {
		t.Errorf("the hung brick got %d FSTATs, want 1", got)
	}
}

// A brick cut for lagging that took the change after all needs no
// accusation: when the accusation cannot reach quorum (a brick that took
// the change fails it), the change stands on the bricks that took it, and
// the VM gets no error (seen in the soak: one brick 300 ms behind under
// load, another frozen as it was told of the first).
func TestCutBrickNeedsNoAccusationWhenItTookTheChange(t *testing.T) {
	r, mems, f := accusationShortOfQuorum(t, nil)
	ctx := context.Background()
	within(t, 10*time.Second, "a write whose accusation falls short of quorum", func() error {
		_, _, _, err := r.Write(ctx, f, 0, []byte("data"), nil)
		return err
	})
	mems[0].Refuse("XATTROP", 0)
	if r.Cuts() == 0 {
		t.Fatal("the slow brick was not cut: the scenario did not happen")
	}
	for i := range mems {
		if d, _ := mems[i].Data(foptest.GFID(1)); string(d) != "data" {
			t.Errorf("brick %d holds %q", i, d)
		}
	}
	// The cut brick is not read from until healed.
	ino := r.inode(foptest.GFID(1))
	ino.mu.Lock()
	readable := append([]bool(nil), ino.readable...)
	ino.mu.Unlock()
	if len(readable) != 3 || readable[1] || !readable[0] || !readable[2] {
		t.Errorf("readable copies %v; want bricks 0 and 2 only, until brick 1 is healed", readable)
	}
}

// The same, but the cut brick did not take the change after all (its
// late write failed, or its flush): the write fails, as it did before.
func TestCutBrickThatFailedLateStillFailsTheWrite(t *testing.T) {
	for _, fopName := range []string{"WRITE", "FSYNC"} {
		t.Run(fopName, func(t *testing.T) {
			r, mems, f := accusationShortOfQuorum(t, func(m []*foptest.Mem) { m[1].Refuse(fopName, syscall.EIO) })
			ctx := context.Background()
			var err error
			within(t, 10*time.Second, "a write whose cut brick failed", func() error {
				_, _, _, err = r.Write(ctx, f, 0, []byte("data"), nil)
				return nil
			})
			mems[0].Refuse("XATTROP", 0)
			mems[1].Refuse(fopName, 0)
			if err == nil {
				t.Fatal("the write succeeded: only one brick both took it and recorded the other's miss")
			}
			// Nobody recorded which copies hold the change: dirty stays
			// raised on those that took it, for the heal to compare.
			r.postOpNow(r.inode(foptest.GFID(1)))
			for _, i := range []int{0, 2} {
				if b, _ := mems[i].Xattr(foptest.GFID(1), "trusted.afr.dirty"); len(b) < 4 || (b[0]|b[1]|b[2]|b[3]) == 0 {
					t.Errorf("brick %d: dirty cleared (%x) after a failed change whose accusation fell short", i, b)
				}
			}
		})
	}
}

// While another write holds the eager lock open, a write that joins it
// after a change whose accusation of a cut brick reached no brick must not
// skip that brick silently: it takes the lock anew (accusing the brick in
// its pre-op, or writing to it) once the lock is free. Both outcomes of
// the first change: it fails (the cut brick's late write failed), or it
// stands (the cut brick took it after all).
func TestJoinAfterAccusationFellShort(t *testing.T) {
	for name, late := range map[string]syscall.Errno{"fails": syscall.EIO, "stands": 0} {
		t.Run(name, func(t *testing.T) {
			r, mems, f := accusationShortOfQuorum(t, func(m []*foptest.Mem) {
				m[2].Refuse("XATTROP", syscall.ENOTCONN) // the accusation reaches no brick
				if late != 0 {
					m[1].Refuse("WRITE", late)
				}
			})
			ctx := context.Background()
			ino := r.inode(foptest.GFID(1))
			// Another write in flight all along, whose call on brick 1
			// was cut too and has not ended: brick 1 keeps lagging, so no
			// generation change retakes the lock.
			other := [2]uint64{1 << 20, 4096}
			ino.mu.Lock()
			if !ino.held {
				ino.mu.Unlock()
				t.Fatal("the eager lock is not held after the first write")
			}
			ino.busy = append(ino.busy, other)
			ino.mu.Unlock()
			var otherCut int
			r.lag.mu.Lock()
			r.lag.cut[1]++
			r.lag.mu.Unlock()
			gen := r.gen.Load()
			var err error
			within(t, 10*time.Second, "the write whose accusation falls short", func() error {
				_, _, _, err = r.Write(ctx, f, 0, []byte("data"), nil)
				return nil
			})
			if (err == nil) != (late == 0) {
				t.Fatalf("first write: %v", err)
			}
			ino.mu.Lock()
			held, noJoin := ino.held, ino.noJoin
			ino.mu.Unlock()
			if !held || !noJoin {
				t.Fatalf("after the change, with another write in flight: lock held %v, closed to new fops %v; want both", held, noJoin)
			}
			for _, m := range mems {
				m.Refuse("XATTROP", 0)
				m.Refuse("WRITE", 0)
				m.Delay("WRITE", 0)
			}
			done := make(chan error, 1)
			go func() {
				_, _, _, err := r.Write(ctx, f, 8, []byte("join"), nil)
				done <- err
			}()
			// The joining write may not finish while the lock it would
			// join is held; give it the time to (it takes microseconds).
			select {
			case err := <-done:
				t.Errorf("a write joined the lock of a change whose accusation fell short (err %v)", err)
				done <- err
			case <-time.After(200 * time.Millisecond):
			}
			if r.gen.Load() != gen {
				t.Fatal("the generation changed: the scenario did not happen")
			}
			r.release(ino, other[0], other[1], false)
			within(t, 10*time.Second, "the joining write", func() error { return <-done })
			r.cutEnd(1, nil, &otherCut)
			d, _ := mems[1].Data(foptest.GFID(1))
			if len(d) < 12 || string(d[8:12]) != "join" {
				if !accuses(mems[0], 1) || !accuses(mems[2], 1) {
					t.Errorf("brick 1 missed a write (holds %q) and bricks 0 and 2 do not both accuse it (%v %v)", d, accuses(mems[0], 1), accuses(mems[2], 1))
				}
			}
		})
	}
}

// A child still working when the wait ends is cut once it has been silent
// for a whole wait, counted from its last answer: one that answered just
// before it froze gets only the rest of the wait, not a second one.
func TestCutInCountsFromLastAnswer(t *testing.T) {
	r, _ := memReplicaWith(t, lagOpts) // wait: 50 ms
	now := time.Now()
	q := time.Millisecond
	for _, c := range []struct {
		ago, took, want time.Duration
	}{
		{ago: 40 * time.Millisecond, took: 50 * time.Millisecond, want: 10 * time.Millisecond},
		{ago: 50 * time.Millisecond, took: 50 * time.Millisecond, want: 0},
		{ago: time.Second, took: 50 * time.Millisecond, want: 0},
		{ago: 0, took: lagOpts.FopTimeout, want: 0},
	} {
		r.lag.answered[2].Store(now.Add(-c.ago).UnixNano())
		if got := r.cutIn(2, now, q, c.took); got != c.want {
			t.Errorf("last answer %v ago, change running %v: waits %v more, want %v", c.ago, c.took, got, c.want)
		}
	}
}

// accusationShortOfQuorum sets up a replica set whose next write cuts
// brick 1 (400 ms slow) and whose accusation of it brick 0 refuses; more
// adds faults of its own.
func accusationShortOfQuorum(t *testing.T, more func([]*foptest.Mem)) (*Replicate, []*foptest.Mem, *fop.Fd) {
	t.Helper()
	opts := lagOpts
	opts.PostOpDelay = time.Minute // the eager lock stays: no pre-op on the second write
	r, mems := memReplicaWith(t, opts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Release(ctx, f) })
	if _, _, _, err := r.Write(ctx, f, 0, []byte("aaaa"), nil); err != nil {
		t.Fatal(err)
	}
	mems[1].Delay("WRITE", 400*time.Millisecond) // slow, not stuck: cut at 50 ms
	mems[0].Refuse("XATTROP", syscall.ENOTCONN)  // brick 0 fails the accusation of brick 1
	if more != nil {
		more(mems)
	}
	return r, mems, f
}

// awaitCut answers a second call the same, without waiting on the cut
// calls' channels again (each is sent to once: a second receive would
// hang the change for good).
func TestAwaitCutTwice(t *testing.T) {
	lr := lagReplies{rs: make([]reply, 3), cut: []chan error{nil, make(chan error, 1), make(chan error, 1)}, memo: &cutMemo{}}
	lr.cut[1] <- nil
	lr.cut[2] <- syscall.EIO
	want := []bool{false, true, false}
	for n := 1; n <= 2; n++ {
		var got []bool
		within(t, time.Second, fmt.Sprintf("awaitCut call %d", n), func() error { got = lr.awaitCut(); return nil })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("awaitCut call %d: %v, want %v", n, got, want)
		}
	}
}

// A slow child that holds the only good copy of a file (the others missed
// changes and wait for their heal) is waited for, not cut: the change
// would otherwise stand on stale copies alone and fail (EIO) while the
// brick was only slow. Seen in a 10-minute 4-VM run: bricks that fall
// 0.5 s behind while writeback flushes, one after another, while the
// heals of the others' copies still ran.
func TestSlowLastGoodCopyIsNotCut(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("first"), nil); err != nil {
		t.Fatal(err)
	}
	ino := r.inode(foptest.GFID(1))
	ino.mu.Lock()
	ino.readable = []bool{true, false, false} // bricks 1 and 2 wait for a heal
	ino.mu.Unlock()
	mems[0].Delay("WRITE", 10*lagOpts.LagTimeout)
	if _, _, _, err := r.Write(ctx, f, 8, []byte("slow"), nil); err != nil {
		t.Fatalf("a write whose only good copy was slow failed: %v", err)
	}
	if r.lagging()[0] {
		t.Error("the brick holding the only good copy was cut for lagging")
	}
}

// lastGoodCopy makes file f (GFID 1) whose only good copy is on brick 0:
// brick 0 accuses bricks 1 and 2 on disk, and the replica set knows it.
func lastGoodCopy(t *testing.T, o ReplicateOptions) (*Replicate, []*foptest.Mem, *fop.Fd, *inode) {
	t.Helper()
	r, mems, f := eagerLockHeld(t, o)
	ctx := context.Background()
	ino := r.inode(foptest.GFID(1))
	d := r.changelog(counts{}, blame([]bool{false, true, true}, slotData))
	if _, _, err := mems[0].Xattrop(ctx, ino.gfid, fop.XattropAddArray, d, nil); err != nil {
		t.Fatal(err)
	}
	ino.mu.Lock()
	ino.readable = []bool{true, false, false}
	ino.mu.Unlock()
	return r, mems, f, ino
}

// noneAccuses fails the test if a brick's changelog accuses brick 0 of
// missing data: with brick 0 the only good copy, the file would have no
// source left (split-brain).
func noneAccuses(t *testing.T, r *Replicate, mems []*foptest.Mem, ino *inode) {
	t.Helper()
	for i, m := range mems {
		if b, ok := m.Xattr(ino.gfid, r.keys[0]); ok {
			if c, _ := parseCounts(b); c[slotData] != 0 {
				t.Errorf("brick %d accuses brick 0, the only good copy, of %d data changes: split-brain", i, c[slotData])
			}
		}
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if ino.readable != nil && !ino.readable[0] {
		t.Errorf("brick 0, the only good copy, is no longer readable: %v", ino.readable)
	}
}

// The only good copy hangs: the write fails (EIO) by the fop timeout,
// and nobody accuses it, so the heal still has its source.
func TestHungLastGoodCopyIsNotAccused(t *testing.T) {
	o := lagOpts
	o.FopTimeout = time.Second
	r, mems, f, ino := lastGoodCopy(t, o)
	release := mems[0].Hang("WRITE")
	defer release()
	_, _, _, err := r.Write(context.Background(), f, 8, []byte("hung"), nil)
	if fop.Errno(err) != syscall.EIO {
		t.Errorf("a write whose only good copy hung: %v, want EIO", err)
	}
	release()
	noneAccuses(t, r, mems, ino)
}

// The only good copy lags (a cut on another file) when the file's lock is
// taken again: it is locked and written all the same, not blamed.
func TestLaggingLastGoodCopyTakesPart(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	r.postOpNow(ino) // f's lock is taken again by the next write
	release := lagBrick0(t, r, mems)
	time.AfterFunc(10*lagOpts.LagTimeout, release)
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err != nil {
		t.Errorf("a write while its only good copy lagged: %v", err)
	}
	noneAccuses(t, r, mems, ino)
}

// The only good copy is slow to grant the lock: it is waited for.
func TestSlowLockOnLastGoodCopy(t *testing.T) {
	r, mems, f, ino := lastGoodCopy(t, lagOpts)
	r.postOpNow(ino)
	mems[0].Delay("INODELK", 10*lagOpts.LagTimeout)
	if _, _, _, err := r.Write(context.Background(), f, 8, []byte("x"), nil); err != nil {
		t.Errorf("a write whose only good copy was slow to lock: %v", err)
	}
	noneAccuses(t, r, mems, ino)
}

// A write cut from a lagging brick goes on reading the caller's data after
// the write returned: it is counted in the context's fop.DataHold until the
// call ends, so the data's owner (the FUSE request buffer) keeps it. A
// write whose calls all answered holds nothing once it returns.
func TestCutWriteHoldsItsData(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	bg := context.Background()
	f, _, _, err := r.Create(bg, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(bg, f)
	quick := new(fop.DataHold)
	cuts := r.Cuts()
	if _, _, _, err := r.Write(fop.WithDataHold(bg, quick), f, 0, []byte("zero"), nil); err != nil {
		t.Fatal(err)
	}
	if quick.Held() && r.Cuts() == cuts { // a stall of this machine may cut a brick
		t.Errorf("a write whose calls all answered still holds its data")
	}
	release := mems[2].Hang("WRITE")
	defer release()
	hold := new(fop.DataHold)
	within(t, 10*time.Second, "a write while brick 2 hangs", func() error {
		_, _, _, err := r.Write(fop.WithDataHold(bg, hold), f, 0, []byte("first"), nil)
		return err
	})
	if !r.lagging()[2] {
		t.Fatalf("brick 2 was not cut")
	}
	if !hold.Held() {
		t.Fatalf("the write returned with a call still reading its data, and its hold is not held")
	}
	release()
	within(t, 10*time.Second, "the cut call's end", func() error { hold.Wait(); return nil })
	if hold.Held() {
		t.Errorf("held after the cut call ended")
	}
}

// The locks and changelog calls of a write read none of its data: a lock
// cut from a hung brick leaves the write's hold free once it returns, and
// the FUSE request buffer is not kept for it.
func TestCutLockDoesNotHoldTheData(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	bg := context.Background()
	f, _, _, err := r.Create(bg, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(bg, f)
	release := mems[2].Hang("INODELK")
	defer release()
	hold := new(fop.DataHold)
	within(t, 10*time.Second, "a write while brick 2's locks hang", func() error {
		_, _, _, err := r.Write(fop.WithDataHold(bg, hold), f, 0, []byte("first"), nil)
		return err
	})
	if r.Cuts() == 0 {
		t.Fatalf("brick 2's lock was not cut")
	}
	if hold.Held() {
		t.Errorf("the write's data is held for a lock call that reads none of it")
	}
}
