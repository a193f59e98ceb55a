package afr

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// The fops a parent layer drives through the replica set rather than
// through a brick: inode and entry locks in the parent's own domains
// (distribute's dht.layout.heal, dht.entry.sync), xattrop (shard's file
// size), copy_file_range.

// Inodelk takes or drops an inode lock in the caller's domain on every
// child that is up, as afr_inodelk does: a lock holds when a quorum of
// children granted it (the rest is undone otherwise).
func (r *Replicate) Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	if domain == r.name {
		return nil, r.ownDomain("INODELK", gfid)
	}
	return nil, r.lockFop(ctx, "INODELK", gfid, lockKey(ctx, gfid, "", domain), nil, fl.Type == fop.LkUnlock, cmd, fop.LkSetW,
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
	return nil, r.lockFop(ctx, "FINODELK", f.GFID, lockKey(ctx, f.GFID, "", domain), rf, fl.Type == fop.LkUnlock, cmd, fop.LkSetW,
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
	return nil, r.lockFop(ctx, "ENTRYLK", parent, lockKey(ctx, parent, "/"+name, domain), nil, cmd == fop.EntrylkUnlock, lcmd, fop.LkSetW,
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
// up, as afr_fop_lock does. An unlock goes to every child that is up,
// with or without quorum (a lock left on one brick would block every
// other client once the rest came back). A lock is tried on all children
// at once without blocking; if a child reports a conflict, what was
// granted is undone and the lock is taken child after child in index
// order (blocking or not, as asked), so two clients never each hold a part
// and retry forever. It holds when a quorum of children granted it.
//
// A blocking wait runs apart from the caller: when the caller gives up
// (an interrupted fcntl), it answers EINTR at once, and whatever the
// bricks grant later is released again rather than held by an owner that
// left.
func (r *Replicate) lockFop(ctx context.Context, op string, g xdr.GFID, key string, rf *replFd, unlock bool, cmd, blockingCmd uint32,
	call func(ctx context.Context, i int, cmd uint32, fl xdr.Flock) error, fl xdr.Flock) error {
	if !unlock {
		// An earlier blocking request of this owner that its caller gave
		// up is still queued on a brick: this one waits for it to be
		// granted and given back, or the give-back would release this
		// one's grants.
		if ch := r.abandonedOf(key); ch != nil {
			if cmd != blockingCmd {
				return &fop.OpError{Brick: r.name, Fop: op, GFID: g, Errno: syscall.EAGAIN}
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return r.gaveUp(op, g, ctx)
			}
		}
	}
	up := r.up()
	if unlock {
		rs := r.fanout(context.WithoutCancel(ctx), up, func(ctx context.Context, i int) error {
			return call(ctx, i, fop.LkSet, fl)
		})
		if ok := succeeded(rs, up); count(ok) == 0 {
			return r.finalErr(rs, up)
		}
		return nil
	}
	if !r.hasQuorum(up) {
		return r.errNoQuorum(op)
	}
	if cmd == fop.LkGet {
		get := func(ctx context.Context, i int) error { return call(ctx, i, fop.LkGet, fl) }
		if rf != nil {
			return r.readTxnFd(ctx, rf, false, get)
		}
		return r.readTxn(ctx, g, false, get)
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
	// One child after the other, in index order.
	serial := func(ctx context.Context) ([]bool, error) {
		got := make([]bool, r.n())
		var lastErr error
		for i := range r.kids {
			if !up[i] {
				continue
			}
			err := call(ctx, i, cmd, fl)
			if err == nil {
				got[i] = true
				continue
			}
			lastErr = err
			if fop.Errno(err) != syscall.ENOTCONN {
				undo(got)
				return nil, err
			}
		}
		if !r.hasQuorum(got) {
			undo(got)
			if lastErr == nil {
				lastErr = r.errNoQuorum(op)
			}
			return nil, lastErr
		}
		return got, nil
	}
	if cmd != blockingCmd {
		_, err := serial(ctx)
		return err
	}
	type result struct {
		got []bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := serial(context.WithoutCancel(ctx))
		done <- result{got, err}
	}()
	select {
	case res := <-done:
		return res.err
	case <-ctx.Done():
		gone := r.abandon(key)
		go func() {
			if res := <-done; res.err == nil {
				undo(res.got)
			}
			r.settled(key, gone)
		}()
		return r.gaveUp(op, g, ctx)
	}
}

// lockKey names one owner's lock requests on one inode (or entry) in one
// domain.
func lockKey(ctx context.Context, g xdr.GFID, entry, domain string) string {
	var owner []byte
	if c := fop.CallerOf(ctx); c != nil {
		owner = c.LkOwner
	}
	return string(g[:]) + entry + "\x00" + domain + "\x00" + string(owner)
}

// gaveUp is the answer to a lock request whose caller stopped waiting:
// EINTR when interrupted, ETIMEDOUT when its deadline passed.
func (r *Replicate) gaveUp(op string, g xdr.GFID, ctx context.Context) error {
	en := syscall.EINTR
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		en = syscall.ETIMEDOUT
	}
	return &fop.OpError{Brick: r.name, Fop: op, GFID: g, Errno: en, Err: ctx.Err()}
}

// abandonedOf returns the channel closed when key's abandoned request is
// settled, or nil if there is none.
func (r *Replicate) abandonedOf(key string) chan struct{} {
	r.abandonMu.Lock()
	defer r.abandonMu.Unlock()
	return r.abandoned[key]
}

// abandon records that key's blocking request was left to finish alone.
func (r *Replicate) abandon(key string) chan struct{} {
	r.abandonMu.Lock()
	defer r.abandonMu.Unlock()
	if r.abandoned == nil {
		r.abandoned = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	r.abandoned[key] = ch
	return ch
}

// settled ends an abandoned request: what it was granted is given back.
func (r *Replicate) settled(key string, ch chan struct{}) {
	r.abandonMu.Lock()
	if r.abandoned[key] == ch {
		delete(r.abandoned, key)
	}
	r.abandonMu.Unlock()
	close(ch)
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
	ok, err := r.metaTxn(ctx, ino, nil, func(ctx context.Context, i int) error {
		var err error
		outs[i], _, err = r.kids[i].Xattrop(ctx, gfid, flags, dict, xd)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return r.xattropResult("XATTROP", ino, ok, outs)
}

// freshen makes sure the inode's readable children are known for this
// generation of child events, and returns the refresh's error: a change
// does not go on what it knew before a child event or a heal, as AFR fails
// a write transaction whose inode refresh fails (afr_write_txn_refresh_done).
// Callers that only read may ignore it.
func (r *Replicate) freshen(ctx context.Context, ino *inode, rf *replFd) error {
	ino.mu.Lock()
	fresh := ino.readable != nil && ino.readGen == r.gen.Load()
	ino.mu.Unlock()
	if fresh {
		return nil
	}
	_, _, err := r.refresh(ctx, ino, rf)
	return err
}

// xattropResult is the value an xattrop answers: that of a brick whose
// metadata is good, as AFR takes the reply of its metadata read child. A
// brick whose metadata is accused may hold a different value (it missed
// an earlier xattrop); with no good brick among those that applied it,
// the value is unknown: EIO.
func (r *Replicate) xattropResult(op string, ino *inode, ok []bool, outs []xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	i := r.bestMeta(ino, ok)
	if i < 0 {
		return nil, nil, &fop.OpError{Brick: r.name, Fop: op, GFID: ino.gfid, Errno: syscall.EIO,
			Err: errors.New("no brick that applied it holds good metadata: its result is unknown")}
	}
	return outs[i], nil, nil
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
	ok, err := r.metaTxn(ctx, rf.ino, rf, fn)
	if err != nil {
		return nil, nil, err
	}
	return r.xattropResult("FXATTROP", rf.ino, ok, outs)
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

// copyRound bounds one round of a copy: each round is its own data
// transaction, bounded by fop-timeout, so a brick that copies by reading
// and writing (no reflink) is never dropped for a long copy and never
// stalls its other clients for more than one round.
var copyRound uint64 = 64 << 20

// CopyFileRange copies a range from in to out on every child, round by
// round (copyRound bytes each), as data transactions on out: each brick
// copies from its own copy of in (and reflinks where its filesystem can).
// The source is locked for the round too, so no write reaches some copies
// of it and not others while they are copied, and which copies of it are
// good is read under that lock: a child whose copy is not takes no part
// and is accused for out. The arbiter keeps no data and copies nothing.
// A round advances by the smallest count any child copied; a short round
// ends the copy (the source's end of file). An error after some rounds
// answers the bytes copied so far.
func (r *Replicate) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	rin, err := r.rfd(in)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	rout, err := r.rfd(out)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	if rin.ino == rout.ino && offIn < offOut+size && offOut < offIn+size {
		return 0, xdr.Iatt{}, nil, &fop.OpError{Brick: r.name, Fop: "COPY_FILE_RANGE", GFID: in.GFID, Errno: syscall.EINVAL,
			Err: errors.New("source and destination ranges of one file overlap")}
	}
	var total uint64
	var post xdr.Iatt
	for total < size {
		n := min(size-total, copyRound)
		got, p, err := r.copyOnce(ctx, rin, offIn+total, rout, offOut+total, n, flags, xd)
		if err != nil {
			if total > 0 {
				return total, post, nil, nil
			}
			return 0, xdr.Iatt{}, nil, err
		}
		total, post = total+got, p
		if got < n {
			break
		}
	}
	return total, post, nil, nil
}

// copyOnce is one round of CopyFileRange. Within one file it holds one
// range covering both parts (two would wait for each other when a brick
// event has the eager lock taken again); across two files it takes both
// ranges in the order of their gfids, so two clients copying in opposite
// directions never deadlock. Writes to the source's range wait for the
// round.
func (r *Replicate) copyOnce(ctx context.Context, rin *replFd, offIn uint64, rout *replFd, offOut, n uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, error) {
	start := time.Now()
	type rng struct {
		ino      *inode
		off, len uint64
	}
	var dstHeld rng // what dataTxnHeld releases
	var srcHeld *rng
	var partDst []bool
	if rin.ino == rout.ino {
		lo := min(offIn, offOut)
		dstHeld = rng{rout.ino, lo, max(offIn, offOut) + n - lo}
		p, err := r.acquire(ctx, dstHeld.ino, rout, dstHeld.off, dstHeld.len)
		if err != nil {
			return 0, xdr.Iatt{}, err
		}
		partDst = p
	} else {
		src, dst := rng{rin.ino, offIn, n}, rng{rout.ino, offOut, n}
		fds := map[*inode]*replFd{rin.ino: rin, rout.ino: rout}
		first, second := src, dst
		if bytes.Compare(dst.ino.gfid[:], src.ino.gfid[:]) < 0 {
			first, second = dst, src
		}
		p1, err := r.acquire(ctx, first.ino, fds[first.ino], first.off, first.len)
		if err != nil {
			return 0, xdr.Iatt{}, err
		}
		p2, err := r.acquire(ctx, second.ino, fds[second.ino], second.off, second.len)
		if err != nil {
			r.release(first.ino, first.off, first.len, false)
			return 0, xdr.Iatt{}, err
		}
		partDst = p2
		if first == dst {
			partDst = p1
		}
		dstHeld, srcHeld = dst, &src
	}
	releaseSrc := func() {
		if srcHeld != nil {
			r.release(srcHeld.ino, srcHeld.off, srcHeld.len, false)
		}
	}
	// Which copies of the source are good, read under its lock; what the
	// replica set believes of the whole file is left alone (this round
	// holds only a range of it).
	_, srcOK, _, dicts, _, err := r.probe(ctx, rin.ino, rin)
	if err != nil {
		releaseSrc()
		r.release(dstHeld.ino, dstHeld.off, dstHeld.len, false)
		return 0, xdr.Iatt{}, err
	}
	good, _ := r.readableFrom(srcOK, dicts, false)
	// What this mount remembers of the source (a brick that missed one
	// of its writes) counts unless every brick answered with a clean
	// changelog: then whoever healed it (the self-heal daemon does not
	// tell this mount) is done, and under this round's lock the source's
	// range is the same on every brick.
	if clean := count(srcOK) == r.n() && r.changelogClean(dicts); !clean {
		rin.ino.mu.Lock()
		if rin.ino.readable != nil && rin.ino.readGen == r.gen.Load() {
			good = and(good, rin.ino.readable)
		}
		rin.ino.mu.Unlock()
	}
	defer releaseSrc()
	sts := make([]xdr.Iatt, r.n())
	ns := make([]uint64, r.n())
	ok, err := r.dataTxnHeld(ctx, rout.ino, rout, dstHeld.off, dstHeld.len, partDst, start, func(ctx context.Context, i int) error {
		cf, err := r.child(ctx, rout, i)
		if err != nil {
			return err
		}
		if i == r.opts.Arbiter {
			sts[i], _, err = r.kids[i].Fstat(ctx, cf, nil)
			return err
		}
		if !good[i] {
			return &fop.OpError{Brick: r.kids[i].Name(), Fop: "COPY_FILE_RANGE", GFID: rin.ino.gfid, Errno: syscall.ESTALE,
				Err: errors.New("this brick's copy of the source is not readable")}
		}
		cin, err := r.child(ctx, rin, i)
		if err != nil {
			return err
		}
		ns[i], sts[i], _, err = r.kids[i].CopyFileRange(ctx, cin, offIn, cf, offOut, n, flags, xd)
		return err
	})
	if err != nil {
		return 0, xdr.Iatt{}, err
	}
	got, any := uint64(0), false
	// Only the children that succeeded: a cut child's call may still run.
	for i, c := range ok {
		if c && i != r.opts.Arbiter && (!any || ns[i] < got) {
			got, any = ns[i], true
		}
	}
	return got, r.pick(rout.ino, ok, sts), nil
}
