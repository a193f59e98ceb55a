package afr

import (
	"context"
	"errors"
	"sort"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

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
//
// As for data (takeDataLock), the children that hold the only good copy
// of a parent's entries (its ino.readable) are not left out for lagging
// nor cut when slow, and a change that only stale copies of a parent
// would take fails (EIO) without blaming anyone.
func (r *Replicate) entryTxn(ctx context.Context, names []entry, op func(ctx context.Context, i int) error, created func(ctx context.Context, ok []bool)) ([]bool, error) {
	up := r.changeSet()
	parents := r.entryParents(names)
	for _, p := range parents {
		if err := r.freshen(ctx, p, nil); err != nil {
			return nil, err
		}
		up = r.keepingGood(up, r.goodCopies(p))
	}
	// hasGood: ok includes a good copy of every parent's entries.
	hasGood := func(ok []bool) bool {
		for _, p := range parents {
			if !keepsGood(r.goodCopies(p), ok) {
				return false
			}
		}
		return true
	}
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
	locked, err := r.lockEntries(ctx, owner, names, up, hasGood)
	if err != nil {
		r.unlockEntries(ctx, owner, names, locked)
		return nil, err
	}
	defer r.unlockEntries(ctx, owner, names, locked)
	if !hasGood(locked) {
		return nil, r.errNoGoodCopy(r.noGoodParent(parents, locked), "ENTRYLK")
	}
	optimistic := count(locked) == r.n()
	part := locked
	if !optimistic {
		var fail error
		for _, e := range changed(names) {
			p := r.inode(e.parent)
			// The pre-op blames the children not locked.
			if !r.claimBlame(p, locked, not(locked), slotEntry) {
				return nil, r.errNoGoodCopy(p, "XATTROP")
			}
			done, f := r.xattropIf(ctx, e.parent, owner, locked, slotOnly(slotEntry, 1), blame(not(locked), slotEntry),
				entryXdata("glusterfs.xattrop-entry-create", e.name), func(ok []bool) bool { return keepsGood(r.goodCopies(p), ok) })
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
		if !hasGood(part) {
			// Dirty raised on stale copies only: left for the heal.
			return nil, r.errNoGoodCopy(r.noGoodParent(parents, part), "XATTROP")
		}
		// A child locked but not marked (its pre-op failed, or lagged)
		// misses the change: blamed before it is made.
		if missed := and(locked, not(part)); count(missed) > 0 {
			for _, e := range changed(names) {
				if p := r.inode(e.parent); !r.claimBlame(p, part, missed, slotEntry) {
					return nil, r.errNoGoodCopy(p, "XATTROP")
				}
				if err := r.accuse(ctx, e.parent, owner, part, missed, slotEntry, entryXdata("glusterfs.xattrop-entry-create", e.name)); err != nil {
					return nil, err
				}
			}
		}
	}
	rs := r.fanout(ctx, part, op)
	ok, err := r.outcome(rs, part)
	if err != nil {
		r.entryTooFew(ctx, owner, names, rs, part, ok, optimistic)
		return ok, err
	}
	failed := and(part, not(ok))
	lost := !hasGood(ok)
	for _, p := range parents {
		lost = lost || !r.claimBlame(p, ok, failed, slotEntry)
	}
	if lost {
		// The good copy of a parent failed the change: blaming it from
		// the stale ones would leave no source. Dirty stays raised (or,
		// with the optimistic changelog, the good copy's accusations of
		// the others stand), and the heal takes the good copy's entries.
		for _, e := range changed(names) {
			r.noteEntryHeal(e.parent, e.name)
		}
		// A good copy that refused it itself (the name exists there,
		// or not, the directory is not empty) holds the entries the
		// caller sees: its errno is the answer.
		p := r.noGoodParent(parents, ok)
		good := r.goodCopies(p)
		for i, rp := range rs {
			if part[i] && !ok[i] && i < len(good) && good[i] && rp.done && namespaceRefusal(rp.err) {
				return ok, rp.err
			}
		}
		return ok, r.errNoGoodCopy(p, "entry change")
	}
	if created != nil {
		created(ctx, ok)
	}
	if count(ok) < r.n() {
		for _, e := range changed(names) {
			r.noteEntryHeal(e.parent, e.name)
		}
	}
	if count(failed) > 0 {
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

// entryParents returns the inodes of the directories whose entries
// names change (not a directory only locked whole), each once.
func (r *Replicate) entryParents(names []entry) []*inode {
	var out []*inode
	seen := map[xdr.GFID]bool{}
	for _, e := range changed(names) {
		if !seen[e.parent] {
			seen[e.parent] = true
			out = append(out, r.inode(e.parent))
		}
	}
	return out
}

// noGoodParent returns the parent of which ok holds no good copy.
func (r *Replicate) noGoodParent(parents []*inode, ok []bool) *inode {
	for _, p := range parents {
		if !keepsGood(r.goodCopies(p), ok) {
			return p
		}
	}
	return parents[0]
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

// newEntry runs a creation fop (mkdir, mknod, symlink, link) and marks the
// new inode for heal on the children it missed.
func (r *Replicate) newEntry(ctx context.Context, parent xdr.GFID, name string, dir bool, fn func(ctx context.Context, i int) (xdr.Iatt, xdr.Dict, error)) (xdr.Iatt, xdr.Dict, error) {
	sts := make([]xdr.Iatt, r.n())
	ok, err := r.entryTxn(ctx, []entry{{parent, name}}, func(ctx context.Context, i int) error {
		var err error
		sts[i], _, err = fn(ctx, i)
		return err
	}, func(ctx context.Context, ok []bool) {
		r.markNewEntry(ctx, sts[first(ok)], ok)
	})
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	ino := r.inode(sts[first(ok)].GFID)
	r.setReadable(ino, ok, make([]xdr.Dict, r.n()), dir, r.gen.Load())
	return r.pick(ino, ok, sts), nil, nil
}
