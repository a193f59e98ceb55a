package afr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// refresh looks the inode up on every child that is up and recomputes its
// readable children. With an fd it asks each child through its fd
// (FSTAT with the changelog keys, afr_inode_refresh_subvol_with_fstat):
// a file that is open but unlinked has no gfid handle left on a brick, so
// a lookup by gfid would fail where the fd still reads.
func (r *Replicate) refresh(ctx context.Context, ino *inode, rf *replFd) ([]xdr.Iatt, []bool, error) {
	gen := r.gen.Load()
	sts, ok, unseen, dicts, isDir, err := r.probe(ctx, ino, rf)
	if err != nil {
		return nil, nil, err
	}
	r.refreshReadable(ino, ok, unseen, ok, dicts, isDir, gen)
	return sts, ok, nil
}

// probe asks every child that is up for the inode and its changelog (see
// refresh) without changing what the replica set believes of it. unseen
// are the children connected that gave no answer of their own: lagging,
// cut as slow, or timed out (see refreshReadable).
func (r *Replicate) probe(ctx context.Context, ino *inode, rf *replFd) (sts []xdr.Iatt, ok, unseen []bool, dicts []xdr.Dict, isDir bool, err error) {
	up := r.changeSet() // a lagging child would hold the probe up
	if !r.hasQuorum(up) {
		return nil, nil, nil, nil, false, r.errNoQuorum("LOOKUP")
	}
	// A child still working well after a quorum answered (a frozen
	// brick) is cut, as from a change, rather than waited for up to the
	// fop timeout; its call runs on, so it hands its answer over through
	// got, and only the answers of children that succeeded in time are
	// read.
	type answer struct {
		st xdr.Iatt
		d  xdr.Dict
	}
	got := make([]atomic.Pointer[answer], r.n())
	keys := r.lookupKeys()
	rs := r.fanoutLag(ctx, up, func(ctx context.Context, i int) error {
		var a answer
		var err error
		if rf != nil {
			var cf *fop.Fd
			if cf, err = r.child(ctx, rf, i); err == nil {
				a.st, a.d, err = r.kids[i].Fstat(ctx, cf, keys)
			}
		} else {
			a.st, a.d, err = r.kids[i].Lookup(ctx, xdr.GFID{}, "", ino.gfid, keys)
		}
		got[i].Store(&a)
		return err
	}, nil)
	ok = succeeded(rs, up)
	unseen = r.unseen(rs, ok)
	sts = make([]xdr.Iatt, r.n())
	dicts = make([]xdr.Dict, r.n())
	for i := range ok {
		if ok[i] {
			a := got[i].Load()
			sts[i], dicts[i] = a.st, a.d
		}
	}
	if !r.hasQuorum(ok) {
		// As afr_inode_refresh_done: the bricks' errno when they gave
		// one (an ENOENT while another client removes the file).
		return nil, nil, nil, nil, false, r.quorumErr("LOOKUP", rs, up)
	}
	for i := range ok {
		if ok[i] {
			isDir = sts[i].Mode&syscall.S_IFMT == syscall.S_IFDIR
			break
		}
	}
	return sts, ok, unseen, dicts, isDir, nil
}

// unseen returns the children connected that did not succeed in rs and
// gave no answer of their own (an errno of the brick's): they were not
// asked (lagging), were cut as slow, or timed out.
func (r *Replicate) unseen(rs []reply, ok []bool) []bool {
	out := and(r.up(), not(ok))
	for i, rp := range rs {
		if rp.done && rp.err != nil && ownErrno(rp.err) {
			out[i] = false
		}
	}
	return out
}

// readOrder returns the children to read from, best first: the hash child
// of the gfid if readable (read-hash-mode 1), then the other readable
// children in index order. No readable child is split-brain: EIO.
func (r *Replicate) readOrder(ctx context.Context, ino *inode, rf *replFd, meta bool) ([]int, error) {
	ino.mu.Lock()
	fresh := ino.readable != nil && ino.readGen == r.gen.Load()
	ino.mu.Unlock()
	if !fresh {
		if _, _, err := r.refresh(ctx, ino, rf); err != nil {
			return nil, err
		}
	}
	up := r.up()
	if !r.hasQuorum(up) {
		return nil, r.errNoQuorum("READ")
	}
	ino.mu.Lock()
	cand := and(ino.readable, ino.metaRead)
	if count(and(cand, up)) == 0 {
		cand = ino.readable
		if meta {
			cand = ino.metaRead
		}
	}
	ino.mu.Unlock()
	cand = and(cand, up)
	if count(cand) == 0 {
		var names []string
		for _, k := range r.kids {
			names = append(names, k.Name())
		}
		r.splitBrainSeen()
		r.log.Error("split-brain: no brick holds a copy that the others do not blame; heal it with `gluster volume heal VOLUME split-brain ...`",
			zap.Stringer("gfid", ino.gfid), zap.Strings("bricks", names))
		return nil, &fop.OpError{Brick: r.name, GFID: ino.gfid, Errno: syscall.EIO, Err: errors.New("split-brain: no readable copy")}
	}
	order := make([]int, 0, count(cand))
	h := int(superFastHash(ino.gfid) % uint32(r.n()))
	if cand[h] {
		order = append(order, h)
	}
	for i, c := range cand {
		if c && i != h {
			order = append(order, i)
		}
	}
	// Lagging and slow children (see lag.go) last: they may not answer
	// soon.
	late := r.lagging()
	now := time.Now().UnixNano()
	for i := range late {
		late[i] = late[i] || r.lag.slowUntil[i].Load() > now
	}
	sort.SliceStable(order, func(a, b int) bool { return !late[order[a]] && late[order[b]] })
	return order, nil
}

// retryable errors make a read go to the next readable child.
func retryable(err error) bool {
	switch fop.Errno(err) {
	case syscall.ENOTCONN, syscall.ETIMEDOUT, syscall.EIO, syscall.EBADF, syscall.ESTALE:
		return true
	}
	return false
}

// readTxn runs a read on one readable child, moving to the next on a
// failure of the child rather than of the request (afr_read_txn).
func (r *Replicate) readTxn(ctx context.Context, gfid xdr.GFID, meta bool, fn func(ctx context.Context, i int) error) error {
	return r.readTxnOn(ctx, r.inode(gfid), nil, meta, fn)
}

// readTxnFd is readTxn through an open fd: a refresh goes through the fd.
func (r *Replicate) readTxnFd(ctx context.Context, rf *replFd, meta bool, fn func(ctx context.Context, i int) error) error {
	return r.readTxnOn(ctx, rf.ino, rf, meta, fn)
}

func (r *Replicate) readTxnOn(ctx context.Context, ino *inode, rf *replFd, meta bool, fn func(ctx context.Context, i int) error) error {
	gfid := ino.gfid
	order, err := r.readOrder(ctx, ino, rf, meta)
	if err != nil {
		return err
	}
	for n, i := range order {
		cctx, cancel := context.WithTimeout(ctx, r.opts.FopTimeout)
		// A child found lagging behind its peers in a change while the
		// read waits on it is left for the next (not the last one).
		// So is one that takes far longer than reads do (a brick hung
		// between two pings): it goes last in reads for a while.
		var lagged, slow atomic.Bool
		stop, stopSlow := func() bool { return false }, func() bool { return false }
		start := time.Now()
		if n+1 < len(order) {
			stop = context.AfterFunc(r.lagContext(i), func() { lagged.Store(true); cancel() })
			if r.opts.LagTimeout >= 0 {
				t := time.AfterFunc(r.readWait(meta), func() { slow.Store(true); cancel() })
				stopSlow = t.Stop
			}
		}
		err = fn(cctx, i)
		stop()
		stopSlow()
		cancel()
		if err == nil {
			r.readTook(meta, time.Since(start))
		}
		if err != nil && (lagged.Load() || slow.Load()) && ctx.Err() == nil {
			why := "lags behind its peers in changes"
			if !lagged.Load() {
				why = fmt.Sprintf("has not answered in %v, far longer than reads take", time.Since(start).Round(time.Millisecond))
				r.slowReads(i)
			}
			r.event(i, evReadMoved, time.Since(start))
			r.log.Warn("read moved on from a brick that "+why, zap.String("brick", r.kids[i].Name()), zap.Stringer("gfid", gfid))
			continue
		}
		if err == nil || !retryable(err) {
			return err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			r.event(i, evKick, time.Since(start))
			r.kids[i].Kick("a read did not complete within the fop timeout")
		}
		if n+1 < len(order) {
			r.log.Warn("read failed on a brick, trying the next", zap.String("brick", r.kids[i].Name()), zap.Stringer("gfid", gfid), zap.Error(err))
		}
	}
	return err
}

// Lookup resolves a name on every child that is up and returns the inode
// of a readable child; the changelog in the replies refreshes which
// children are readable.
func (r *Replicate) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xdata xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	up := r.up()
	if !r.hasQuorum(up) {
		return xdr.Iatt{}, nil, r.errNoQuorum("LOOKUP")
	}
	gen := r.gen.Load()
	x := append(append(xdr.Dict{}, xdata...), r.lookupKeys()...)
	sts := make([]xdr.Iatt, r.n())
	dicts := make([]xdr.Dict, r.n())
	rs := r.fanout(ctx, up, func(ctx context.Context, i int) error {
		st, d, err := r.kids[i].Lookup(ctx, parent, name, gfid, x)
		sts[i], dicts[i] = st, d
		return err
	})
	ok := succeeded(rs, up)
	unseen := r.unseen(rs, ok)
	took := clone(ok)
	if count(ok) == 0 {
		// Nobody has the name: with a quorum of bricks answering, their
		// errno is the answer (ENOENT, ENAMETOOLONG, EACCES...).
		if !r.hasQuorum(answered(rs, up)) {
			return xdr.Iatt{}, nil, r.errNoQuorum("LOOKUP")
		}
		return xdr.Iatt{}, nil, r.finalErr(rs, up)
	}
	// Some have it: those, and those that do not hold the name, must be a
	// quorum (afr_lookup_done); a brick that failed otherwise may hold a
	// copy the others would refuse.
	answered := clone(ok)
	for i, rp := range rs {
		if up[i] && rp.err != nil && fop.Errno(rp.err) == syscall.ENOENT && ownErrno(rp.err) {
			answered[i] = true
		}
	}
	if !r.hasQuorum(answered) {
		return xdr.Iatt{}, nil, r.errNoQuorum("LOOKUP")
	}
	if name != "" {
		// Trust only children that hold a good copy of the parent's
		// entries: a name missing on a stale child is not gone, and one
		// left there is not real.
		pino := r.inode(parent)
		pino.mu.Lock()
		fresh := pino.readable != nil && pino.readGen == gen
		pino.mu.Unlock()
		if !fresh {
			_, _, _ = r.refresh(ctx, pino, nil)
		}
		pino.mu.Lock()
		pr, pdir, pgen := pino.readable, pino.isDir, pino.readGen
		pino.mu.Unlock()
		if pr != nil && pdir && pgen == gen && count(and(pr, answered)) > 0 {
			ok = and(ok, pr)
		}
	}
	if count(ok) == 0 {
		return xdr.Iatt{}, nil, r.finalErr(rs, up)
	}
	var g xdr.GFID
	for i := range ok {
		if !ok[i] {
			continue
		}
		if g.IsZero() {
			g = sts[i].GFID
		} else if sts[i].GFID != g {
			r.splitBrainSeen()
			r.log.Error("gfid split-brain: bricks hold different files under one name",
				zap.Stringer("parent", parent), zap.String("name", name))
			return xdr.Iatt{}, nil, &fop.OpError{Brick: r.name, Fop: "LOOKUP", GFID: parent, Errno: syscall.EIO, Err: errors.New("gfid split-brain")}
		}
	}
	ino := r.inode(g)
	isDir := false
	for i := range ok {
		if ok[i] {
			isDir = sts[i].Mode&syscall.S_IFMT == syscall.S_IFDIR
			break
		}
	}
	trust := make([]bool, r.n()) // the same file, even on a stale parent
	for i := range took {
		trust[i] = took[i] && sts[i].GFID == g
	}
	r.refreshReadable(ino, ok, unseen, trust, dicts, isDir, gen)
	ino.mu.Lock()
	readable := ino.readable
	ino.mu.Unlock()
	if !isDir && count(readable) == 0 {
		var names []string
		for _, k := range r.kids {
			names = append(names, k.Name())
		}
		r.splitBrainSeen()
		r.log.Error("split-brain: no brick holds a copy that the others do not blame; resolve it with `gluster volume heal VOLUME split-brain ...`",
			zap.Stringer("gfid", g), zap.Stringer("parent", parent), zap.String("name", name), zap.Strings("bricks", names))
		if !r.quorum.Load().none {
			// Under client quorum AFR fails the lookup itself: "no read
			// subvols", ENOTCONN (afr_lookup_done). Without quorum the
			// file can be stat'ed and its reads fail with EIO.
			return xdr.Iatt{}, nil, &fop.OpError{Brick: r.name, Fop: "LOOKUP", GFID: g, Errno: syscall.ENOTCONN, Err: errors.New("split-brain: no readable copy")}
		}
	}
	st := r.pick(ino, ok, sts)
	// The xattrs the caller asked for (the shard layer's file size, a
	// DHT layout) come from a brick whose metadata is good: a brick back
	// from an outage holds old values until heal.
	if i := r.bestMeta(ino, ok); i >= 0 && sts[i].GFID == st.GFID {
		return st, stripAFR(dicts[i]), nil
	}
	for i := range ok {
		if ok[i] && sts[i].GFID == st.GFID {
			return st, stripAFR(dicts[i]), nil
		}
	}
	return st, nil, nil
}

// stripAFR hides the changelog from callers, as afr_filter_xattrs does.
func stripAFR(d xdr.Dict) xdr.Dict {
	out := d[:0:0]
	for _, p := range d {
		if !strings.HasPrefix(p.Key, "trusted.afr.") {
			out = append(out, p)
		}
	}
	return out
}

// Stat returns the attributes from a readable child.
func (r *Replicate) Stat(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	var st xdr.Iatt
	var rx xdr.Dict
	// Xattrs asked for with the attributes (the shard layer's file
	// size) must come from a brick whose metadata is good.
	err := r.readTxn(ctx, gfid, len(xd) > 0, func(ctx context.Context, i int) error {
		var err error
		st, rx, err = r.kids[i].Stat(ctx, gfid, xd)
		return err
	})
	return st, rx, err
}

// Fstat returns the attributes of an open file from a readable child.
func (r *Replicate) Fstat(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	var st xdr.Iatt
	var rx xdr.Dict
	rf, fn, err := r.withFd(f, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		st, rx, err = r.kids[i].Fstat(ctx, cf, xd)
		return err
	})
	if err != nil {
		return st, nil, err
	}
	err = r.readTxnFd(ctx, rf, len(xd) > 0, fn)
	return st, rx, err
}

// Access checks permissions on a readable child.
func (r *Replicate) Access(ctx context.Context, gfid xdr.GFID, mask uint32, xd xdr.Dict) (xdr.Dict, error) {
	var rx xdr.Dict
	err := r.readTxn(ctx, gfid, true, func(ctx context.Context, i int) error {
		var err error
		rx, err = r.kids[i].Access(ctx, gfid, mask, xd)
		return err
	})
	return rx, err
}

// Readlink reads a symlink on a readable child.
func (r *Replicate) Readlink(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (string, xdr.Dict, error) {
	var s string
	var rx xdr.Dict
	err := r.readTxn(ctx, gfid, true, func(ctx context.Context, i int) error {
		var err error
		s, rx, err = r.kids[i].Readlink(ctx, gfid, xd)
		return err
	})
	return s, rx, err
}

// Read reads from a readable child, moving to the next on failure.
func (r *Replicate) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	var data []byte
	var rx xdr.Dict
	rf, fn, err := r.withFd(f, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		data, rx, err = r.kids[i].Read(ctx, cf, off, size, xd)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	err = r.readTxnFd(ctx, rf, false, fn)
	return data, rx, err
}

// Seek finds data or a hole on a readable child.
func (r *Replicate) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	var o uint64
	var rx xdr.Dict
	rf, fn, err := r.withFd(f, func(ctx context.Context, i int, cf *fop.Fd) error {
		var err error
		o, rx, err = r.kids[i].Seek(ctx, cf, off, what, xd)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	err = r.readTxnFd(ctx, rf, false, fn)
	return o, rx, err
}

// Getxattr reads xattrs on a readable child, without the changelog.
func (r *Replicate) Getxattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if strings.HasPrefix(name, "trusted.afr.") {
		return nil, nil, &fop.OpError{Brick: r.name, Fop: "GETXATTR", GFID: gfid, Errno: syscall.ENODATA}
	}
	var d, rx xdr.Dict
	err := r.readTxn(ctx, gfid, true, func(ctx context.Context, i int) error {
		var err error
		d, rx, err = r.kids[i].Getxattr(ctx, gfid, name, xd)
		return err
	})
	return stripAFR(d), rx, err
}

// Statfs reports the child with the least space available, as afr_statfs does.
func (r *Replicate) Statfs(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error) {
	up := r.up()
	sts := make([]xdr.Statfs, r.n())
	rs := r.fanout(ctx, up, func(ctx context.Context, i int) error {
		var err error
		sts[i], _, err = r.kids[i].Statfs(ctx, gfid, xd)
		return err
	})
	ok := succeeded(rs, up)
	var best xdr.Statfs
	found := false
	for i := range ok {
		if ok[i] && i != r.opts.Arbiter && (!found || sts[i].Bavail < best.Bavail) {
			best, found = sts[i], true
		}
	}
	if !found {
		return best, nil, r.finalErr(rs, up)
	}
	return best, nil, nil
}

// Readdirp reads a directory from one readable child; later pages stick to
// it (afr_readdir). Entries whose inode that child may hold stale come
// without attributes, so the kernel looks them up.
func (r *Replicate) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) (ents []fop.Dirent, eof bool, rx xdr.Dict, err error) {
	rf, err := r.rfd(f)
	if err != nil {
		return nil, false, nil, err
	}
	rf.mu.Lock()
	rc := rf.readChild
	rf.mu.Unlock()
	read := func(ctx context.Context, i int) error {
		cf, err := r.child(ctx, rf, i)
		if err != nil {
			return err
		}
		ents, eof, rx, err = r.kids[i].Readdirp(ctx, cf, offset, size, xd)
		if err == nil {
			rf.mu.Lock()
			rf.readChild = i
			rf.mu.Unlock()
		}
		return err
	}
	if rc >= 0 && offset != 0 {
		err = read(ctx, rc)
	} else {
		err = r.readTxnFd(ctx, rf, false, read)
	}
	if err != nil {
		return nil, false, nil, err
	}
	rf.mu.Lock()
	rc = rf.readChild
	rf.mu.Unlock()
	gen := r.gen.Load()
	allUp := count(r.up()) == r.n()
	for n := range ents {
		g := ents[n].Stat.GFID
		if g.IsZero() || ents[n].Name == "." || ents[n].Name == ".." {
			continue
		}
		r.mu.Lock()
		ino := r.inodes[g]
		r.mu.Unlock()
		var good bool
		if ino == nil {
			// Unknown file: trust the listing only while every brick is
			// up, when a stale copy is unlikely and the attribute cache
			// expires within attribute-timeout anyway.
			good = allUp
		} else {
			ino.mu.Lock()
			good = ino.readable != nil && ino.readGen == gen && ino.readable[rc] && ino.metaRead[rc]
			ino.mu.Unlock()
		}
		if rc == r.opts.Arbiter && ents[n].Stat.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			// The arbiter keeps names and metadata but no data: its
			// files all show size 0.
			good = false
		}
		if !good {
			ents[n].Stale = true // the kernel looks it up instead
		}
	}
	return ents, eof, rx, nil
}
