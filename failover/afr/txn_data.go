package afr

import (
	"context"
	"errors"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// whole is the range of changes that touch the file's size or everything.
const whole = ^uint64(0)

// dataTxn runs op on the children taking part in the inode's eager data
// lock. off and length order overlapping changes: they never run at once,
// so all replicas apply them in the same order.
//
// rf, when the change goes through an fd, lets the survivors be flushed
// before they are told that a brick missed the change, so the accusation
// never reaches their disks before the data it vouches for
// (ensure-durability, afr_changelog_post_op_safe).
func (r *Replicate) dataTxn(ctx context.Context, ino *inode, rf *replFd, off, length uint64, op func(ctx context.Context, i int) error) ([]bool, error) {
	start := time.Now()
	part, err := r.acquire(ctx, ino, rf, off, length)
	if err != nil {
		return nil, err
	}
	return r.dataTxnHeld(ctx, ino, rf, off, length, part, start, op)
}

// dataTxnHeld is dataTxn once acquire gave the range: it runs the change
// on the children taking part, settles the outcome and releases the range.
func (r *Replicate) dataTxnHeld(ctx context.Context, ino *inode, rf *replFd, off, length uint64, part []bool, start time.Time, op func(ctx context.Context, i int) error) ([]bool, error) {
	var t [3]time.Time // start, locked, fop done: for the slow-change log
	t[0] = start
	t[1] = time.Now()
	// A slow child is cut only once the others that took the change
	// include a good copy: cutting the last one would leave the change
	// on stale copies alone, and fail it (validWrite), while that child
	// was only slow.
	lr := r.fanoutLagCut(ctx, part, op, nil, func(ok []bool) bool { return r.validWrite(ino, ok) }, fop.DataHoldOf(ctx))
	rs := lr.rs
	t[2] = time.Now()
	defer func() {
		if end := time.Now(); end.Sub(t[0]) >= slowChange {
			r.log.Warn("slow data change", zap.Stringer("gfid", ino.gfid), zap.Uint64("offset", off),
				zap.Duration("took", end.Sub(t[0])), zap.Duration("lock wait", t[1].Sub(t[0])),
				zap.Duration("bricks", t[2].Sub(t[1])), zap.Duration("after", end.Sub(t[2])), zap.Any("replies", replyTimes(rs, t[1])))
		}
	}()
	ok, err := r.outcome(rs, part)
	if err != nil && !symmetric(rs, part) {
		// Too few took it once the lagging were cut: they may have
		// taken it after all (a slow brick, not a stuck one), and
		// waiting for them beats failing the write.
		ok, err = r.recoverCut(lr, part, ok, err)
	}
	if afterChangeHook != nil {
		afterChangeHook(ino)
	}
	if err == nil && !r.validWrite(ino, ok) {
		// A quorum took the change, but only stale copies: the one good
		// copy failed it (hung to the fop timeout, or gone). Accusing it
		// from the stale ones would leave the file without a source
		// (split-brain): fail the write, accuse nobody, and leave dirty
		// raised, so that the heal compares the copies and takes the
		// good one as source (AFR's in-flight split-brain). Unless a
		// good copy was only cut as slow, and took it after all.
		if ok = r.rescueGood(ctx, ino, lr, rf, part, ok, rs); !r.validWrite(ino, ok) {
			return ok, r.failNoGoodCopy(ino, off, length)
		}
	}
	now := false
	flushedCut := false // the cut children that took the change were flushed already
	switch {
	case err != nil && !symmetric(rs, part):
		// Too few bricks took the change: leave dirty raised and accuse
		// nobody; the heal daemon compares the copies.
		ino.mu.Lock()
		ino.noPostOp, ino.noJoin = true, true
		ino.mu.Unlock()
		if r.validWrite(ino, ok) {
			// Only with a good copy among those that took it are the
			// others known stale; else the good copy stays readable
			// (it holds all but this failed change).
			r.unreadable(ino, and(part, not(ok)), slotData)
		}
		now = true
	case err == nil && count(ok) < count(part):
		if rf != nil {
			frs := r.flushFd(ctx, rf, ok)
			flushed := succeeded(frs, ok)
			if !r.hasQuorum(flushed) {
				// A child cut for lagging may hold the change after
				// all: flushed too, it can make up the quorum.
				flushedCut = true
				more := and(lr.awaitCut(), not(ok))
				if count(more) > 0 {
					for i, m := range more {
						if m {
							rs[i] = reply{done: true, at: time.Now()}
						}
					}
					mrs := r.flushFd(ctx, rf, more)
					for i, m := range more {
						if m {
							frs[i] = mrs[i]
						}
					}
					flushed = or(flushed, succeeded(mrs, more))
					ok = or(ok, more)
				}
			}
			if !r.hasQuorum(flushed) {
				err = r.quorumErr("FSYNC", frs, ok)
			}
			ok = flushed
			if err == nil && !r.validWrite(ino, ok) {
				// The good copy failed the flush: as when it fails
				// the change, accuse nobody.
				return ok, r.failNoGoodCopy(ino, off, length)
			}
		}
		failed := and(part, not(ok))
		var why []string
		for i, f := range failed {
			switch {
			case !f:
			case rs[i].err != nil:
				why = append(why, rs[i].err.Error())
			default:
				why = append(why, r.kids[i].Name()+": the change was not flushed (FSYNC failed)")
			}
		}
		r.log.Warn("data change failed on bricks", zap.Stringer("gfid", ino.gfid), zap.Strings("errors", why))
		if err == nil {
			// Marked before they are accused, in one step with the
			// check that a good copy stays among ok: a write failing
			// on another brick at the same time cannot pass the check
			// too and blame the last good copy.
			if !r.claimBlame(ino, ok, failed, slotData) {
				ok = r.rescueGood(ctx, ino, lr, rf, part, ok, rs)
				if failed = and(part, not(ok)); !r.validWrite(ino, ok) || !r.claimBlame(ino, ok, failed, slotData) {
					return ok, r.failNoGoodCopy(ino, off, length)
				}
			}
		} else if r.validWrite(ino, ok) {
			r.unreadable(ino, failed, slotData)
		}
		accused := true
		if err == nil {
			err = r.accuse(ctx, ino.gfid, ino.owner, ok, failed, slotData, nil)
			accused = err == nil
			if err != nil && !flushedCut {
				// The accusation fell short of quorum: a brick that took
				// the change failed it (hung, or gone) after the lagging
				// were cut. If every brick accused was only cut, and took
				// the change after all (flushed too), none needs accusing:
				// the change stands on the bricks that took it. They stay
				// marked for heal, as the accusation may have reached some.
				if back := r.tookItLate(ctx, lr, rf, failed); count(back) == count(failed) && r.hasQuorum(or(ok, back)) {
					r.log.Warn("the accusation of bricks cut for lagging fell short of quorum, but they took the change after all: it stands",
						zap.Stringer("gfid", ino.gfid), zap.Error(err))
					for i, b := range back {
						if b {
							rs[i] = reply{done: true, at: time.Now()}
						}
					}
					ok, err = or(ok, back), nil
				}
			}
		}
		ino.mu.Lock()
		ino.part = and(ino.part, not(failed))
		// Left out of the lock's children without a quorum recording
		// it (even when this change stands), a brick would miss the
		// changes of fops joining the lock with nobody accusing it.
		ino.noJoin = ino.noJoin || !accused || err != nil
		if err != nil {
			// The change failed with the copies' states unrecorded:
			// dirty stays raised, as for a change short of quorum.
			ino.noPostOp = true
		}
		ino.mu.Unlock()
		now = true
	}
	if err == nil && !r.validWrite(ino, ok) {
		err = &fop.OpError{Brick: r.name, Fop: "WRITE", GFID: ino.gfid, Errno: syscall.EIO,
			Err: errors.New("the change reached only bricks that hold a stale copy")}
		ino.mu.Lock()
		ino.noJoin = true
		ino.mu.Unlock()
		now = true
	}
	r.release(ino, off, length, now)
	return ok, err
}

// afterChangeHook, when set (tests), runs once a data change's replies
// are in, before they are judged: where a concurrent change's outcome
// lands in the race the tests recreate.
var afterChangeHook func(ino *inode)

// rescueGood is for a change left without a good copy among ok, although
// when the slow children were cut one remained (another change has since
// found it stale): it waits for the cut calls and returns ok with those
// that took the change after all (flushed through rf), marking them done
// in rs. A good copy cut only for being slow then carries the change.
func (r *Replicate) rescueGood(ctx context.Context, ino *inode, lr lagReplies, rf *replFd, part, ok []bool, rs []reply) []bool {
	wait := and(part, not(ok))
	for i := range wait {
		wait[i] = wait[i] && lr.cut[i] != nil
	}
	if !r.validWrite(ino, wait) {
		// No good copy among those cut: waiting cannot help, and the
		// EIO comes now.
		return ok
	}
	back := r.tookItLate(ctx, lr, rf, wait)
	for i, b := range back {
		if b {
			rs[i] = reply{done: true, at: time.Now()}
		}
	}
	return or(ok, back)
}

// failNoGoodCopy ends a change that only stale copies of ino's data took
// (the one good copy failed it): it leaves dirty raised for the heal to
// compare the copies, accuses nobody, gives the lock up and returns EIO.
func (r *Replicate) failNoGoodCopy(ino *inode, off, length uint64) error {
	ino.mu.Lock()
	ino.noPostOp, ino.noJoin = true, true
	ino.mu.Unlock()
	r.release(ino, off, length, true)
	return r.errNoGoodCopy(ino, "WRITE")
}

// recoverCut waits for the children cut from a change that then fell
// short of quorum; those that took it after all count.
func (r *Replicate) recoverCut(lr lagReplies, part, ok []bool, err error) ([]bool, error) {
	more := and(lr.awaitCut(), part)
	if count(more) == 0 {
		return ok, err
	}
	for i, m := range more {
		if m {
			lr.rs[i] = reply{done: true, at: time.Now()}
		}
	}
	ok = or(ok, more)
	if r.hasQuorum(ok) {
		return ok, nil
	}
	return ok, err
}

// tookItLate waits for the calls of the children in failed that were cut
// for lagging, and returns those that took the change after all (and,
// through rf, were then flushed).
func (r *Replicate) tookItLate(ctx context.Context, lr lagReplies, rf *replFd, failed []bool) []bool {
	back := and(lr.awaitCut(), failed)
	if rf == nil || count(back) == 0 {
		return back
	}
	frs := r.flushFd(ctx, rf, back)
	return succeeded(frs, back)
}

// flushFd flushes the data of rf (FSYNC, datasync) on the children in
// set: those that took a change are made to hold it before their word
// vouches for it.
func (r *Replicate) flushFd(ctx context.Context, rf *replFd, set []bool) []reply {
	return r.fanout(ctx, set, func(ctx context.Context, i int) error {
		cf, err := r.child(ctx, rf, i)
		if err != nil {
			return err
		}
		return fop.ErrOnly(r.kids[i].Fsync(ctx, cf, true, nil))
	})
}

// validWrite refuses a change that landed only on children known to be
// stale (afr_is_write_subvol_valid).
func (r *Replicate) validWrite(ino *inode, ok []bool) bool {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return anyGood(ino.readable, ok)
}

// validMeta is validWrite for the metadata, which it checks only while a
// good copy is known: ok includes a child known to hold good metadata, or
// none is known.
func (r *Replicate) validMeta(ino *inode, ok []bool) bool {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return keepsGood(ino.metaRead, ok)
}

// keepsGood reports whether ok includes a child of good, or good holds
// none (nil: not known; all false: every copy accused, which AFR leaves
// to the heal for metadata and entries).
func keepsGood(good, ok []bool) bool {
	return count(good) == 0 || anyGood(good, ok)
}

// anyGood reports whether ok includes a child of good, or good is not
// known (nil).
func anyGood(good, ok []bool) bool {
	if good == nil {
		return true
	}
	for i := range ok {
		if ok[i] && good[i] {
			return true
		}
	}
	return false
}

// fdData runs a data change through an fd on every child taking part.
// With pres and posts it answers the attributes before and after the
// change of the child pick chooses (both from the same child).
func (r *Replicate) fdData(ctx context.Context, f *fop.Fd, off, length uint64, pres, posts []xdr.Iatt, op func(ctx context.Context, i int, cf *fop.Fd) error) (pre, post xdr.Iatt, err error) {
	rf, err := r.rfd(f)
	if err != nil {
		return pre, post, err
	}
	return r.rfData(ctx, rf, off, length, pres, posts, op)
}

func (r *Replicate) rfData(ctx context.Context, rf *replFd, off, length uint64, pres, posts []xdr.Iatt, op func(ctx context.Context, i int, cf *fop.Fd) error) (pre, post xdr.Iatt, err error) {
	pre, post, _, err = r.rfDataAt(ctx, rf, off, length, pres, posts, op)
	return pre, post, err
}

// rfDataAt is rfData that also says whose attributes it answered (-1:
// none). op's results for a child are read only when it succeeded: the
// call of a child cut for lagging goes on after rfDataAt returns.
func (r *Replicate) rfDataAt(ctx context.Context, rf *replFd, off, length uint64, pres, posts []xdr.Iatt, op func(ctx context.Context, i int, cf *fop.Fd) error) (pre, post xdr.Iatt, at int, err error) {
	ok, err := r.dataTxn(ctx, rf.ino, rf, off, length, func(ctx context.Context, i int) error {
		cf, err := r.child(ctx, rf, i)
		if err != nil {
			return err
		}
		return op(ctx, i, cf)
	})
	if err != nil || posts == nil {
		return pre, post, -1, err
	}
	i := r.pickIndex(rf.ino, ok)
	if i < 0 {
		return pre, post, -1, nil
	}
	if pres != nil {
		pre = pres[i]
	}
	post = posts[i]
	// A child that wrote to a file no longer named (unlinked by another
	// client while this one held it open) says so with nlink 0: the
	// caller must hear it whichever child answers for the set.
	for j := range ok {
		if ok[j] && posts[j].Nlink < post.Nlink {
			post.Nlink = posts[j].Nlink
		}
	}
	return pre, post, i, nil
}
