package dht

import (
	"context"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// hashed returns the subvolume name hashes to in directory parent, with
// the parent's layout; an error says no subvolume owns that hash (a
// subvolume holding part of the directory is down, or its layout has a
// hole no heal could fill).
func (d *DHT) hashed(ctx context.Context, op string, parent xdr.GFID, name string) (int, *layout, error) {
	get := d.freshLayout
	if op == "CREATE" || op == "MKDIR" {
		get = d.layoutOf // the brick checks the layout these carry
	}
	pl, err := get(ctx, parent)
	if err != nil {
		return -1, nil, err
	}
	hs := pl.search(d.hashOf(name))
	if hs < 0 {
		if pl, err = d.refreshDir(ctx, parent); err != nil {
			return -1, nil, err
		}
		hs = pl.search(d.hashOf(name))
	}
	if hs < 0 {
		return -1, nil, d.errf(op, parent, syscall.ENOTCONN, "no subvolume holds the hash range of %q in this directory (layout %s): a replica set is down or the layout has a hole; bring the bricks back or run gluster volume rebalance fix-layout", name, pl)
	}
	return hs, pl, nil
}

// preop adds the parent-layout check to an entry fop's xdata: the brick
// refuses it (EIO, glusterfs.preop.check.failed) when the parent's layout
// on disk is not the one this client placed the name by.
func preop(xd xdr.Dict, pl *layout, i int) xdr.Dict {
	x := append(xdr.Dict{}, xd...)
	if !pl.s[i].has {
		return x
	}
	return x.With(keyPreopParent, xdr.Str(xattrLayout)).With(xattrLayout, xdr.Ptr(pl.s[i].encode()))
}

// placed runs an entry fop on the subvolume the name hashes to. A CREATE
// carries the parent-layout check (posix checks it on create and mkdir
// only; on mknod and symlink it would store the keys as xattrs of the new
// file): when the brick says the layout changed, the layout is read again
// and the create retried once.
func (d *DHT) placed(ctx context.Context, op string, parent xdr.GFID, name string, xd xdr.Dict, fn func(i int, xd xdr.Dict) error) (int, error) {
	hs, pl, err := d.hashed(ctx, op, parent, name)
	if err != nil {
		return -1, err
	}
	if op != "CREATE" {
		return hs, fn(hs, xd)
	}
	err = fn(hs, preop(xd, pl, hs))
	if fop.Errno(err) != syscall.EIO {
		return hs, err
	}
	old := pl.s[hs]
	if pl, err = d.refreshDir(ctx, parent); err != nil {
		return -1, err
	}
	if now := pl.s[hs]; now == old {
		return hs, d.errf(op, parent, syscall.EIO, "creating %q failed with EIO on %s", name, d.subName(hs))
	}
	d.log.Info("directory layout changed under a create; retrying with the new one", zap.Stringer("parent", parent), zap.String("name", name))
	if hs, _, err = d.hashed(ctx, op, parent, name); err != nil {
		return -1, err
	}
	return hs, fn(hs, preop(xd, pl, hs))
}

// Create makes the file on the subvolume its name hashes to.
func (d *DHT) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	f, st, rx, err := d.create(ctx, parent, name, flags, mode, umask, gfid, xd)
	strip1(&st) // an existing file opened may be in migration
	return f, st, rx, err
}

func (d *DHT) create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	var f *fop.Fd
	var st xdr.Iatt
	var rx xdr.Dict
	hs, err := d.placed(ctx, "CREATE", parent, name, xd, func(i int, xd xdr.Dict) (err error) {
		f, st, rx, err = d.kid(i).Create(ctx, parent, name, flags, mode, umask, gfid, xd)
		return err
	})
	if err != nil {
		return nil, xdr.Iatt{}, nil, err
	}
	if st.GFID != gfid && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Mode&07777 == syscall.S_ISVTX {
		// The name existed as a linkto file (create without O_EXCL
		// opens what is there): open the data it points to instead.
		_ = d.kid(hs).Release(context.WithoutCancel(ctx), f)
		r, err := d.resolve(ctx, parent, name, nil)
		if missing(err) && !retried(ctx) {
			// A stale linkto, removed by that lookup: create again.
			return d.create(context.WithValue(ctx, retryKey{}, true), parent, name, flags, mode, umask, gfid, xd)
		}
		if err != nil {
			return nil, xdr.Iatt{}, nil, err
		}
		if r.dir {
			return nil, xdr.Iatt{}, nil, d.errf("CREATE", parent, syscall.EISDIR, "%q is a directory", name)
		}
		f, rx, err = d.kid(r.cached).Open(ctx, r.st.GFID, flags&^uint32(syscall.O_CREAT|syscall.O_EXCL), xd)
		if err != nil {
			return nil, xdr.Iatt{}, nil, err
		}
		f.SetCtx(d, r.cached)
		d.countOpen(r.st.GFID, 1)
		return f, r.st, rx, nil
	}
	d.setFileAt(st.GFID, hs, parent, name)
	f.SetCtx(d, hs)
	d.countOpen(st.GFID, 1)
	return f, st, rx, nil
}

type retryKey struct{}

func retried(ctx context.Context) bool { return ctx.Value(retryKey{}) != nil }

// Mknod makes the node on the subvolume its name hashes to.
func (d *DHT) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	var st xdr.Iatt
	var rx xdr.Dict
	hs, err := d.placed(ctx, "MKNOD", parent, name, xd, func(i int, xd xdr.Dict) (err error) {
		st, rx, err = d.kid(i).Mknod(ctx, parent, name, mode, rdev, umask, gfid, xd)
		return err
	})
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	d.setFileAt(st.GFID, hs, parent, name)
	return st, rx, nil
}

// Symlink makes the link on the subvolume its name hashes to.
func (d *DHT) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	var st xdr.Iatt
	var rx xdr.Dict
	hs, err := d.placed(ctx, "SYMLINK", parent, name, xd, func(i int, xd xdr.Dict) (err error) {
		st, rx, err = d.kid(i).Symlink(ctx, parent, name, target, umask, gfid, xd)
		return err
	})
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	d.setFileAt(st.GFID, hs, parent, name)
	return st, rx, nil
}

// Mkdir makes a directory as dht_mkdir does: under the parent's
// dht.layout.heal read lock and the name's dht.entry.sync lock on the
// hashed subvolume, first there (with the mds key and the parent-layout
// check), then on every other subvolume with the same gfid; then the new
// directory's layout is written on each, under its own heal lock.
func (d *DHT) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	hs, pl, err := d.hashed(ctx, "MKDIR", parent, name)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	ls := d.newLocks(ctx)
	defer ls.release()
	if err := ls.inodelk(hs, parent, domLayoutHeal, fop.LkRead); err != nil {
		return xdr.Iatt{}, nil, err
	}
	if err := ls.entrylk(hs, parent, name, domEntrySync); err != nil {
		return xdr.Iatt{}, nil, err
	}
	x := preop(xd, pl, hs).With(xattrMDS, xdr.Ptr([]byte{0, 0, 0, 0}))
	st, rx, err := d.kid(hs).Mkdir(ctx, parent, name, mode, umask, gfid, x)
	if fop.Errno(err) == syscall.EIO {
		// The parent's layout changed: place the name again, once.
		ls.release()
		if _, err := d.refreshDir(ctx, parent); err != nil {
			return xdr.Iatt{}, nil, err
		}
		if hs, pl, err = d.hashed(ctx, "MKDIR", parent, name); err != nil {
			return xdr.Iatt{}, nil, err
		}
		if err := ls.inodelk(hs, parent, domLayoutHeal, fop.LkRead); err != nil {
			return xdr.Iatt{}, nil, err
		}
		if err := ls.entrylk(hs, parent, name, domEntrySync); err != nil {
			return xdr.Iatt{}, nil, err
		}
		x = preop(xd, pl, hs).With(xattrMDS, xdr.Ptr([]byte{0, 0, 0, 0}))
		st, rx, err = d.kid(hs).Mkdir(ctx, parent, name, mode, umask, gfid, x)
	}
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	g := st.GFID
	v := d.view()
	made := make([]bool, v.n())
	made[hs] = true
	d.all(ctx, v, func(ctx context.Context, i int) error {
		if i == hs {
			return nil
		}
		_, _, err := d.kid(i).Mkdir(ctx, parent, name, mode, umask, g, xd)
		if err != nil {
			d.log.Warn("directory not made on a subvolume; a lookup will make it once it answers",
				zap.String("subvol", d.subName(i)), zap.Stringer("parent", parent), zap.String("name", name), zap.Error(err))
			return err
		}
		made[i] = true
		return nil
	})
	ls.release()
	d.setDir(g, parent, name, nil)

	// The new directory's layout, under its heal lock on the hashed
	// subvolume.
	if err := ls.inodelk(hs, g, domLayoutHeal, fop.LkWrite); err != nil {
		d.log.Warn("new directory left without a layout; a lookup will heal it", zap.Stringer("gfid", g), zap.Error(err))
		return st, rx, nil
	}
	o, _ := d.options()
	commit := uint32(hashInvalid)
	if o.LookupOptimize {
		d.mu.Lock()
		commit = d.volCommit
		d.mu.Unlock()
	}
	path, known := d.path(g)
	use := d.usable(v, made)
	next := d.newRanges(ctx, v, use, d.startHash(g, path, known), commit, nil)
	d.all(ctx, v, func(ctx context.Context, i int) error {
		if !made[i] {
			return nil
		}
		if !next[i].has {
			next[i] = slice{has: true, present: true} // no range: 0-0
		}
		_, err := d.kid(i).Setxattr(asRoot(ctx), g, xdr.Dict{}.With(xattrLayout, xdr.Ptr(next[i].encode())), 0, internal(nil))
		if err != nil {
			next[i] = slice{present: true}
			d.log.Warn("layout not written on a subvolume; a lookup will heal it", zap.String("subvol", d.subName(i)), zap.Stringer("gfid", g), zap.Error(err))
		}
		return err
	})
	l := newLayout(next)
	for _, i := range v.live {
		if !made[i] {
			l.missing++
		}
	}
	d.setDir(g, parent, name, l)
	return st, rx, nil
}

// linkto makes a linkto file parent/name on subvolume on, pointing to
// subvolume to, with g's gfid and owned like the data (st).
func (d *DHT) linkto(ctx context.Context, on, to int, parent xdr.GFID, name string, g xdr.GFID, st xdr.Iatt, extra xdr.Dict) error {
	xd := internal(extra).With(xattrLinkto, xdr.Str(d.subName(to)))
	rctx := asRoot(ctx)
	if _, _, err := d.kid(on).Mknod(rctx, parent, name, syscall.S_IFREG|syscall.S_ISVTX, 0, 0, g, xd); err != nil {
		return err
	}
	a := xdr.Iatt{UID: st.UID, GID: st.GID}
	if _, _, _, err := d.kid(on).Setattr(rctx, g, &a, fop.SetAttrUID|fop.SetAttrGID, nil); err != nil {
		d.log.Debug("linkto file keeps root ownership", zap.Stringer("gfid", g), zap.Error(err))
	}
	return nil
}

// unlinkLinkto removes parent/name on subvolume i if it is a linkto file
// (the brick checks).
func (d *DHT) unlinkLinkto(ctx context.Context, i int, parent xdr.GFID, name string) error {
	xd := internal(xdr.Dict{}.With("unlink-only-if-dht-linkto-file", xdr.Int(1)))
	_, err := d.kid(i).Unlink(asRoot(ctx), parent, name, xd)
	if err != nil && missing(err) {
		return nil
	}
	return err
}

// Link makes newParent/newName a hard link of g: on the subvolume holding
// g's data, with a linkto file on the one the new name hashes to when
// they differ (dht_link).
func (d *DHT) Link(ctx context.Context, g, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	st, rx, err := d.link(ctx, g, newParent, newName, xd)
	strip1(&st)
	return st, rx, err
}

func (d *DHT) link(ctx context.Context, g, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	ci, dir, err := d.where(ctx, g)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	if dir {
		return xdr.Iatt{}, nil, d.errf("LINK", g, syscall.EPERM, "hard links to directories are not allowed")
	}
	hs, _, err := d.hashed(ctx, "LINK", newParent, newName)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	if hs != ci {
		st, _, err := d.kid(ci).Stat(ctx, g, nil)
		if err != nil {
			return xdr.Iatt{}, nil, err
		}
		if err := d.linkto(ctx, hs, ci, newParent, newName, g, st, nil); err != nil {
			return xdr.Iatt{}, nil, err
		}
	}
	st, rx, err := d.kid(ci).Link(ctx, g, newParent, newName, xd)
	if err != nil && hs != ci {
		if uerr := d.unlinkLinkto(ctx, hs, newParent, newName); uerr != nil {
			d.log.Warn("linkto file of a failed link left behind; a lookup removes it", zap.Error(uerr))
		}
	}
	return st, rx, err
}

// Unlink removes the name where its data is and its linkto file where
// the name hashes, if there is one.
func (d *DHT) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	r, err := d.resolve(ctx, parent, name, nil)
	if err != nil {
		return nil, err
	}
	if r.dir {
		return nil, d.errf("UNLINK", parent, syscall.EISDIR, "%q is a directory", name)
	}
	rx, err := d.kid(r.cached).Unlink(ctx, parent, name, xd)
	if err != nil {
		return nil, err
	}
	if r.hashed >= 0 && r.hashed != r.cached {
		if err := d.unlinkLinkto(ctx, r.hashed, parent, name); err != nil {
			d.log.Warn("linkto file of an unlinked file left behind; a lookup removes it",
				zap.String("subvol", d.subName(r.hashed)), zap.String("name", name), zap.Error(err))
		}
	}
	return rx, nil
}

// Rmdir removes a directory from every subvolume: after checking that
// each copy is empty but for linkto files (which it removes), the others
// first and the hashed one last, under the same locks as mkdir.
func (d *DHT) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	r, err := d.resolve(ctx, parent, name, nil)
	if err != nil {
		return nil, err
	}
	if !r.dir {
		return nil, d.errf("RMDIR", parent, syscall.ENOTDIR, "%q is not a directory", name)
	}
	g := r.st.GFID
	hs := r.hashed
	if hs < 0 {
		return nil, d.errf("RMDIR", parent, syscall.ENOTCONN, "no subvolume holds the hash range of %q; a replica set is down", name)
	}
	v := d.view()
	for _, i := range v.live {
		if !v.kids[i].Up() {
			return nil, d.errf("RMDIR", parent, syscall.ENOTCONN, "%s is down; a directory is removed only while every replica set is up", v.names[i])
		}
	}
	ls := d.newLocks(ctx)
	defer ls.release()
	if err := ls.inodelk(hs, parent, domLayoutHeal, fop.LkRead); err != nil {
		return nil, err
	}
	if err := ls.entrylk(hs, parent, name, domEntrySync); err != nil {
		return nil, err
	}
	if flags&fop.RmdirRecursive == 0 {
		// Every copy is checked before any linkto file goes: a
		// directory that is not empty is left exactly as it was.
		links := make([][]string, v.n())
		errs := d.all(ctx, v, func(ctx context.Context, i int) (err error) {
			links[i], err = d.linktosOnly(ctx, i, g)
			return err
		})
		for _, err := range errs {
			if err != nil && !missing(err) {
				return nil, err
			}
		}
		errs = d.all(ctx, v, func(ctx context.Context, i int) error { return d.dropLinktos(ctx, i, g, links[i]) })
		if err := pickErr(errs); err != nil {
			return nil, err
		}
	}
	errs := d.all(ctx, v, func(ctx context.Context, i int) error {
		if i == hs {
			return nil
		}
		_, err := d.kid(i).Rmdir(ctx, parent, name, flags, xd)
		if err != nil && missing(err) {
			return nil
		}
		return err
	})
	if err := pickErr(errs); err != nil {
		d.log.Warn("directory removed on some subvolumes only; a lookup makes it again", zap.Stringer("gfid", g), zap.Error(err))
		return nil, err
	}
	rx, err := d.kid(hs).Rmdir(ctx, parent, name, flags, xd)
	if err != nil {
		return nil, err
	}
	d.forget(g)
	return rx, nil
}

// linktosOnly checks that directory g on subvolume i holds nothing but
// linkto files, and returns their names (dht_rmdir_is_subvol_empty).
func (d *DHT) linktosOnly(ctx context.Context, i int, g xdr.GFID) ([]string, error) {
	f, _, err := d.kid(i).Opendir(ctx, g, nil)
	if err != nil {
		return nil, err
	}
	defer d.kid(i).Release(context.WithoutCancel(ctx), f)
	var off uint64
	var links []string
	for {
		ents, eof, _, err := d.kid(i).Readdirp(ctx, f, off, 64<<10, xdr.Dict{}.With(xattrLinkto, xdr.Uint(256)))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			off = e.Off
			if e.Name == "." || e.Name == ".." {
				continue
			}
			if !isLinkto(e.Stat, e.Xdata) {
				return nil, d.errf("RMDIR", g, syscall.ENOTEMPTY, "directory not empty")
			}
			links = append(links, e.Name)
		}
		if eof || len(ents) == 0 {
			return links, nil
		}
	}
}

// dropLinktos removes the linkto files names from directory g on
// subvolume i before the directory goes.
func (d *DHT) dropLinktos(ctx context.Context, i int, g xdr.GFID, names []string) error {
	for _, n := range names {
		xd := internal(xdr.Dict{}.With("unlink-only-if-dht-linkto-file", xdr.Int(1)).With("dont-unlink-for-open-fd", xdr.Int(1)))
		if _, err := d.kid(i).Unlink(asRoot(ctx), g, n, xd); err != nil && !missing(err) {
			return d.errf("RMDIR", g, syscall.ENOTEMPTY, "linkto file %q could not be removed: %v", n, err)
		}
	}
	return nil
}
