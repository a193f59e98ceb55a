package afr

import (
	"context"
	"errors"
	"math"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

func unlockOf(fl xdr.Flock) xdr.Flock {
	fl.Type = fop.LkUnlock
	return fl
}

// takeLocks runs AFR's lock algorithm (afr_lock, afr-lk-common.c) on the
// children in set: lock(ctx, i, false) on all at once, and when any is
// contended, undo the granted ones and lock(ctx, i, true) blocking, one
// child at a time in index order, so two clients never deadlock. It fails
// unless a quorum is locked.
func (r *Replicate) takeLocks(ctx context.Context, set []bool, lock func(ctx context.Context, i int, block bool) error, undo func(locked []bool)) ([]bool, error) {
	return r.takeLocksIf(ctx, set, lock, undo, nil)
}

// takeLocksIf is takeLocks whose non-blocking round cuts a lagging child
// only once the children locked satisfy enough too (see fanoutLagCut).
func (r *Replicate) takeLocksIf(ctx context.Context, set []bool, lock func(ctx context.Context, i int, block bool) error, undo func(locked []bool), enough func(ok []bool) bool) ([]bool, error) {
	// A lock granted after its child was cut for lagging is given back.
	late := func(i int, err error) {
		if err == nil {
			one := make([]bool, r.n())
			one[i] = true
			undo(one)
		}
	}
	rs := r.fanoutLagCut(ctx, set, func(ctx context.Context, i int) error { return lock(ctx, i, false) }, late, enough, nil).rs
	locked := succeeded(rs, set)
	contended := false
	for i, rp := range rs {
		if set[i] && rp.err != nil && fop.Errno(rp.err) == syscall.EAGAIN {
			contended = true
		}
	}
	if contended {
		undo(locked)
		locked = make([]bool, r.n())
		// Lagging children are left out while the rest meet quorum
		// and enough (a lagging good copy of the data stays in).
		lagging := r.lagging()
		if rest := and(set, not(lagging)); !r.hasQuorum(rest) || enough != nil && !enough(rest) {
			lagging = make([]bool, r.n())
		}
		for i := range r.kids {
			if set[i] && lagging[i] {
				rs[i] = reply{err: &fop.OpError{Brick: r.kids[i].Name(), Errno: syscall.ENOTCONN, Err: errors.New("lagging behind its peers")}, done: true}
				continue
			}
			if set[i] {
				err := lock(ctx, i, true)
				rs[i] = reply{err: err, done: true}
				locked[i] = err == nil
			}
		}
	}
	if r.hasQuorum(locked) {
		return locked, nil
	}
	return locked, r.finalErr(rs, set)
}

// lockInode takes fl on the inode in the replica's domain.
func (r *Replicate) lockInode(ctx context.Context, ino *inode, set []bool, fl xdr.Flock) ([]bool, error) {
	return r.lockInodeIf(ctx, ino, set, fl, nil)
}

// lockInodeIf is lockInode with takeLocksIf's enough.
func (r *Replicate) lockInodeIf(ctx context.Context, ino *inode, set []bool, fl xdr.Flock, enough func(ok []bool) bool) ([]bool, error) {
	return r.takeLocksIf(internal(ctx, ino.owner), set, func(ctx context.Context, i int, block bool) error {
		cmd := uint32(fop.LkSet)
		if block {
			cmd = fop.LkSetW
		}
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, ino.gfid, r.name, cmd, fl, nil))
	}, func(locked []bool) {
		// nothing was written under a lock just taken: give it back now
		ictx := internal(ctx, ino.owner)
		r.fanoutLag(ictx, locked, func(ctx context.Context, i int) error {
			return fop.ErrOnly(r.kids[i].Inodelk(ctx, ino.gfid, r.name, fop.LkSet, unlockOf(fl), nil))
		}, nil)
	}, enough)
}

// unlockInode gives back fl on the children of locked; a lagging child's
// unlock waits until its cut calls end (unlockNow). Until a child has
// answered its unlock, the lock counts in its ino.ownLocks: it is still
// ours there, not another client's (see contended), also while the unlock
// is held back or was cut for lagging and runs on.
func (r *Replicate) unlockInode(ctx context.Context, ino *inode, locked []bool, fl xdr.Flock) {
	ictx := internal(ctx, ino.owner)
	unlock := func(ctx context.Context, i int) error {
		defer ino.ownLocks[i].Add(-1)
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, ino.gfid, r.name, fop.LkSet, unlockOf(fl), nil))
	}
	for i, l := range locked {
		if l {
			ino.ownLocks[i].Add(1) // every child of locked runs unlock once: now, on a cut, or after its lag
		}
	}
	r.fanoutLag(ictx, r.unlockNow(ictx, locked, unlock), unlock, nil)
}

// unlockNow returns the children of locked that can be unlocked now, and
// leaves the unlock of each lagging one until its cut calls end: a write
// of ours may be pending there, and whoever locks it next (the self-heal
// daemon) must find it written, or accused.
func (r *Replicate) unlockNow(ctx context.Context, locked []bool, unlock func(ctx context.Context, i int) error) []bool {
	now := clone(locked)
	for i, l := range locked {
		if l && !r.afterLag(i, func() { _ = r.callOne(ctx, i, unlock) }) {
			now[i] = false
		}
	}
	return now
}

// lockEntries takes the entry locks on names, in their sorted order, on
// each child; a child that fails one gives back the ones it took.
func (r *Replicate) lockEntries(ctx context.Context, owner []byte, names []entry, set []bool, enough func(ok []bool) bool) ([]bool, error) {
	return r.takeLocksIf(internal(ctx, owner), set, func(ctx context.Context, i int, block bool) error {
		cmd := uint32(fop.EntrylkLockNB)
		if block {
			cmd = fop.EntrylkLock
		}
		for n, e := range names {
			if _, err := r.kids[i].Entrylk(ctx, e.parent, e.name, r.name, cmd, fop.LkWrite, nil); err != nil {
				for _, u := range names[:n] {
					_, _ = r.kids[i].Entrylk(ctx, u.parent, u.name, r.name, fop.EntrylkUnlock, fop.LkWrite, nil)
				}
				return err
			}
		}
		return nil
	}, func(locked []bool) {
		r.fanoutLag(internal(ctx, owner), locked, func(ctx context.Context, i int) error {
			for _, e := range names {
				_, _ = r.kids[i].Entrylk(ctx, e.parent, e.name, r.name, fop.EntrylkUnlock, fop.LkWrite, nil)
			}
			return nil
		}, nil)
	}, enough)
}

func (r *Replicate) unlockEntries(ctx context.Context, owner []byte, names []entry, locked []bool) {
	ictx := internal(ctx, owner)
	unlock := func(ctx context.Context, i int) error {
		for _, e := range names {
			_, _ = r.kids[i].Entrylk(ctx, e.parent, e.name, r.name, fop.EntrylkUnlock, fop.LkWrite, nil)
		}
		return nil
	}
	r.fanoutLag(ictx, r.unlockNow(ictx, locked, unlock), unlock, nil)
}

// Lock ranges: data transactions lock the whole file, metadata
// transactions the single byte AFR reserves for them (LLONG_MAX-1), in the
// same domain (afr_set_transaction_flock, afr-inode-write.c).
var (
	dataRange = xdr.Flock{Type: fop.LkWrite}
	metaRange = xdr.Flock{Type: fop.LkWrite, Start: math.MaxInt64 - 1}
)

func overlaps(busy [][2]uint64, off, length uint64) bool {
	end := off + length
	if length == 0 {
		end = off
	}
	for _, b := range busy {
		bend := b[0] + b[1]
		if b[1] == 0 {
			bend = b[0]
		}
		if off < bend && b[0] < end {
			return true
		}
	}
	return false
}

// acquire joins the inode's eager lock, taking it if needed, and returns
// the children taking part.
//
// rf, when the change goes through an fd, is how the copies are asked
// again after a child event before the lock is taken (see freshen).
func (r *Replicate) acquire(ctx context.Context, ino *inode, rf *replFd, off, length uint64) ([]bool, error) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for {
		gen := r.gen.Load()
		switch {
		case ino.changing:
			ino.cond.Wait()
		case ino.held && (ino.lockGen != gen || ino.noJoin):
			// A child came or went since the lock was taken, or a change
			// under it failed: release it and take it again over the
			// children up now.
			if len(ino.busy) > 0 {
				ino.cond.Wait()
				continue
			}
			r.unlockHeld(ino)
		case ino.held:
			if overlaps(ino.busy, off, length) {
				ino.cond.Wait()
				continue
			}
			if ino.timer != nil {
				ino.timer.Stop()
				ino.timer = nil
			}
			ino.busy = append(ino.busy, [2]uint64{off, length})
			ino.lastUsed = time.Now()
			return clone(ino.part), nil
		default:
			ino.changing = true
			ino.mu.Unlock()
			locked, part, err := r.takeDataLock(ctx, ino, rf)
			ino.mu.Lock()
			ino.changing = false
			ino.cond.Broadcast()
			if err != nil {
				return nil, err
			}
			ino.held, ino.lockGen, ino.locked, ino.part = true, gen, locked, part
			ino.cycle.Add(1)
		}
	}
}

// takeDataLock locks the inode on the children up and raises dirty in the
// pre-op; a child already down is accused right there.
//
// The children that hold a good copy of the data (ino.readable) are not
// all left out for lagging, and a lock or pre-op without one of them fails
// before anyone is blamed: blaming the only good copy from the stale ones
// would leave the file without a source (split-brain), as the pre-op
// blames the children it did not lock and accuses those that missed it.
func (r *Replicate) takeDataLock(ctx context.Context, ino *inode, rf *replFd) (locked, part []bool, err error) {
	if err := r.freshen(ctx, ino, rf); err != nil { // what it knows of the good copies may predate a child event or a heal
		return nil, nil, err
	}
	up := r.keepingGood(r.changeSet(), r.goodCopies(ino))
	if !r.hasQuorum(up) {
		return nil, nil, r.errNoQuorum("FINODELK")
	}
	hasGood := func(ok []bool) bool { return r.validWrite(ino, ok) }
	locked, err = r.lockInodeIf(ctx, ino, up, dataRange, hasGood)
	if err != nil {
		r.unlockInode(ctx, ino, locked, dataRange)
		return nil, nil, err
	}
	if !hasGood(locked) {
		r.unlockInode(ctx, ino, locked, dataRange)
		return nil, nil, r.errNoGoodCopy(ino, "FINODELK")
	}
	part, fail := r.xattropIf(ctx, ino.gfid, ino.owner, locked, slotOnly(slotData, 1), blame(not(locked), slotData), nil, hasGood)
	if r.hasQuorum(part) && !hasGood(part) {
		// Raised dirty on the stale copies only: left raised (the heal
		// compares the copies), and nobody accused.
		r.unlockInode(ctx, ino, locked, dataRange)
		return nil, nil, r.errNoGoodCopy(ino, "XATTROP")
	}
	if count(locked) < r.n() {
		r.noteHeal(ino.gfid, slotData)
	}
	if !r.hasQuorum(part) {
		r.unlockInode(ctx, ino, locked, dataRange)
		return nil, nil, fail
	}
	if missed := and(locked, not(part)); count(missed) > 0 {
		if err := r.accuse(ctx, ino.gfid, ino.owner, part, missed, slotData, nil); err != nil {
			r.unlockInode(ctx, ino, locked, dataRange)
			return nil, nil, err
		}
	}
	return locked, part, nil
}

// goodCopies returns a copy of the children known to hold a good copy of
// ino's data, or nil when that is not known.
func (r *Replicate) goodCopies(ino *inode) []bool {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return clone(ino.readable)
}

// errNoGoodCopy is the error of a change that could reach only stale
// copies of ino's data: the one good copy is out (down, hung) or failed
// it. EIO, as AFR answers a write with no good copy among its bricks.
func (r *Replicate) errNoGoodCopy(ino *inode, op string) error {
	return &fop.OpError{Brick: r.name, Fop: op, GFID: ino.gfid, Errno: syscall.EIO,
		Err: errors.New("no brick holding a good copy of the file took part, so the change would reach only stale copies; " +
			"it works again once that brick answers: `brickfs status` shows which bricks are down or lagging, " +
			"`gluster volume heal VOLUME info` lists the file until it is healed")}
}

// release ends one fop under the eager lock. The last one arms the delayed
// post-op, or runs it now after a failure.
func (r *Replicate) release(ino *inode, off, length uint64, now bool) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for i, b := range ino.busy {
		if b == [2]uint64{off, length} {
			ino.busy = append(ino.busy[:i], ino.busy[i+1:]...)
			break
		}
	}
	ino.cond.Broadcast()
	if now {
		ino.releaseNow = true
	}
	if len(ino.busy) > 0 || !ino.held || ino.changing {
		return
	}
	if ino.releaseNow {
		r.unlockHeld(ino)
		return
	}
	if ino.timer == nil {
		ino.timer = time.AfterFunc(r.opts.PostOpDelay, func() { r.postOpNow(ino) })
	}
}

// postOpNow finishes the eager lock if it is idle: on the timer, on FLUSH,
// and on release of the last fd.
func (r *Replicate) postOpNow(ino *inode) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for ino.changing {
		ino.cond.Wait()
	}
	if ino.held && len(ino.busy) == 0 {
		r.unlockHeld(ino)
	}
}

// unlockHeld sends the post-op (dirty -1 where the pre-op raised it and
// the child kept up) and unlocks. REQUIRES ino.mu held; drops it during the
// network calls with changing set.
func (r *Replicate) unlockHeld(ino *inode) {
	if ino.timer != nil {
		ino.timer.Stop()
		ino.timer = nil
	}
	ino.changing = true
	part, locked, postOp := clone(ino.part), clone(ino.locked), !ino.noPostOp
	ino.mu.Unlock()
	ctx := context.Background()
	if postOp {
		// A slow good copy is waited for here too: cut, it would lag,
		// and leave the next lock to the stale copies.
		_, _ = r.xattropIf(ctx, ino.gfid, ino.owner, and(part, r.up()), slotOnly(slotData, -1), nil, nil,
			func(ok []bool) bool { return r.validWrite(ino, ok) })
	}
	r.unlockInode(ctx, ino, and(locked, r.up()), dataRange)
	ino.mu.Lock()
	ino.held, ino.changing, ino.locked, ino.part = false, false, nil, nil
	ino.releaseNow, ino.noPostOp, ino.noJoin = false, false, false
	ino.cond.Broadcast()
}

// contended takes a brick's count of the inode's locks in AFR's domain
// (glusterfs.inodelk-count, granted and waiting) from the reply of a write
// sent under the eager lock of the given cycle. When locks other than ours
// are among them, another client waits for the lock: it is given up as
// soon as the fops in flight are done, and no new fop joins it meanwhile
// (they take it again after the other client), or a stream of overlapping
// fops would keep it from that client for as long as the stream lasts
// (AFR too stops new fops joining a lock another client waits for).
//
// Ours are the eager lock itself and ino.ownLocks (a metadata change's
// lock, taken with the same owner, and unlocks left until a lagging
// child's calls end). A reply that comes after its lock was given up (a
// cut child's, late) speaks of a lock that is gone: ignored, or it would
// cost the next lock a needless unlock and retake.
func (r *Replicate) contended(ino *inode, i int, cycle uint64, n uint64) {
	if own := ino.ownLocks[i].Load(); n <= 1+uint64(max(own, 0)) {
		return
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if !ino.held || ino.changing || ino.cycle.Load() != cycle {
		return
	}
	ino.releaseNow, ino.noJoin = true, true
	if len(ino.busy) == 0 {
		// No fop in flight to give it up on release (the reply came
		// after its write's transaction ended): now, not after
		// post-op-delay; unless by then this lock is gone and another
		// taken (it keeps its own post-op delay).
		go func() {
			ino.mu.Lock()
			defer ino.mu.Unlock()
			for ino.changing {
				ino.cond.Wait()
			}
			if ino.held && len(ino.busy) == 0 && ino.cycle.Load() == cycle {
				r.unlockHeld(ino)
			}
		}()
	}
}

// Drain gives up every eager lock, with its post-op, as soon as the fops
// under it are done (as afr_delayed_changelog_wake_up does on FLUSH, for
// every inode): for a replica set leaving the graph (a remove-brick
// commit renames the sets after the one removed, and the lock domain is
// the set's name, so the graph taking over must not inherit locks held
// in the old one). A transaction that starts later still ends its lock
// on the post-op timer.
func (r *Replicate) Drain() {
	r.mu.Lock()
	inos := make([]*inode, 0, len(r.inodes))
	for _, ino := range r.inodes {
		inos = append(inos, ino)
	}
	r.mu.Unlock()
	for _, ino := range inos {
		ino.mu.Lock()
		ino.releaseNow = true
		ino.mu.Unlock()
		r.postOpNow(ino)
	}
}
