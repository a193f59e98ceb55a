package afr

import (
	"context"
	"errors"
	"math"
	"sort"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Lock ranges: data transactions lock the whole file, metadata
// transactions the single byte AFR reserves for them (LLONG_MAX-1), in the
// same domain (afr_set_transaction_flock, afr-inode-write.c).
var (
	dataRange = xdr.Flock{Type: fop.LkWrite}
	metaRange = xdr.Flock{Type: fop.LkWrite, Start: math.MaxInt64 - 1}
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
	rs := r.fanout(ctx, set, func(ctx context.Context, i int) error { return lock(ctx, i, false) })
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
		for i := range r.kids {
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
	return r.takeLocks(internal(ctx, ino.owner), set, func(ctx context.Context, i int, block bool) error {
		cmd := uint32(fop.LkSet)
		if block {
			cmd = fop.LkSetW
		}
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, ino.gfid, r.name, cmd, fl, nil))
	}, func(locked []bool) { r.unlockInode(ctx, ino, locked, fl) })
}

func (r *Replicate) unlockInode(ctx context.Context, ino *inode, locked []bool, fl xdr.Flock) {
	ictx := internal(ctx, ino.owner)
	r.fanout(ictx, locked, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, ino.gfid, r.name, fop.LkSet, unlockOf(fl), nil))
	})
}

// xattrop sends an ADD_ARRAY changelog update to the children in set and
// returns which applied it and, when they are too few for quorum, the
// error for the caller: the bricks' own errno (an ENOSPC or EDQUOT of the
// changelog is the caller's, as AFR keeps it from the changelog callback),
// else ENOTCONN.
func (r *Replicate) xattrop(ctx context.Context, gfid xdr.GFID, owner []byte, set []bool, dirty counts, pending map[int]counts, xdata xdr.Dict) ([]bool, error) {
	dict := r.changelog(dirty, pending)
	rs := r.fanout(internal(ctx, owner), set, func(ctx context.Context, i int) error {
		_, _, err := r.kids[i].Xattrop(ctx, gfid, xattropAddArray, dict, xdata)
		return err
	})
	for i, rp := range rs {
		if set[i] && rp.err != nil {
			r.log.Warn("changelog update failed", zap.String("brick", r.kids[i].Name()), zap.Stringer("gfid", gfid), zap.Error(rp.err))
		}
	}
	ok := succeeded(rs, set)
	var fail error
	if !r.hasQuorum(ok) {
		fail = r.quorumErr("XATTROP", rs, set)
	}
	return ok, fail
}

// quorumErr is the error of a fop that succeeded on too few children of
// set: the bricks' own errno by afr_final_errno's order, ENOTCONN ("client
// quorum is not met") when none gave one.
func (r *Replicate) quorumErr(op string, rs []reply, set []bool) error {
	err := r.finalErr(rs, set)
	if fop.Errno(err) == syscall.ENOTCONN {
		return r.errNoQuorum(op)
	}
	return err
}

// blame builds pending +1 in slot for every child in who.
func blame(who []bool, slot int) map[int]counts {
	m := map[int]counts{}
	for i, w := range who {
		if w {
			m[i] = slotOnly(slot, 1)
		}
	}
	return m
}

func not(set []bool) []bool {
	o := make([]bool, len(set))
	for i, v := range set {
		o[i] = !v
	}
	return o
}

func and(a, b []bool) []bool {
	o := make([]bool, len(a))
	for i := range a {
		o[i] = a[i] && b[i]
	}
	return o
}

func clone(b []bool) []bool { return append([]bool(nil), b...) }

// accuse records on the children in to that the children in who missed a
// change of kind slot. It must reach quorum before the change may be
// acknowledged: that is what keeps an acknowledged write from being lost
// to a heal in the wrong direction.
func (r *Replicate) accuse(ctx context.Context, gfid xdr.GFID, owner []byte, to, who []bool, slot int, xdata xdr.Dict) error {
	if count(who) == 0 {
		return nil
	}
	var names []string
	for i, w := range who {
		if w {
			names = append(names, r.kids[i].Name())
		}
	}
	r.log.Warn("change missed bricks; marking them for heal", zap.Stringer("gfid", gfid), zap.Strings("bricks", names), zap.Int("slot", slot))
	if slot != slotEntry {
		r.noteHeal(gfid, slot)
	}
	ok, fail := r.xattrop(ctx, gfid, owner, to, counts{}, blame(who, slot), xdata)
	if !r.hasQuorum(ok) {
		return fail
	}
	if count(r.up()) == r.n() {
		// The accused brick is up (it failed the fop itself): nothing
		// else wakes the heal worker.
		r.kickHeal()
	}
	return nil
}

// outcome judges a fop's replies on part. It returns the children that
// succeeded and the error for the caller: a symmetric error, no quorum,
// or nil; failed children left to accuse are part minus ok.
func (r *Replicate) outcome(rs []reply, part []bool) (ok []bool, err error) {
	ok = succeeded(rs, part)
	switch {
	case count(ok) == count(part):
		return ok, nil
	case count(ok) == 0 && symmetric(rs, part):
		return ok, r.finalErr(rs, part)
	case !r.hasQuorum(ok):
		// Succeeded on too few: report the failure with the bricks' own
		// errno (afr_final_errno), ENOTCONN when they had none.
		return ok, r.quorumErr("", rs, part)
	}
	return ok, nil
}

// --- data transactions: eager lock and delayed post-op ---

// dataTxn runs op on the children taking part in the inode's eager data
// lock. off and length order overlapping changes: they never run at once,
// so all replicas apply them in the same order.
//
// rf, when the change goes through an fd, lets the survivors be flushed
// before they are told that a brick missed the change, so the accusation
// never reaches their disks before the data it vouches for
// (ensure-durability, afr_changelog_post_op_safe).
func (r *Replicate) dataTxn(ctx context.Context, ino *inode, rf *replFd, off, length uint64, op func(ctx context.Context, i int) error) ([]bool, error) {
	var t [3]time.Time // start, locked, fop done: for the slow-change log
	t[0] = time.Now()
	part, err := r.acquire(ctx, ino, off, length)
	if err != nil {
		return nil, err
	}
	t[1] = time.Now()
	rs := r.fanout(ctx, part, op)
	t[2] = time.Now()
	defer func() {
		if end := time.Now(); end.Sub(t[0]) >= slowChange {
			r.log.Warn("slow data change", zap.Stringer("gfid", ino.gfid), zap.Uint64("offset", off),
				zap.Duration("took", end.Sub(t[0])), zap.Duration("lock wait", t[1].Sub(t[0])),
				zap.Duration("bricks", t[2].Sub(t[1])), zap.Duration("after", end.Sub(t[2])), zap.Any("replies", replyTimes(rs, t[1])))
		}
	}()
	ok, err := r.outcome(rs, part)
	now := false
	switch {
	case err != nil && !symmetric(rs, part):
		// Too few bricks took the change: leave dirty raised and accuse
		// nobody; the heal daemon compares the copies.
		ino.mu.Lock()
		ino.noPostOp = true
		ino.mu.Unlock()
		r.unreadable(ino, and(part, not(ok)), slotData)
		now = true
	case err == nil && count(ok) < count(part):
		if rf != nil {
			frs := r.fanout(ctx, ok, func(ctx context.Context, i int) error {
				cf, err := r.child(ctx, rf, i)
				if err != nil {
					return err
				}
				return fop.ErrOnly(r.kids[i].Fsync(ctx, cf, true, nil))
			})
			flushed := succeeded(frs, ok)
			if !r.hasQuorum(flushed) {
				err = r.quorumErr("FSYNC", frs, ok)
			}
			ok = flushed
		}
		failed := and(part, not(ok))
		r.unreadable(ino, failed, slotData)
		if err == nil {
			err = r.accuse(ctx, ino.gfid, ino.owner, ok, failed, slotData, nil)
		}
		ino.mu.Lock()
		ino.part = and(ino.part, not(failed))
		ino.mu.Unlock()
		now = true
	}
	if err == nil && !r.validWrite(ino, ok) {
		err = &fop.OpError{Brick: r.name, Fop: "WRITE", GFID: ino.gfid, Errno: syscall.EIO,
			Err: errors.New("the change reached only bricks that hold a stale copy")}
		now = true
	}
	r.release(ino, off, length, now)
	return ok, err
}

// unreadable stops reads from children that missed a change, at once:
// the cached readable set would otherwise send a read to the stale copy
// until the next refresh.
func (r *Replicate) unreadable(ino *inode, who []bool, slot int) {
	if count(who) == 0 {
		return
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for i, w := range who {
		if !w {
			continue
		}
		if slot == slotMeta {
			if ino.metaRead != nil {
				ino.metaRead[i] = false
			}
		} else if ino.readable != nil {
			ino.readable[i] = false
		}
	}
}

// contended notes that another client waits for the inode's lock: the
// eager lock is given up as soon as the fops in flight are done.
func (r *Replicate) contended(ino *inode) {
	ino.mu.Lock()
	ino.releaseNow = true
	ino.mu.Unlock()
}

// validWrite refuses a change that landed only on children known to be
// stale (afr_is_write_subvol_valid).
func (r *Replicate) validWrite(ino *inode, ok []bool) bool {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if ino.readable == nil {
		return true
	}
	for i := range ok {
		if ok[i] && ino.readable[i] {
			return true
		}
	}
	return false
}

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
func (r *Replicate) acquire(ctx context.Context, ino *inode, off, length uint64) ([]bool, error) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for {
		gen := r.gen.Load()
		switch {
		case ino.changing:
			ino.cond.Wait()
		case ino.held && ino.lockGen != gen:
			// A child came or went since the lock was taken: release it
			// and take it again over the children up now.
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
			locked, part, err := r.takeDataLock(ctx, ino)
			ino.mu.Lock()
			ino.changing = false
			ino.cond.Broadcast()
			if err != nil {
				return nil, err
			}
			ino.held, ino.lockGen, ino.locked, ino.part = true, gen, locked, part
		}
	}
}

// takeDataLock locks the inode on the children up and raises dirty in the
// pre-op; a child already down is accused right there.
func (r *Replicate) takeDataLock(ctx context.Context, ino *inode) (locked, part []bool, err error) {
	up := r.up()
	if !r.hasQuorum(up) {
		return nil, nil, r.errNoQuorum("FINODELK")
	}
	locked, err = r.lockInode(ctx, ino, up, dataRange)
	if err != nil {
		r.unlockInode(ctx, ino, locked, dataRange)
		return nil, nil, err
	}
	part, fail := r.xattrop(ctx, ino.gfid, ino.owner, locked, slotOnly(slotData, 1), blame(not(locked), slotData), nil)
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
		_, _ = r.xattrop(ctx, ino.gfid, ino.owner, and(part, r.up()), slotOnly(slotData, -1), nil, nil)
	}
	r.unlockInode(ctx, ino, and(locked, r.up()), dataRange)
	ino.mu.Lock()
	ino.held, ino.changing, ino.locked, ino.part = false, false, nil, nil
	ino.releaseNow, ino.noPostOp = false, false
	ino.cond.Broadcast()
}

// --- metadata transactions ---

// metaTxn runs a metadata change (setattr, setxattr, removexattr) under
// AFR's metadata lock. With every child locked it sends no changelog (the
// optimistic changelog); otherwise pre-op and post-op around the change.
func (r *Replicate) metaTxn(ctx context.Context, ino *inode, op func(ctx context.Context, i int) error) ([]bool, error) {
	up := r.up()
	if !r.hasQuorum(up) {
		return nil, r.errNoQuorum("INODELK")
	}
	locked, err := r.lockInode(ctx, ino, up, metaRange)
	if err != nil {
		r.unlockInode(ctx, ino, locked, metaRange)
		return nil, err
	}
	defer r.unlockInode(ctx, ino, locked, metaRange)
	optimistic := count(locked) == r.n()
	part := locked
	if !optimistic {
		var fail error
		part, fail = r.xattrop(ctx, ino.gfid, ino.owner, locked, slotOnly(slotMeta, 1), blame(not(locked), slotMeta), nil)
		if !r.hasQuorum(part) {
			return nil, fail
		}
		r.noteHeal(ino.gfid, slotMeta)
	}
	rs := r.fanout(ctx, part, op)
	ok, err := r.outcome(rs, part)
	if err != nil {
		return ok, err
	}
	if failed := and(part, not(ok)); count(failed) > 0 {
		r.unreadable(ino, failed, slotMeta)
		if err := r.accuse(ctx, ino.gfid, ino.owner, ok, failed, slotMeta, nil); err != nil {
			return ok, err
		}
	}
	if !optimistic {
		_, _ = r.xattrop(ctx, ino.gfid, ino.owner, ok, slotOnly(slotMeta, -1), nil, nil)
	}
	return ok, nil
}

// --- entry transactions ---

// entry names a directory entry: the lock target and changelog subject of
// entry operations.
type entry struct {
	parent xdr.GFID
	name   string
}

// changed lists the entries whose parent's changelog an entry operation
// updates: a NULL name only locks a whole directory (rmdir's victim).
func changed(names []entry) []entry {
	out := make([]entry, 0, len(names))
	for _, e := range names {
		if e.name != "" {
			out = append(out, e)
		}
	}
	return out
}

func entryXdata(key, name string) xdr.Dict {
	return xdr.Dict{{Key: key, Value: xdr.Str(name)}}
}

// entryTxn runs an entry operation (create, mkdir, unlink, rename...)
// under entry locks on names, with the parents' changelog when a child is
// missing: the entry slot, and the name filed for granular entry heal
// (glusterfs.xattrop-entry-create).
//
// created, when set, runs after a creation succeeded on a quorum, still
// under the locks and before the parents' post-op, to mark the new inode
// for heal on the bricks that missed it (afr_mark_new_entry_changelog).
func (r *Replicate) entryTxn(ctx context.Context, names []entry, op func(ctx context.Context, i int) error, created func(ctx context.Context, ok []bool)) ([]bool, error) {
	up := r.up()
	if !r.hasQuorum(up) {
		return nil, r.errNoQuorum("ENTRYLK")
	}
	sort.Slice(names, func(a, b int) bool {
		if names[a].parent != names[b].parent {
			return string(names[a].parent[:]) < string(names[b].parent[:])
		}
		return names[a].name < names[b].name
	})
	owner := newOwner()
	locked, err := r.lockEntries(ctx, owner, names, up)
	if err != nil {
		r.unlockEntries(ctx, owner, names, locked)
		return nil, err
	}
	defer r.unlockEntries(ctx, owner, names, locked)
	optimistic := count(locked) == r.n()
	part := locked
	if !optimistic {
		var fail error
		for _, e := range changed(names) {
			done, f := r.xattrop(ctx, e.parent, owner, locked, slotOnly(slotEntry, 1), blame(not(locked), slotEntry),
				entryXdata("glusterfs.xattrop-entry-create", e.name))
			if !r.hasQuorum(done) {
				fail = f
			}
			part = and(part, done)
		}
		if !r.hasQuorum(part) {
			if fail == nil {
				fail = r.errNoQuorum("XATTROP")
			}
			return nil, fail
		}
	}
	rs := r.fanout(ctx, part, op)
	ok, err := r.outcome(rs, part)
	if err != nil {
		r.entryTooFew(ctx, owner, names, rs, part, ok, optimistic)
		return ok, err
	}
	if created != nil {
		created(ctx, ok)
	}
	if count(ok) < r.n() {
		for _, e := range changed(names) {
			r.noteEntryHeal(e.parent, e.name)
		}
	}
	if failed := and(part, not(ok)); count(failed) > 0 {
		for _, e := range changed(names) {
			if err := r.accuse(ctx, e.parent, owner, ok, failed, slotEntry, entryXdata("glusterfs.xattrop-entry-create", e.name)); err != nil {
				return ok, err
			}
		}
	}
	if !optimistic {
		for _, e := range changed(names) {
			_, _ = r.xattrop(ctx, e.parent, owner, ok, slotOnly(slotEntry, -1), nil, nil)
		}
	}
	return ok, nil
}

// entryTooFew records an entry change that some bricks took but too few
// for quorum: the caller gets an error while those bricks hold the change.
// AFR leaves the parent dirty on the bricks that took it
// (afr_handle_quorum, afr_need_dirty_marking), which a heal resolves by a
// conservative merge: a name removed on a minority comes back, but a
// name created on a minority stays. brickfs does better where the other
// bricks refused the change themselves with a namespace errno (ENOTEMPTY,
// EEXIST, ENOENT...) and the parent's changelog vouches for them: what they
// hold is what the caller was told, so they blame every other brick of the
// transaction, and a heal makes those match them (an rmdir refused as
// ENOTEMPTY by two bricks of three has its directory put back on the
// third). Otherwise, or if that mark cannot be written, the parent is left
// dirty on the bricks that took the change, as AFR does.
func (r *Replicate) entryTooFew(ctx context.Context, owner []byte, names []entry, rs []reply, part, ok []bool, optimistic bool) {
	if count(ok) == 0 {
		return
	}
	refused := make([]bool, r.n())
	for i, rp := range rs {
		refused[i] = part[i] && !ok[i] && rp.done && namespaceRefusal(rp.err)
	}
	others := and(part, not(refused))
	var took []string
	for i, v := range ok {
		if v {
			took = append(took, r.kids[i].Name())
		}
	}
	// With every brick up nothing else wakes the heal worker.
	defer r.kickHeal()
	for _, e := range changed(names) {
		r.noteEntryHeal(e.parent, e.name)
		xd := entryXdata("glusterfs.xattrop-entry-create", e.name)
		if count(refused) > 0 && r.vouchedFor(ctx, e.parent, part, refused) {
			done, _ := r.xattrop(ctx, e.parent, owner, refused, counts{}, blame(others, slotEntry), xd)
			if count(done) > 0 {
				r.log.Warn("an entry change reached too few bricks; the bricks that refused it mark the others for heal",
					zap.Stringer("parent", e.parent), zap.String("name", e.name), zap.Strings("took it", took))
				continue
			}
		}
		r.log.Warn("an entry change reached too few bricks; leaving the parent dirty for heal",
			zap.Stringer("parent", e.parent), zap.String("name", e.name), zap.Strings("took it", took))
		if optimistic {
			// Without a pre-op nothing is raised yet; with one, dirty
			// stays raised on every brick of the transaction.
			_, _ = r.xattrop(ctx, e.parent, owner, ok, slotOnly(slotEntry, 1), nil, xd)
		}
	}
}

// namespaceRefusal reports whether err is a brick's own answer about its
// namespace (the name exists, does not, the directory is not empty...),
// as opposed to a failure that leaves unknown whether the brick applied
// the change (a lost connection, a timeout, a cancelled call).
func namespaceRefusal(err error) bool {
	var oe *fop.OpError
	if !errors.As(err, &oe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch oe.Errno {
	case syscall.ENOTEMPTY, syscall.EEXIST, syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR:
		return true
	}
	return false
}

// vouchedFor reports whether the parent's entry changelog, read on the
// bricks of set, accuses none of who: they are not known to miss changes.
func (r *Replicate) vouchedFor(ctx context.Context, parent xdr.GFID, set, who []bool) bool {
	mx, read := r.readMatrixSlot(ctx, r.inode(parent), set, slotEntry)
	if !read {
		return false
	}
	_, sinks := r.direction(mx)
	return count(and(sinks, who)) == 0
}

// lockEntries takes the entry locks on names, in their sorted order, on
// each child; a child that fails one gives back the ones it took.
func (r *Replicate) lockEntries(ctx context.Context, owner []byte, names []entry, set []bool) ([]bool, error) {
	return r.takeLocks(internal(ctx, owner), set, func(ctx context.Context, i int, block bool) error {
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
	}, func(locked []bool) { r.unlockEntries(ctx, owner, names, locked) })
}

func (r *Replicate) unlockEntries(ctx context.Context, owner []byte, names []entry, locked []bool) {
	r.fanout(internal(ctx, owner), locked, func(ctx context.Context, i int) error {
		for _, e := range names {
			_, _ = r.kids[i].Entrylk(ctx, e.parent, e.name, r.name, fop.EntrylkUnlock, fop.LkWrite, nil)
		}
		return nil
	})
}

// markNewEntry accuses, on the new inode itself, the children where a
// create failed, so the heal daemon creates it there with its data and
// metadata (afr_mark_new_entry_changelog).
func (r *Replicate) markNewEntry(ctx context.Context, st xdr.Iatt, ok []bool) {
	if ok == nil || count(ok) == r.n() || st.GFID.IsZero() {
		return
	}
	if done := r.markNew(ctx, st, ok, not(ok)); !r.hasQuorum(done) {
		r.log.Error("could not mark a new entry for heal on enough bricks; run `gluster volume heal VOLUME full`", zap.Stringer("gfid", st.GFID))
	}
}

// markNew records, on the bricks of to, that the bricks of missing lack
// the new inode st or hold only a fresh empty copy of it
// (afr_mark_pending_changelog): metadata always, data for a regular file,
// entries and a full data heal for a directory. It queues the inode for
// brickfs's own heal and returns where the marks landed.
func (r *Replicate) markNew(ctx context.Context, st xdr.Iatt, to, missing []bool) []bool {
	c := counts{0, 1, 0}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		c = counts{1, 1, 1}
		r.noteEntryHeal(st.GFID, "")
	case syscall.S_IFREG:
		c[slotData] = 1
		r.noteHeal(st.GFID, slotData)
	}
	r.noteHeal(st.GFID, slotMeta)
	pending := map[int]counts{}
	for i, v := range missing {
		if v {
			pending[i] = c
		}
	}
	done, _ := r.xattrop(ctx, st.GFID, nil, to, counts{}, pending, nil)
	return done
}
