package afr

import (
	"context"
)

// metaTxn runs a metadata change (setattr, setxattr, removexattr) under
// AFR's metadata lock. With every child locked it sends no changelog (the
// optimistic changelog); otherwise pre-op and post-op around the change.
//
// As for data (takeDataLock), the children that hold good metadata
// (ino.metaRead) are not left out for lagging when no other remains, nor
// cut when slow, and a change that only stale copies would take fails
// (EIO) without blaming anyone.
//
// rf, when the change goes through an fd, is how the copies are asked
// again after a child event (an unlinked file has no gfid handle left).
func (r *Replicate) metaTxn(ctx context.Context, ino *inode, rf *replFd, op func(ctx context.Context, i int) error) ([]bool, error) {
	if err := r.freshen(ctx, ino, rf); err != nil { // what it knows of the good copies may predate a child event or a heal
		return nil, err
	}
	ino.mu.Lock()
	good := clone(ino.metaRead)
	ino.mu.Unlock()
	up := r.keepingGood(r.changeSet(), good)
	// As AFR checks only data changes for a good copy, a file whose
	// metadata copies are all accused still takes changes (the heal
	// resolves it); one with a good copy left keeps it.
	hasGood := func(ok []bool) bool { return r.validMeta(ino, ok) }
	if !r.hasQuorum(up) {
		return nil, r.errNoQuorum("INODELK")
	}
	// Counted from before it is asked for until it is given back: the
	// bricks count it beside the eager data lock (the same owner, so it
	// does not wait for it).
	for i, u := range up {
		if u {
			ino.ownLocks[i].Add(1)
		}
	}
	defer func() {
		for i, u := range up {
			if u {
				ino.ownLocks[i].Add(-1)
			}
		}
	}()
	locked, err := r.lockInodeIf(ctx, ino, up, metaRange, hasGood)
	if err != nil {
		r.unlockInode(ctx, ino, locked, metaRange)
		return nil, err
	}
	defer r.unlockInode(ctx, ino, locked, metaRange)
	if !hasGood(locked) {
		return nil, r.errNoGoodCopy(ino, "INODELK")
	}
	optimistic := count(locked) == r.n()
	part := locked
	if !optimistic {
		// The pre-op blames the children not locked.
		if !r.claimBlame(ino, locked, not(locked), slotMeta) {
			return nil, r.errNoGoodCopy(ino, "XATTROP")
		}
		var fail error
		part, fail = r.xattropIf(ctx, ino.gfid, ino.owner, locked, slotOnly(slotMeta, 1), blame(not(locked), slotMeta), nil, hasGood)
		if !r.hasQuorum(part) {
			return nil, fail
		}
		if !hasGood(part) {
			// Dirty raised on stale copies only: left for the heal.
			return nil, r.errNoGoodCopy(ino, "XATTROP")
		}
		r.noteHeal(ino.gfid, slotMeta)
		// A child locked but not marked (its pre-op failed, or lagged)
		// misses the change: blamed before it is made.
		if missed := and(locked, not(part)); count(missed) > 0 {
			if !r.claimBlame(ino, part, missed, slotMeta) {
				return nil, r.errNoGoodCopy(ino, "XATTROP")
			}
			if err := r.accuse(ctx, ino.gfid, ino.owner, part, missed, slotMeta, nil); err != nil {
				return nil, err
			}
		}
	}
	rs := r.fanout(ctx, part, op)
	ok, err := r.outcome(rs, part)
	if err != nil {
		return ok, err
	}
	failed := and(part, not(ok))
	if !hasGood(ok) || !r.claimBlame(ino, ok, failed, slotMeta) {
		// The good copy failed the change: blaming it from the stale
		// ones would leave no source. Dirty stays raised (or, with the
		// optimistic changelog, the good copy's accusations of the
		// others stand), and the heal copies the good metadata back.
		return ok, r.errNoGoodCopy(ino, "metadata change")
	}
	if count(failed) > 0 {
		if err := r.accuse(ctx, ino.gfid, ino.owner, ok, failed, slotMeta, nil); err != nil {
			return ok, err
		}
	}
	if !optimistic {
		_, _ = r.xattrop(ctx, ino.gfid, ino.owner, ok, slotOnly(slotMeta, -1), nil, nil)
	}
	return ok, nil
}
