package afr

import (
	"context"
	"errors"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Create creates name on every child with one gfid and opens it.
func (r *Replicate) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	kids := make([]*fop.Fd, r.n())
	sts := make([]xdr.Iatt, r.n())
	ok, err := r.entryTxn(ctx, []entry{{parent, name}}, func(ctx context.Context, i int) error {
		var err error
		kids[i], sts[i], _, err = r.kids[i].Create(ctx, parent, name, flags, mode, umask, gfid, xd)
		return err
	}, func(ctx context.Context, ok []bool) {
		// The new inode is the one made with our gfid, when any brick
		// made it; bricks that opened another file under the name missed
		// it too.
		g := sts[first(ok)].GFID
		for i := range ok {
			if ok[i] && sts[i].GFID == gfid {
				g = gfid
				break
			}
		}
		r.markNewEntry(ctx, xdr.Iatt{GFID: g, Mode: sts[first(ok)].Mode}, and(ok, r.holding(sts, g)))
	})
	if err != nil {
		r.releaseKids(ctx, kids)
		return nil, xdr.Iatt{}, nil, err
	}
	g, ok, err := r.oneFile(ctx, parent, name, ok, sts, kids)
	if err != nil {
		r.releaseKids(ctx, kids)
		return nil, xdr.Iatt{}, nil, err
	}
	ino := r.inode(g)
	if g == gfid {
		// A new file: every brick that made it holds a good copy.
		r.setReadable(ino, ok, make([]xdr.Dict, r.n()), false, r.gen.Load())
	}
	return r.newFd(ino, flags&^uint32(syscall.O_CREAT|syscall.O_EXCL|syscall.O_TRUNC), false, kids), r.pick(ino, ok, sts), nil, nil
}

// holding is the set of children whose iatt names inode g.
func (r *Replicate) holding(sts []xdr.Iatt, g xdr.GFID) []bool {
	h := make([]bool, r.n())
	for i := range sts {
		h[i] = sts[i].GFID == g
	}
	return h
}

// oneFile settles which file a create without O_EXCL opened: a brick
// that already held the name opens that file, so the bricks may answer
// different inodes. The bricks whose copy of the parent's entries is good
// decide; a brick behind on them (it missed an unlink while away) that
// opened an old file under the name is left out of this fd and its name
// queued for entry heal. Good bricks that disagree are a gfid
// split-brain: EIO. It returns the inode and the children that hold it.
func (r *Replicate) oneFile(ctx context.Context, parent xdr.GFID, name string, ok []bool, sts []xdr.Iatt, kids []*fop.Fd) (xdr.GFID, []bool, error) {
	g := sts[first(ok)].GFID
	if count(and(ok, r.holding(sts, g))) == count(ok) {
		return g, ok, nil
	}
	pino := r.inode(parent)
	_ = r.freshen(ctx, pino, nil) // what is known (or nothing) decides when it fails
	pino.mu.Lock()
	pr := pino.readable
	pino.mu.Unlock()
	good := ok
	if pr != nil && count(and(ok, pr)) > 0 {
		good = and(ok, pr)
	}
	g = sts[first(good)].GFID
	if count(and(good, r.holding(sts, g))) != count(good) {
		r.splitBrainSeen()
		r.log.Error("gfid split-brain: bricks hold different files under one name; resolve it with `gluster volume heal VOLUME split-brain ...`",
			zap.Stringer("parent", parent), zap.String("name", name))
		return g, nil, &fop.OpError{Brick: r.name, Fop: "CREATE", GFID: parent, Errno: syscall.EIO, Err: errors.New("gfid split-brain")}
	}
	ok = clone(ok)
	for i := range ok {
		if ok[i] && sts[i].GFID != g {
			r.log.Warn("a brick behind on the directory opened an old file under the name; it is left out and healed",
				zap.String("brick", r.kids[i].Name()), zap.Stringer("parent", parent), zap.String("name", name))
			_ = r.kids[i].Release(ctx, kids[i])
			kids[i], ok[i] = nil, false
			r.noteEntryHeal(parent, name)
		}
	}
	r.kickHeal()
	return g, ok, nil
}

// Mkdir creates a directory on every child with one gfid.
func (r *Replicate) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return r.newEntry(ctx, parent, name, true, func(ctx context.Context, i int) (xdr.Iatt, xdr.Dict, error) {
		return r.kids[i].Mkdir(ctx, parent, name, mode, umask, gfid, xd)
	})
}

// Mknod creates a node on every child with one gfid.
func (r *Replicate) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return r.newEntry(ctx, parent, name, false, func(ctx context.Context, i int) (xdr.Iatt, xdr.Dict, error) {
		return r.kids[i].Mknod(ctx, parent, name, mode, rdev, umask, gfid, xd)
	})
}

// Symlink creates a symlink on every child with one gfid.
func (r *Replicate) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return r.newEntry(ctx, parent, name, false, func(ctx context.Context, i int) (xdr.Iatt, xdr.Dict, error) {
		return r.kids[i].Symlink(ctx, parent, name, target, umask, gfid, xd)
	})
}

// Link adds a hard link on every child.
func (r *Replicate) Link(ctx context.Context, gfid, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	sts := make([]xdr.Iatt, r.n())
	ok, err := r.entryTxn(ctx, []entry{{newParent, newName}}, func(ctx context.Context, i int) error {
		var err error
		sts[i], _, err = r.kids[i].Link(ctx, gfid, newParent, newName, xd)
		return err
	}, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return r.pick(r.inode(gfid), ok, sts), nil, nil
}

// Unlink removes name on every child and answers the reply xdata of the
// first child that removed it (gf_get_file_block_count, for the shard
// layer).
func (r *Replicate) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	rxs := make([]xdr.Dict, r.n())
	ok, err := r.entryTxn(ctx, []entry{{parent, name}}, func(ctx context.Context, i int) error {
		var err error
		rxs[i], err = r.kids[i].Unlink(ctx, parent, name, xd)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	for i := range ok {
		if ok[i] {
			return rxs[i], nil
		}
	}
	return nil, nil
}

// Rmdir removes an empty directory on every child, also locking the
// directory itself (a NULL name), so no other client creates in it
// meanwhile (afr_rmdir).
func (r *Replicate) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	names := []entry{{parent, name}}
	if st, _, err := r.Lookup(ctx, parent, name, xdr.GFID{}, nil); err == nil {
		names = append(names, entry{st.GFID, ""})
	} else if fop.Errno(err) == syscall.ENOENT {
		return nil, err
	}
	_, err := r.entryTxn(ctx, names, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Rmdir(ctx, parent, name, flags, xd))
	}, nil)
	return nil, err
}

// Rename renames on every child under locks on both names.
func (r *Replicate) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	sts := make([]xdr.Iatt, r.n())
	names := []entry{{oldParent, oldName}, {newParent, newName}}
	ok, err := r.entryTxn(ctx, names, func(ctx context.Context, i int) error {
		var err error
		sts[i], _, err = r.kids[i].Rename(ctx, oldParent, oldName, newParent, newName, xd)
		return err
	}, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return sts[first(ok)], nil, nil
}

// Setattr changes attributes on every child.
func (r *Replicate) Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if valid&fop.SetAttrSize != 0 {
		return pre, post, nil, errors.New("afr: size changes go through Truncate")
	}
	ino := r.inode(gfid)
	sts := make([]xdr.Iatt, r.n())
	ok, err := r.metaTxn(ctx, ino, nil, func(ctx context.Context, i int) error {
		var err error
		_, sts[i], _, err = r.kids[i].Setattr(ctx, gfid, attr, valid, xd)
		return err
	})
	if err != nil {
		return pre, post, nil, err
	}
	return pre, r.pick(ino, ok, sts), nil, nil
}

// Fsetattr is Setattr through an open file.
func (r *Replicate) Fsetattr(ctx context.Context, f *fop.Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	sts := make([]xdr.Iatt, r.n())
	rf, fn, err := r.withFd(f, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		_, sts[i], _, err = r.kids[i].Fsetattr(ctx, cf, attr, valid, xd)
		return err
	})
	if err != nil {
		return pre, post, nil, err
	}
	ok, err := r.metaTxn(ctx, rf.ino, rf, fn)
	if err != nil {
		return pre, post, nil, err
	}
	return pre, r.pick(rf.ino, ok, sts), nil, nil
}

// Setxattr sets xattrs on every child. The changelog is AFR's own.
func (r *Replicate) Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error) {
	for _, p := range dict {
		if len(p.Key) >= len("trusted.afr.") && p.Key[:len("trusted.afr.")] == "trusted.afr." {
			return nil, &fop.OpError{Brick: r.name, Fop: "SETXATTR", GFID: gfid, Errno: syscall.EPERM, Err: errors.New("the replication changelog is not settable")}
		}
	}
	_, err := r.metaTxn(ctx, r.inode(gfid), nil, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Setxattr(ctx, gfid, dict, flags, xd))
	})
	return nil, err
}

// Removexattr removes an xattr on every child.
func (r *Replicate) Removexattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	_, err := r.metaTxn(ctx, r.inode(gfid), nil, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Removexattr(ctx, gfid, name, xd))
	})
	return nil, err
}

// Truncate sets the size on every child.
func (r *Replicate) Truncate(ctx context.Context, gfid xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	ino := r.inode(gfid)
	sts := make([]xdr.Iatt, r.n())
	ok, err := r.dataTxn(ctx, ino, nil, 0, whole, func(ctx context.Context, i int) error {
		var err error
		_, sts[i], _, err = r.kids[i].Truncate(ctx, gfid, size, xd)
		return err
	})
	if err != nil {
		return pre, post, nil, err
	}
	return pre, r.pick(ino, ok, sts), nil, nil
}

// Ftruncate sets the size of an open file on every child.
func (r *Replicate) Ftruncate(ctx context.Context, f *fop.Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	sts := make([]xdr.Iatt, r.n())
	_, post, err = r.fdData(ctx, f, 0, whole, nil, sts, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		_, sts[i], _, err = r.kids[i].Ftruncate(ctx, cf, size, xd)
		return err
	})
	return pre, post, nil, err
}

// arbiterByte is what AFR writes to an arbiter brick, which keeps no data.
var arbiterByte = []byte{0xff}

// Write writes data on every child taking part. The same bytes go to
// every child; the arbiter gets one byte at the offset. Each write asks
// the bricks how many inodelks wait in the replica's domain, as AFR does:
// more than ours means another client wants the file, and the eager lock
// is given up right after.
func (r *Replicate) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xdata xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	rf, err := r.rfd(f)
	if err != nil {
		return pre, post, nil, err
	}
	// AFR's own question (how many wait in its domain) goes with every
	// write, whatever the caller asked; its answer is AFR's, not the
	// caller's.
	x := r.domCount
	if len(xdata) > 0 {
		x = append(xdr.Dict{}, xdata...).With(r.domCount[0].Key, r.domCount[0].Value)
	}
	pres := make([]xdr.Iatt, r.n())
	sts := make([]xdr.Iatt, r.n())
	rxs := make([]xdr.Dict, r.n())
	pre, post, i, err := r.rfDataAt(ctx, rf, off, uint64(len(data)), pres, sts, func(ctx context.Context, i int, cf *fop.Fd) error {
		d := data
		if i == r.opts.Arbiter {
			d = arbiterByte
		}
		return r.writeChild(ctx, i, cf, off, d, x, rf, &pres[i], &sts[i], &rxs[i])
	})
	if err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	// The reply xdata of the child whose attributes are answered.
	if i < 0 {
		return pre, post, nil, nil
	}
	for _, p := range rxs[i] {
		if p.Key != inodelkCount {
			rx = append(rx, p)
		}
	}
	return pre, post, rx, nil
}

// writeChild is one child's part of Write.
func (r *Replicate) writeChild(ctx context.Context, i int, cf *fop.Fd, off uint64, d []byte, x xdr.Dict, rf *replFd, pre, st *xdr.Iatt, rx *xdr.Dict) error {
	var err error
	cycle := rf.ino.cycle.Load() // the lock this write is sent under
	*pre, *st, *rx, err = r.kids[i].Write(ctx, cf, off, d, x)
	if n, ok := rx.Uint(inodelkCount); ok && n > 1 {
		r.contended(rf.ino, i, cycle, n)
	}
	return err
}

// inodelkCount is the bricks' answer to glusterfs.inodelk-dom-count.
const inodelkCount = "glusterfs.inodelk-count"

// Fsync flushes every child taking part.
func (r *Replicate) Fsync(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	_, _, err := r.fdData(ctx, f, whole, 0, nil, nil, func(ctx context.Context, i int, cf *fop.Fd) error {
		return fop.ErrOnly(r.kids[i].Fsync(ctx, cf, datasync, xd))
	})
	return nil, err
}

// Fsyncdir flushes a directory on every child that is up.
func (r *Replicate) Fsyncdir(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	_, fn, err := r.withFd(f, func(ctx context.Context, i int, cf *fop.Fd) error {
		return fop.ErrOnly(r.kids[i].Fsyncdir(ctx, cf, datasync, xd))
	})
	if err != nil {
		return nil, err
	}
	up := r.up()
	_, err = r.outcome(r.fanout(ctx, up, fn), up)
	return nil, err
}

// Fallocate allocates on every child taking part.
func (r *Replicate) Fallocate(ctx context.Context, f *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return r.rangeChange(ctx, f, off, length, func(ctx context.Context, i int, cf *fop.Fd) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
		return r.kids[i].Fallocate(ctx, cf, mode, off, length, xd)
	})
}

// Discard punches a hole on every child taking part.
func (r *Replicate) Discard(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return r.rangeChange(ctx, f, off, length, func(ctx context.Context, i int, cf *fop.Fd) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
		return r.kids[i].Discard(ctx, cf, off, length, xd)
	})
}

// Zerofill zeroes a range on every child taking part.
func (r *Replicate) Zerofill(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return r.rangeChange(ctx, f, off, length, func(ctx context.Context, i int, cf *fop.Fd) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
		return r.kids[i].Zerofill(ctx, cf, off, length, xd)
	})
}

// rangeChange runs a change of [off, off+length) that answers the
// attributes before and after it (fallocate, discard, zerofill) as a data
// transaction on every child taking part.
func (r *Replicate) rangeChange(ctx context.Context, f *fop.Fd, off, length uint64, call func(ctx context.Context, i int, cf *fop.Fd) (xdr.Iatt, xdr.Iatt, xdr.Dict, error)) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	pres, posts := make([]xdr.Iatt, r.n()), make([]xdr.Iatt, r.n())
	pre, post, err = r.fdData(ctx, f, off, length, pres, posts, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		pres[i], posts[i], _, err = call(ctx, i, cf)
		return err
	})
	return pre, post, nil, err
}

// ZerofillKeepSize carries out fallocate(ZERO_RANGE|KEEP_SIZE) on every
// child taking part, under the data lock over the whole file: no other
// client's write or truncate moves EOF between a child's fstat and its
// ZEROFILL, which would otherwise grow the file back (see fop.ZeroKeepSize).
func (r *Replicate) ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error {
	_, _, err := r.fdData(ctx, f, 0, whole, nil, nil, func(ctx context.Context, i int, cf *fop.Fd) error {
		return fop.ZeroKeepSize(ctx, r.kids[i], cf, off, length)
	})
	return err
}

// Flush passes close(2) to every child, with the caller's lock owner, and
// finishes the eager lock now rather than at the post-op timer.
func (r *Replicate) Flush(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Dict, error) {
	rf, err := r.rfd(f)
	if err != nil {
		return nil, err
	}
	r.postOpNow(rf.ino)
	rf.mu.Lock()
	open := make([]bool, r.n())
	for i, cf := range rf.kids {
		open[i] = cf != nil && r.kids[i].Up()
	}
	kids := append([]*fop.Fd(nil), rf.kids...)
	rf.mu.Unlock()
	r.fanout(ctx, open, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Flush(ctx, kids[i], xd))
	})
	return nil, nil
}

// Lk takes POSIX locks on every child that is up, one after the other; a
// conflict on any undoes the others (afr_lk).
func (r *Replicate) Lk(ctx context.Context, f *fop.Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error) {
	rf, err := r.rfd(f)
	if err != nil {
		return xdr.Flock{}, nil, err
	}
	up := r.up()
	if !r.hasQuorum(up) {
		return xdr.Flock{}, nil, r.errNoQuorum("LK")
	}
	if cmd == fop.LkGet {
		var out xdr.Flock
		err := r.readTxnFd(ctx, rf, false, func(ctx context.Context, i int) error {
			cf, err := r.child(ctx, rf, i)
			if err != nil {
				return err
			}
			out, _, err = r.kids[i].Lk(ctx, cf, cmd, fl, xd)
			return err
		})
		return out, nil, err
	}
	var got []int
	var out xdr.Flock
	var lastErr error
	for i := range r.kids {
		if !up[i] {
			continue
		}
		cf, err := r.child(ctx, rf, i)
		if err == nil {
			out, _, err = r.kids[i].Lk(ctx, cf, cmd, fl, xd)
		}
		if err == nil {
			got = append(got, i)
			continue
		}
		if fop.Errno(err) != syscall.ENOTCONN || fl.Type == fop.LkUnlock {
			lastErr = err
			if fl.Type == fop.LkUnlock {
				continue
			}
			un := fl
			un.Type = fop.LkUnlock
			for _, j := range got {
				if cj, e := r.child(ctx, rf, j); e == nil {
					_, _, _ = r.kids[j].Lk(context.WithoutCancel(ctx), cj, fop.LkSet, un, nil)
				}
			}
			return xdr.Flock{}, nil, err
		}
		lastErr = err
	}
	if fl.Type != fop.LkUnlock && !r.hasQuorum(boolsOf(got, r.n())) {
		if lastErr == nil {
			lastErr = r.errNoQuorum("LK")
		}
		return xdr.Flock{}, nil, lastErr
	}
	return out, nil, nil
}
