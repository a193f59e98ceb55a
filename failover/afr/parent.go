package afr

import (
	"context"
	"errors"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Inodelk takes or drops an inode lock in the caller's domain on every
// child that is up, as afr_inodelk does: a lock holds when a quorum of
// children granted it (the rest is undone otherwise).
func (r *Replicate) Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	if domain == r.name {
		return nil, r.ownDomain("INODELK", gfid)
	}
	return nil, r.lockFop(ctx, "INODELK", gfid, fl.Type == fop.LkUnlock, cmd, fop.LkSetW,
		func(ctx context.Context, i int, cmd uint32, fl xdr.Flock) error {
			return fop.ErrOnly(r.kids[i].Inodelk(ctx, gfid, domain, cmd, fl, xd))
		}, fl)
}

// Finodelk is Inodelk through an open file.
func (r *Replicate) Finodelk(ctx context.Context, f *fop.Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	if domain == r.name {
		return nil, r.ownDomain("FINODELK", f.GFID)
	}
	rf, err := r.rfd(f)
	if err != nil {
		return nil, err
	}
	return nil, r.lockFop(ctx, "FINODELK", f.GFID, fl.Type == fop.LkUnlock, cmd, fop.LkSetW,
		func(ctx context.Context, i int, cmd uint32, fl xdr.Flock) error {
			cf, err := r.child(ctx, rf, i)
			if err != nil {
				return err
			}
			return fop.ErrOnly(r.kids[i].Finodelk(ctx, cf, domain, cmd, fl, xd))
		}, fl)
}

// Entrylk takes or drops an entry lock in the caller's domain on every
// child that is up (afr_entrylk).
func (r *Replicate) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	if domain == r.name {
		return nil, r.ownDomain("ENTRYLK", parent)
	}
	// Entry locks speak their own commands; map them onto the inode
	// lock shapes lockFop knows: Lock is blocking, LockNB not.
	lcmd := uint32(fop.LkSet)
	if cmd == fop.EntrylkLock {
		lcmd = fop.LkSetW
	}
	fl := xdr.Flock{Type: typ}
	if cmd == fop.EntrylkUnlock {
		fl.Type = fop.LkUnlock
	}
	return nil, r.lockFop(ctx, "ENTRYLK", parent, cmd == fop.EntrylkUnlock, lcmd, fop.LkSetW,
		func(ctx context.Context, i int, c uint32, fl xdr.Flock) error {
			ec := uint32(fop.EntrylkLockNB)
			switch {
			case fl.Type == fop.LkUnlock:
				ec = fop.EntrylkUnlock
			case c == fop.LkSetW:
				ec = fop.EntrylkLock
			}
			return fop.ErrOnly(r.kids[i].Entrylk(ctx, parent, name, domain, ec, typ, xd))
		}, fl)
}

// ownDomain refuses a parent's lock in the replica set's own domain: the
// transactions' locks would then be released by a stranger.
func (r *Replicate) ownDomain(op string, g xdr.GFID) error {
	return &fop.OpError{Brick: r.name, Fop: op, GFID: g, Errno: syscall.EINVAL, Err: errors.New("lock domain is the replica set's own")}
}

// lockFop carries out a parent's lock command over the children that are
// up, as afr_fop_lock does. An unlock goes to every child that is up. A
// lock is tried on all of them at once without blocking; if a child
// reports a conflict, what was granted is undone and, for a blocking
// command, the lock is then taken child after child in index order (so two
// clients never each hold a part and wait for the rest). It holds when a
// quorum of children granted it.
func (r *Replicate) lockFop(ctx context.Context, op string, g xdr.GFID, unlock bool, cmd, blockingCmd uint32,
	call func(ctx context.Context, i int, cmd uint32, fl xdr.Flock) error, fl xdr.Flock) error {
	up := r.up()
	if !r.hasQuorum(up) {
		return r.errNoQuorum(op)
	}
	if unlock {
		rs := r.fanout(context.WithoutCancel(ctx), up, func(ctx context.Context, i int) error {
			return call(ctx, i, fop.LkSet, fl)
		})
		if ok := succeeded(rs, up); count(ok) == 0 {
			return r.finalErr(rs, up)
		}
		return nil
	}
	if cmd == fop.LkGet {
		return r.readTxn(ctx, g, false, func(ctx context.Context, i int) error {
			return call(ctx, i, fop.LkGet, fl)
		})
	}
	undo := func(got []bool) {
		un := fl
		un.Type = fop.LkUnlock
		r.fanout(context.WithoutCancel(ctx), got, func(ctx context.Context, i int) error {
			return call(ctx, i, fop.LkSet, un)
		})
	}
	rs := r.fanout(ctx, up, func(ctx context.Context, i int) error {
		return call(ctx, i, fop.LkSet, fl)
	})
	got := succeeded(rs, up)
	conflict := false
	for i, rp := range rs {
		if up[i] && rp.err != nil && fop.Errno(rp.err) == syscall.EAGAIN {
			conflict = true
		}
	}
	if !conflict {
		if r.hasQuorum(got) {
			return nil
		}
		undo(got)
		return r.quorumErr(op, rs, up)
	}
	undo(got)
	if cmd != blockingCmd {
		return &fop.OpError{Brick: r.name, Fop: op, GFID: g, Errno: syscall.EAGAIN}
	}
	got = make([]bool, r.n())
	var lastErr error
	for i := range r.kids {
		if !up[i] {
			continue
		}
		err := call(ctx, i, blockingCmd, fl)
		if err == nil {
			got[i] = true
			continue
		}
		lastErr = err
		if fop.Errno(err) != syscall.ENOTCONN {
			undo(got)
			return err
		}
	}
	if !r.hasQuorum(got) {
		undo(got)
		if lastErr == nil {
			lastErr = r.errNoQuorum(op)
		}
		return lastErr
	}
	return nil
}

// Xattrop applies an xattrop on every child as a metadata transaction
// (afr_xattrop) and returns the values of the first child that applied
// it, readable children first.
func (r *Replicate) Xattrop(ctx context.Context, gfid xdr.GFID, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if err := r.changelogKeys("XATTROP", gfid, dict); err != nil {
		return nil, nil, err
	}
	ino := r.inode(gfid)
	outs := make([]xdr.Dict, r.n())
	ok, err := r.metaTxn(ctx, ino, func(ctx context.Context, i int) error {
		var err error
		outs[i], _, err = r.kids[i].Xattrop(ctx, gfid, flags, dict, xd)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return outs[r.best(ino, ok)], nil, nil
}

// Fxattrop is Xattrop through an open file.
func (r *Replicate) Fxattrop(ctx context.Context, f *fop.Fd, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if err := r.changelogKeys("FXATTROP", f.GFID, dict); err != nil {
		return nil, nil, err
	}
	outs := make([]xdr.Dict, r.n())
	rf, fn, err := r.withFd(f, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		outs[i], _, err = r.kids[i].Fxattrop(ctx, cf, flags, dict, xd)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	ok, err := r.metaTxn(ctx, rf.ino, fn)
	if err != nil {
		return nil, nil, err
	}
	return outs[r.best(rf.ino, ok)], nil, nil
}

// changelogKeys refuses a parent's change to the replication changelog,
// which is the replica set's own.
func (r *Replicate) changelogKeys(op string, g xdr.GFID, dict xdr.Dict) error {
	for _, p := range dict {
		if len(p.Key) >= len("trusted.afr.") && p.Key[:len("trusted.afr.")] == "trusted.afr." {
			return &fop.OpError{Brick: r.name, Fop: op, GFID: g, Errno: syscall.EPERM, Err: errors.New("the replication changelog is not settable")}
		}
	}
	return nil
}

// CopyFileRange copies a range from in to out on every child as a data
// transaction on out: each brick copies from its own copy of in (and
// reflinks where its filesystem can). A child whose copy of in is not
// readable takes no part and is accused for out; the arbiter keeps no
// data and copies nothing. The count is the smallest any child copied.
func (r *Replicate) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	rin, err := r.rfd(in)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	rout, err := r.rfd(out)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	if _, err := r.readOrder(ctx, rin.ino, rin, false); err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	rin.ino.mu.Lock()
	src := clone(rin.ino.readable)
	rin.ino.mu.Unlock()
	sts := make([]xdr.Iatt, r.n())
	ns := make([]uint64, r.n())
	copied := make([]bool, r.n())
	post, err := r.rfData(ctx, rout, offOut, size, sts, func(ctx context.Context, i int, cf *fop.Fd) error {
		if i == r.opts.Arbiter {
			var err error
			sts[i], _, err = r.kids[i].Fstat(ctx, cf, nil)
			return err
		}
		if src == nil || !src[i] {
			return &fop.OpError{Brick: r.kids[i].Name(), Fop: "COPY_FILE_RANGE", GFID: in.GFID, Errno: syscall.ESTALE,
				Err: errors.New("this brick's copy of the source is not readable")}
		}
		cin, err := r.child(ctx, rin, i)
		if err != nil {
			return err
		}
		ns[i], sts[i], _, err = r.kids[i].CopyFileRange(ctx, cin, offIn, cf, offOut, size, flags, xd)
		copied[i] = err == nil
		return err
	})
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	n, any := uint64(0), false
	for i, c := range copied {
		if c && (!any || ns[i] < n) {
			n, any = ns[i], true
		}
	}
	return n, post, nil, nil
}
